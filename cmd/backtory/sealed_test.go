package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sealedRepo is a config made by `backtory init` (host key, sealing) over
// a sample tree, with a full and a differential already written.
type sealedRepo struct {
	dir, src, cfg, remote string
	full, diff            string
}

func newSealedRepo(t *testing.T) *sealedRepo {
	t.Helper()
	r := &sealedRepo{dir: t.TempDir()}
	r.src = sampleTree(t, 0)
	r.cfg = filepath.Join(r.dir, "etc/backtory.yaml")
	r.remote = filepath.Join(r.dir, "remote")
	mustRun(t, "init", "--config", r.cfg, "--remote", "file://"+r.remote, "--source", r.src,
		"--state-dir", filepath.Join(r.dir, "state"), "--host", "testhost")
	// Small volumes so that a set has several; the source called root
	// (init names it after its path).
	raw, _ := os.ReadFile(r.cfg)
	s := strings.Replace(string(raw), "volume_size: 256MiB", "volume_size: 1MiB", 1)
	s = strings.Replace(s, "name: "+sourceName(r.src)+"\n", "name: root\n", 1)
	os.WriteFile(r.cfg, []byte(s), 0o600)
	mustRun(t, "backup", "--config", r.cfg)
	r.full = onlySet(t, r.remote, "full-")
	time.Sleep(1100 * time.Millisecond) // set ids have a resolution of one second
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed\n"), 0o644)
	f, _ := os.OpenFile(filepath.Join(r.src, "data/random.bin"), os.O_WRONLY, 0)
	f.WriteAt([]byte("edited in place"), 12345)
	f.Close()
	os.Remove(filepath.Join(r.src, "tiny"))
	mustRun(t, "backup", "--config", r.cfg)
	r.diff = onlySet(t, r.remote, "diff-")
	return r
}

func onlySet(t *testing.T, remote, prefix string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(remote, "testhost/root", prefix+"*"))
	if len(m) != 1 {
		t.Fatalf("want one %s set, have %v", prefix, m)
	}
	return filepath.Base(m[0])
}

func (r *sealedRepo) setDir(id string) string { return filepath.Join(r.remote, "testhost/root", id) }

// TestTamper: tampering is refused with an error that names what is wrong,
// a non-zero exit, and no file of the bad object written. The CLI's share:
// the exit code, the one-line error, the rollback check and the keys of the
// config (archive's TestTamper has every kind of tampering).
func TestTamper(t *testing.T) {
	r := newSealedRepo(t)
	pristine := copyDir(t, r.remote)
	stateCopy := copyDir(t, filepath.Join(r.dir, "state"))
	reset := func() {
		os.RemoveAll(r.remote)
		exec.Command("cp", "-a", pristine, r.remote).Run()
		os.RemoveAll(filepath.Join(r.dir, "state"))
		exec.Command("cp", "-a", stateCopy, filepath.Join(r.dir, "state")).Run()
	}
	vol := func(id string, n int) string {
		m, _ := filepath.Glob(filepath.Join(r.setDir(id), "vol-*"))
		return m[n]
	}
	otherKey := filepath.Join(t.TempDir(), "other")
	mustRun(t, "key", "generate", "--name", "intruder", "--public", otherKey+".pub", "--secret", otherKey+".sec")

	tests := []struct {
		name   string
		tamper func()
		args   []string // restore arguments besides --config and --to
		want   string   // in the error line
		exit   int
	}{
		{"truncated volume", func() {
			p := vol(r.full, 0)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-100)
		}, []string{"--set", r.full}, "vol-000001.tar.zst.pgp: does not match its manifest", 1},
		{"newest set removed (rollback)", func() {
			os.RemoveAll(r.setDir(r.diff))
		}, nil, "rolled back", 1},
		{"garbled record of the newest set seen", func() {
			seen, _ := filepath.Glob(filepath.Join(r.dir, "state", "seen", "*", "*"))
			for _, f := range seen {
				os.WriteFile(f, []byte("\x00garbage"), 0o600)
			}
		}, nil, "is garbled", 1},
		{"empty record of the newest set seen", func() {
			seen, _ := filepath.Glob(filepath.Join(r.dir, "state", "seen", "*", "*"))
			for _, f := range seen {
				os.WriteFile(f, nil, 0o600)
			}
		}, nil, "is empty: refusing to run without the rollback check", 1},
		{"wrong decryption key", func() {
			raw, _ := os.ReadFile(r.cfg)
			s := strings.ReplaceAll(string(raw), filepath.Join(r.dir, "etc/keys/host"), otherKey)
			s = strings.ReplaceAll(strings.ReplaceAll(s, ".sec.asc", ".sec"), ".pub.asc", ".pub")
			os.WriteFile(r.cfg+".other", []byte(s), 0o600)
		}, []string{"--config", r.cfg + ".other", "--set", r.full}, "key", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reset()
			tc.tamper()
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"restore", "--config", r.cfg, "--to", out}, tc.args...)
			code, stderr := backtory(t, args...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.exit, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
			filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					t.Errorf("a file was written from tampered data: %s", p)
				}
				return nil
			})
		})
	}
}

// TestWrongPassphrase: a protected host key with a wrong passphrase is a
// clear one-line error, and the passphrase appears nowhere.
func TestWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	mustRun(t, "key", "generate", "--name", "host", "--public", filepath.Join(dir, "host.pub"),
		"--secret", filepath.Join(dir, "host.sec"), "--passphrase-file", pass)
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("Tr0ub4dor&3\n"), 0o600)
	src := sampleTree(t, 0)
	enc := "encryption:\n  signing_key: " + filepath.Join(dir, "host.sec") + "\n  passphrase_file: %s\n"
	cfg := writeConfig(t, dir, src, fmt.Sprintf(enc, wrong))
	code, stderr := backtory(t, "backup", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "passphrase") || strings.Contains(stderr, "Tr0ub4dor") {
		t.Fatalf("wrong passphrase: exit %d, stderr %q", code, stderr)
	}
	writeConfig(t, dir, src, fmt.Sprintf(enc, pass))
	mustRun(t, "backup", "--config", cfg)
	out := filepath.Join(dir, "out")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
}

// TestVerifyPointInTime: verify --set of a differential checks its full
// too, so a damaged full is found before a restore (or recover.sh's wipe).
func TestVerifyPointInTime(t *testing.T) {
	r := newSealedRepo(t)
	mustRun(t, "verify", "--config", r.cfg, "--set", r.diff)
	vols, _ := filepath.Glob(filepath.Join(r.setDir(r.full), "vol-*"))
	f, _ := os.OpenFile(vols[0], os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, 100)
	f.Close()
	code, stderr := backtory(t, "verify", "--config", r.cfg, "--set", r.diff)
	if code != exitFailed || !strings.Contains(stderr, "its full") || !strings.Contains(stderr, "vol-000001") {
		t.Fatalf("verify of a differential whose full is damaged: exit %d, %q", code, stderr)
	}
}
