package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/internal/treecmp"
	"github.com/backtory/backtory/recovery"
)

// recoveryNeed returns a tool's path; a missing tool skips the test, or
// fails it under BACKTORY_TEST_STRICT (test/deps/recovery.sh installs it).
func recoveryNeed(t *testing.T, name string) string {
	t.Helper()
	return testenv.NeedTool(t, name)
}

// assertRestored reports, labelled, every difference between the tree
// want and the restored tree got, but for the roots' own metadata.
func assertRestored(t *testing.T, label, want, got string) {
	t.Helper()
	diffs, err := treecmp.Diff(want, got, treecmp.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s: %s", label, d)
	}
}

// publishStatic makes backup publish a freshly built static backtory
// beside the sets (as the rescue system needs) until the test ends.
func publishStatic(t *testing.T) {
	t.Helper()
	bin := buildStatic(t)
	old := recoveryBinary
	recoveryBinary = func() (string, error) { return bin, nil }
	t.Cleanup(func() { recoveryBinary = old })
}

// recoverySource makes the recovery test tree in a temporary directory,
// and a host key pair beside it: the directory, the tree and the keys.
func recoverySource(t *testing.T) (dir, src, pub, sec string) {
	t.Helper()
	dir = t.TempDir()
	src = filepath.Join(dir, "src")
	recoveryTree(t, src)
	pub, sec = filepath.Join(dir, "host.pub.asc"), filepath.Join(dir, "host.sec.asc")
	mustRun(t, "key", "generate", "--name", "backtory test", "--public", pub, "--secret", sec)
	return dir, src, pub, sec
}

