package main

// End-to-end over SFTP against a real, chrooted sshd (internal/sshtest):
// the first contact refused until `backtory remote trust`, a full and a
// differential restored exactly, and recover.sh fetching with the stock
// sftp, scp and curl.

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/sshtest"
)

// sftpConfig writes a config for one source at src on the server's
// directory sub, with known_hosts at kh.
func sftpConfig(t *testing.T, dir, src string, srv *sshtest.Server, sub, kh, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + src + "\n" +
		"remote:\n  url: " + srv.URL(sub) + "\n  ssh_key: " + srv.Key + "\n  known_hosts: " + kh + "\n  connections: 3\n" +
		"volume_size: 1MiB\n" + extra
	writeTestFile(t, cfg, []byte(body), 0o600)
	return cfg
}

func TestSFTPBackupRestore(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	srv := sshtest.Start(t)
	src := sampleTree(t, 3<<20)
	dir := t.TempDir()
	kh := filepath.Join(dir, "etc", "known_hosts")
	cfg := sftpConfig(t, dir, src, srv, "backups", kh, "")
	want := strings.Fields(string(mustRead(t, srv.KnownHosts)))
	fpr := sshKeygenFingerprint(t, srv.KnownHosts)

	// First contact: refused, with the key's fingerprint and the command.
	code, stderr := backtory(t, "backup", "--config", cfg)
	t.Logf("first contact: %s", stderr)
	if code == 0 || !strings.Contains(stderr, fpr) || !strings.Contains(stderr, "backtory remote trust") {
		t.Fatalf("backup before trust: exit %d, %q", code, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 0 {
		t.Errorf("the first-contact error is %d lines:\n%s", n+1, stderr)
	}
	code, stderr = backtory(t, "remote", "trust", "--config", cfg, "--fingerprint", "SHA256:not-this-one")
	if code == 0 || !strings.Contains(stderr, "NOT recorded") {
		t.Fatalf("trust with a wrong fingerprint: exit %d, %q", code, stderr)
	}
	mustRun(t, "remote", "trust", "--config", cfg, "--fingerprint", fpr)
	got := strings.Fields(string(mustRead(t, kh)))
	if len(got) != 3 || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("known_hosts after trust: %q, want the key %q", got, want)
	}

	mustRun(t, "backup", "--config", cfg)
	writeTestFile(t, filepath.Join(src, "added-after-full"), []byte("new\n"), 0o644)
	writeTestFile(t, filepath.Join(src, "big"), []byte(strings.Repeat("changed ", 1000)), 0o644)
	mustRun(t, "backup", "--config", cfg)
	to := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", to)
	assertSameTree(t, src, to)
	mustRun(t, "verify", "--config", cfg)

	sets, parts := serverSets(filepath.Join(srv.Data, "backups"))
	if len(sets) != 2 || len(parts) != 0 || !strings.HasPrefix(sets[0], "diff-") {
		t.Fatalf("on the server: sets %q, leftover temporary objects %q", sets, parts)
	}

	// A changed host key: refused loudly, and trust does not replace it.
	srv.Kill()
	srv.NewHostKey()
	srv.Launch()
	code, stderr = backtory(t, "backup", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "HAS CHANGED") {
		t.Fatalf("backup after the host key changed: exit %d, %q", code, stderr)
	}
	code, stderr = backtory(t, "remote", "trust", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "HAS CHANGED") {
		t.Fatalf("trust after the host key changed: exit %d, %q", code, stderr)
	}
}

// TestRecoveryScriptSFTP backs up over SFTP and restores with recover.sh
// fetching over SFTP: OpenSSH's sftp and scp, curl, and the static
// backtory's own client; all check the host key against the same
// known_hosts.
func TestRecoveryScriptSFTP(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	dash := recoveryNeed(t, "dash")
	for _, tool := range []string{"gpg", "gpg-agent", "zstd", "tar", "rdiff", "sftp", "scp", "ssh-keygen", "curl"} {
		recoveryNeed(t, tool)
	}
	srv := sshtest.Start(t)
	publishStatic(t)
	dir, src, pub, sec := recoverySource(t)
	cfgPath := sftpConfig(t, dir, src, srv, "backups", srv.KnownHosts, "encryption:\n  signing_key: "+sec+"\n  recipients: ["+pub+"]\n")
	mustRun(t, "backup", "--config", cfgPath, "--full")
	changeRecoveryTree(t, src)
	mustRun(t, "backup", "--config", cfgPath, "--diff")

	script := filepath.Join(srv.Data, "backups", "testhost", "root", "recover.sh")
	url := fmt.Sprintf("sftp://127.0.0.1:%d/data/backups", srv.Port)
	curlSFTP := exec.Command("curl", "-V").Run() == nil && strings.Contains(string(mustOutput(t, "curl", "-V")), " sftp")
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"static backtory, fetched with sftp", nil},
		{"stock, sftp", []string{"--stock", "--fetch", "sftp"}},
		{"stock, scp", []string{"--stock", "--fetch", "scp"}},
		{"stock, curl", []string{"--stock", "--fetch", "curl"}},
	} {
		if strings.HasSuffix(tc.name, "curl") && !curlSFTP {
			t.Logf("%s: this curl has no sftp", tc.name)
			continue
		}
		to := filepath.Join(t.TempDir(), "to")
		args := append([]string{dash, script, "files", "--to", to, "--work", filepath.Join(t.TempDir(), "w"),
			"--url", url, "--user", sshtest.User, "--key", sec}, tc.extra...)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "BACKTORY_SSH_KEY="+srv.Key, "BACKTORY_KNOWN_HOSTS="+srv.KnownHosts)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.name, err, out)
			continue
		}
		assertRestored(t, tc.name, src, to)
	}

	// A known_hosts without the server's key: every stock client refuses.
	other := filepath.Join(dir, "other_known_hosts")
	writeTestFile(t, other, []byte(fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBFcn1r0a7e8H0bS1m8t3dDpdQkYV1g2zv0vZy3o3W5b\n", srv.Port)), 0o644)
	for _, m := range []string{"sftp", "scp", "curl"} {
		if m == "curl" && !curlSFTP {
			continue
		}
		cmd := exec.Command(dash, script, "files", "--stock", "--fetch", m, "--to", filepath.Join(t.TempDir(), "to"),
			"--work", filepath.Join(t.TempDir(), "w"), "--url", url, "--user", sshtest.User, "--key", sec)
		cmd.Env = append(os.Environ(), "BACKTORY_SSH_KEY="+srv.Key, "BACKTORY_KNOWN_HOSTS="+other)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("--fetch %s with another host key in known_hosts succeeded:\n%s", m, out)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustOutput(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// sshKeygenFingerprint is the SHA-256 fingerprint ssh-keygen prints for the
// first key of a known_hosts file.
func sshKeygenFingerprint(t *testing.T, kh string) string {
	t.Helper()
	f := strings.Fields(string(mustOutput(t, "ssh-keygen", "-lf", kh)))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -lf %s: %q", kh, f)
	}
	return f[1]
}

// TestSFTPBackupServerCrash kills sshd (and its sessions) while a backup
// uploads: brought back at once, the run retries and completes; left down,
// the run fails with one line and commits no set, and the next run makes
// the full that restores exactly.
func TestSFTPBackupServerCrash(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	for _, restart := range []bool{true, false} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			srv := sshtest.Start(t)
			src := sampleTree(t, 0)
			for i := range 12 {
				writeTestFile(t, filepath.Join(src, "random", fmt.Sprintf("f%02d", i)), randomBytes(t, 4<<20), 0o644)
			}
			dir := t.TempDir()
			cfg := sftpConfig(t, dir, src, srv, "backups", srv.KnownHosts, "")
			crashed := make(chan struct{})
			go func() {
				defer close(crashed)
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if uploading(filepath.Join(srv.Data, "backups")) {
						srv.Kill()
						if restart {
							srv.Launch()
						}
						return
					}
				}
			}()
			code, stderr := backtory(t, "backup", "--config", cfg)
			<-crashed
			if restart {
				if code != 0 {
					t.Fatalf("backup with sshd restarted under it: exit %d: %s", code, stderr)
				}
			} else {
				if code == 0 || !strings.Contains(stderr, "cannot connect to the SFTP server") {
					t.Fatalf("backup with sshd gone: exit %d: %q", code, stderr)
				}
				// The error is one line: the last, with no timestamp (the
				// log lines before it carry theirs).
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				if last := lines[len(lines)-1]; !strings.HasPrefix(last, "backtory: ") || !strings.Contains(last, "cannot connect to the SFTP server") {
					t.Errorf("the failure is not one line:\n%s", stderr)
				}
				srv.Launch()
				if _, out, _ := backtoryOut(t, "list", "--config", cfg); strings.Contains(out, "full-") {
					t.Fatalf("the failed run committed a set:\n%s", out)
				}
				mustRun(t, "backup", "--config", cfg)
			}
			_, out, _ := backtoryOut(t, "list", "--config", cfg)
			if strings.Count(out, "full-") != 1 || strings.Contains(out, "diff-") {
				t.Fatalf("list after the crash:\n%s", out)
			}
			to := filepath.Join(dir, "restored")
			mustRun(t, "restore", "--config", cfg, "--to", to)
			assertSameTree(t, src, to)
		})
	}
}

// serverSets walks a server's directory for the set directories and the
// temporary objects left in it.
func serverSets(dir string) (sets, parts []string) {
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && (strings.HasPrefix(fi.Name(), "full-") || strings.HasPrefix(fi.Name(), "diff-")) {
			sets = append(sets, fi.Name())
		}
		if err == nil && strings.HasSuffix(p, ".part") {
			parts = append(parts, p)
		}
		return nil
	})
	return sets, parts
}

// uploading reports whether any object (or its temporary) is on the server
// below dir.
func uploading(dir string) bool {
	found := false
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasPrefix(filepath.Base(p), "vol-") {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