// buildStatic builds the static backtory the rescue system runs.
func buildStatic(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "backtory")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func writeTestFile(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// recoveryTree makes a tree whose second state exercises every part of a
// differential: a delta, a metadata-only change, deletions of a file and a
// directory, a new file and a type change.
func recoveryTree(t *testing.T, src string) {
	big := make([]byte, 3<<20)
	rand.Read(big)
	writeTestFile(t, filepath.Join(src, "etc/hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	writeTestFile(t, filepath.Join(src, "etc/my file"), []byte("spaces\n"), 0o600)
	writeTestFile(t, filepath.Join(src, "var/lib/db.bin"), big, 0o640)
	writeTestFile(t, filepath.Join(src, "var/lib/meta-only"), []byte("same content\n"), 0o644)
	writeTestFile(t, filepath.Join(src, "old/gone.txt"), []byte("bye\n"), 0o644)
	writeTestFile(t, filepath.Join(src, "srv/deleted.txt"), []byte("bye\n"), 0o644)
	writeTestFile(t, filepath.Join(src, "srv/becomes-dir"), []byte("file now\n"), 0o644)
	if err := os.Symlink("../etc/hosts", filepath.Join(src, "srv/hosts-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "var/lib/db.bin"), filepath.Join(src, "var/lib/db.bin.link")); err != nil {
		t.Fatal(err)
	}
}

func changeRecoveryTree(t *testing.T, src string) {
	f, err := os.OpenFile(filepath.Join(src, "var/lib/db.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("EDITED IN THE MIDDLE"), 1<<20)
	f.Close()
	if err := os.Chmod(filepath.Join(src, "var/lib/meta-only"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(src, "old"))
	os.Remove(filepath.Join(src, "srv/deleted.txt"))
	os.Remove(filepath.Join(src, "srv/becomes-dir"))
	writeTestFile(t, filepath.Join(src, "srv/becomes-dir/inside"), []byte("dir now\n"), 0o644)
	writeTestFile(t, filepath.Join(src, "etc/new.conf"), []byte("new\n"), 0o644)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
}

// TestRecoveryScriptFiles makes real backups with the CLI (a full and a
// differential, unsealed and sealed with a key from `backtory key
// generate`), publishes recover.sh, and restores both points in time with
// `recover.sh files` under dash and busybox sh, with the static backtory
// fetched from the remote and with gpg+zstd+tar+rdiff alone.
func TestRecoveryScriptFiles(t *testing.T) {
	shells := [][]string{{recoveryNeed(t, "dash")}, {recoveryNeed(t, "busybox"), "sh"}}
	for _, tool := range []string{"gpg", "gpg-agent", "zstd", "tar", "rdiff"} {
		recoveryNeed(t, tool)
	}
	publishStatic(t)

	for _, name := range []string{"unsealed", "sealed", "passphrase"} {
		sealed := name != "unsealed"
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			recoveryTree(t, src)
			extra := ""
			var keyArgs []string
			if name == "passphrase" {
				pass := filepath.Join(dir, "pass")
				writeTestFile(t, pass, []byte("correct horse battery staple\n"), 0o600)
				extra = "encryption:\n  mode: passphrase\n  passphrase_file: " + pass + "\n"
				keyArgs = []string{"--passphrase-file", pass}
			}
			if name == "sealed" {
				pub, sec := filepath.Join(dir, "host.pub.asc"), filepath.Join(dir, "host.sec.asc")
				mustRun(t, "key", "generate", "--name", "backtory test", "--public", pub, "--secret", sec)
				extra = "encryption:\n  signing_key: " + sec + "\n  recipients: [" + pub + "]\n"
				keyArgs = []string{"--key", sec}
			}
			cfgPath := writeConfig(t, dir, src, extra)
			mustRun(t, "backup", "--config", cfgPath, "--full")
			atFull := filepath.Join(dir, "at-full")
			copyTree(t, src, atFull)
			changeRecoveryTree(t, src)
			mustRun(t, "backup", "--config", cfgPath, "--diff")

			// backup published recover.sh after each set; its catalog
			// names each differential's full.
			ids := remoteSetIDs(t, filepath.Join(dir, "remote", "testhost", "root"))
			if len(ids) != 2 {
				t.Fatalf("sets %v", ids)
			}
			remoteDir := filepath.Join(dir, "remote", "testhost", "root")
			want := []string{"recover.sh", "backtory", "backtory.sha256"}
			if name == "sealed" {
				want = append(want, "recover.sh.asc", "backtory.asc")
			}
			for _, f := range want {
				if _, err := os.Stat(filepath.Join(remoteDir, f)); err != nil {
					t.Errorf("not published: %v", err)
				}
			}
			script := filepath.Join(remoteDir, "recover.sh")
			plan, err := exec.Command(shells[0][0], script, "plan").CombinedOutput()
			if want := "source root (" + src + "): " + ids[1] + " " + ids[0] + "\n"; !strings.Contains(string(plan), want) {
				t.Errorf("recover.sh plan does not name the differential's full (want %q):\n%s%v", want, plan, err)
			}
			if name == "sealed" {
				// The detached signature checks with stock gpg and the key in the script.
				checkDetached(t, dir, script)
			}
			// The command writes the same kind of script.
			cmdScript := filepath.Join(dir, "cmd-recover.sh")
			mustRun(t, "recovery-script", "--config", cfgPath, "--set", ids[0], "-o", cmdScript)
			if raw, _ := os.ReadFile(cmdScript); !bytes.Contains(raw, []byte("BT_LAYOUT_SET='"+ids[0]+"'")) {
				t.Errorf("recovery-script --at %s did not take that set's layout", ids[0])
			}

			for _, sh := range shells {
				for _, mode := range []string{"backtory", "stock"} {
					for _, at := range []struct{ name, id, want string }{{"full", ids[0], atFull}, {"diff", "", src}} {
						to := filepath.Join(t.TempDir(), "to")
						args := append(append([]string{}, sh...), script, "files", "--to", to, "--work", filepath.Join(t.TempDir(), "w"))
						if at.id != "" {
							args = append(args, "--at", at.id)
						}
						if mode == "stock" {
							args = append(args, "--stock")
						}
						args = append(args, keyArgs...)
						cmd := exec.Command(args[0], args[1:]...)
						out, err := cmd.CombinedOutput()
						label := filepath.Base(sh[0]) + "/" + mode + "/" + at.name
						if err != nil {
							t.Fatalf("%s: %v\n%s", label, err, out)
						}
						if mode == "stock" && !strings.Contains(string(out), "stock tools") {
							t.Errorf("%s: did not say it used stock tools:\n%s", label, out)
						}
						assertRestored(t, label, at.want, to)
					}
				}
			}

			// A subset, and a tampered volume that must be refused.
			to := filepath.Join(t.TempDir(), "subset")
			out, err := exec.Command(shells[0][0], append(append([]string{script, "files", "--stock", "--to", to, "--work", filepath.Join(t.TempDir(), "w")}, keyArgs...), "/var/lib")...).CombinedOutput()
			if err != nil {
				t.Fatalf("subset: %v\n%s", err, out)
			}
			if _, err := os.Stat(filepath.Join(to, "etc")); err == nil {
				t.Errorf("subset /var/lib restored etc too")
			}
			if got, _ := os.ReadFile(filepath.Join(to, "var/lib/db.bin")); !bytes.Contains(got, []byte("EDITED IN THE MIDDLE")) {
				t.Errorf("subset: the delta of var/lib/db.bin was not applied")
			}
			vol := filepath.Join(remoteDir, ids[1], "vol-000001.tar.zst")
			if sealed {
				vol += ".pgp"
			}
			raw, err := os.ReadFile(vol)
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)/2] ^= 1
			os.WriteFile(vol, raw, 0o644)
			out, err = exec.Command(shells[0][0], append([]string{script, "files", "--stock", "--to", filepath.Join(t.TempDir(), "bad"), "--work", filepath.Join(t.TempDir(), "w")}, keyArgs...)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "does not match its manifest") {
				t.Errorf("a tampered volume was not refused: %v\n%s", err, out)
			}
		})
	}
}

// checkDetached verifies file.asc with stock gpg against the public key
// embedded in the script.
func checkDetached(t *testing.T, dir, file string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i, j := strings.Index(s, "-----BEGIN PGP PUBLIC KEY BLOCK-----"), strings.Index(s, "-----END PGP PUBLIC KEY BLOCK-----")
	if i < 0 || j < i {
		t.Fatal("no public key in recover.sh")
	}
	if strings.Contains(s, "PRIVATE KEY") {
		t.Fatal("recover.sh holds a secret key")
	}
	home := filepath.Join(dir, "gpg-check")
	os.Mkdir(home, 0o700)
	keyFile := filepath.Join(dir, "embedded.asc")
	os.WriteFile(keyFile, []byte(s[i:j+len("-----END PGP PUBLIC KEY BLOCK-----")]+"\n"), 0o600)
	if out, err := exec.Command("gpg", "--homedir", home, "--batch", "--import", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if out, err := exec.Command("gpg", "--homedir", home, "--batch", "--verify", file+".asc", file).CombinedOutput(); err != nil {
		t.Errorf("gpg --verify recover.sh: %v\n%s", err, out)
	}
	exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
}

// TestCaptureLayoutBundle checks the layout object the backup stores.
func TestCaptureLayoutBundle(t *testing.T) {
	raw, err := captureLayout(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l, err := recovery.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != recovery.LayoutVersion {
		t.Errorf("version %d", l.Version)
	}
}

// startRecoveryFTP starts vsftpd on 127.0.0.1 for the user bkftp
// (test/deps/ftp.sh), read-only, its FTP root the file system's root.
func startRecoveryFTP(t *testing.T) int {
	t.Helper()
	return ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Plain, ReadOnly: true, LoginDir: "/"}).Port
}

// TestRecoveryScriptFTP restores over a real FTP server with each way the
// script has to fetch: curl, GNU wget, busybox wget and busybox ftpget,
// and with the static backtory's own FTP client.
func TestRecoveryScriptFTP(t *testing.T) {
	dash, bb := recoveryNeed(t, "dash"), recoveryNeed(t, "busybox")
	for _, tool := range []string{"gpg", "gpg-agent", "zstd", "tar", "rdiff", "curl", "wget"} {
		recoveryNeed(t, tool)
	}
	port := startRecoveryFTP(t)
	publishStatic(t)
	dir, src, pub, sec := recoverySource(t)
	cfgPath := writeConfig(t, dir, src, "encryption:\n  signing_key: "+sec+"\n  recipients: ["+pub+"]\n")
	mustRun(t, "backup", "--config", cfgPath, "--full")
	changeRecoveryTree(t, src)
	mustRun(t, "backup", "--config", cfgPath, "--diff")
	remoteRoot := filepath.Join(dir, "remote")
	// bkftp must reach the remote: open the test's directories for reading.
	exec.Command("chmod", "-R", "a+rX", remoteRoot).Run()
	// Only the test's own directories below the temp root, only those
	// others cannot enter, and they keep a sticky bit (os.FileMode.Perm
	// would drop it).
	for p := remoteRoot; strings.HasPrefix(p, os.TempDir()+"/"); p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(p, fi.Mode()&(os.ModePerm|os.ModeSticky)|0o055)
		}
	}
	pass := filepath.Join(dir, "ftp.pass")
	writeTestFile(t, pass, []byte("bkftp-test-password\n"), 0o600)
	url := fmt.Sprintf("ftp://127.0.0.1:%d%s", port, remoteRoot)
	script := filepath.Join(remoteRoot, "testhost", "root", "recover.sh")
	for _, tc := range []struct {
		name  string
		shell []string
		extra []string
	}{
		{"static backtory, fetched with curl", []string{dash}, nil},
		{"stock, curl", []string{dash}, []string{"--stock"}},
		{"stock, GNU wget", []string{dash}, []string{"--stock", "--fetch", "wget"}},
		{"stock, busybox wget", []string{bb, "sh"}, []string{"--stock", "--fetch", "busybox-wget"}},
		{"stock, busybox ftpget", []string{bb, "sh"}, []string{"--stock", "--fetch", "busybox-ftpget"}},
	} {
		to := filepath.Join(t.TempDir(), "to")
		args := append(append([]string{}, tc.shell...), script, "files", "--to", to, "--work", filepath.Join(t.TempDir(), "w"),
			"--url", url, "--user", "bkftp", "--password-file", pass, "--key", sec)
		args = append(args, tc.extra...)
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.name, err, out)
			continue
		}
		assertRestored(t, tc.name, src, to)
	}
}

// remoteSetIDs lists the set directories of a source on a local remote,
// oldest first.
func remoteSetIDs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && (strings.HasPrefix(e.Name(), "full-") || strings.HasPrefix(e.Name(), "diff-")) {
			ids = append(ids, e.Name())
		}
	}
	sort.Slice(ids, func(i, j int) bool { // by time, a full before a diff of the same second
		if ids[i][5:] != ids[j][5:] {
			return ids[i][5:] < ids[j][5:]
		}
		return ids[i] > ids[j]
	})
	return ids
}
