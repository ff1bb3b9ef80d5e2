package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/internal/treecmp"
)

// sealedRepo is a config made by `backtory init` (host key, sealing) over
// a sample tree, with a full and a differential already written.
type sealedRepo struct {
	dir, src, cfg, remote string
	full, diff            string
	fullCopy, diffCopy    string
}

func newSealedRepo(t *testing.T) *sealedRepo {
	t.Helper()
	r := &sealedRepo{dir: t.TempDir()}
	r.src = sampleTree(t, 0)
	r.cfg = filepath.Join(r.dir, "etc/backtory.yaml")
	r.remote = filepath.Join(r.dir, "remote")
	mustRun(t, "init", "--config", r.cfg, "--remote", "file://"+r.remote, "--source", r.src,
		"--state-dir", filepath.Join(r.dir, "state"), "--host", "testhost")
	// Small volumes so that a set has several; no default excludes.
	raw, _ := os.ReadFile(r.cfg)
	s := strings.Replace(string(raw), "volume_size: 256MiB", "volume_size: 1MiB", 1)
	s = strings.Replace(s, `exclude: ["/proc/**", "/sys/**", "/dev/**", "/run/**", "/tmp/**", "/var/tmp/**", "/var/cache/**"]`, "exclude: []", 1)
	os.WriteFile(r.cfg, []byte(s), 0o600)
	mustRun(t, "backup", "--config", r.cfg)
	r.full = onlySet(t, r.remote, "full-")
	r.fullCopy = copyDir(t, r.src)
	time.Sleep(1100 * time.Millisecond) // set ids have a resolution of one second
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed\n"), 0o644)
	f, _ := os.OpenFile(filepath.Join(r.src, "data/random.bin"), os.O_WRONLY, 0)
	f.WriteAt([]byte("edited in place"), 12345)
	f.Close()
	os.Remove(filepath.Join(r.src, "tiny"))
	mustRun(t, "backup", "--config", r.cfg)
	r.diff = onlySet(t, r.remote, "diff-")
	r.diffCopy = copyDir(t, r.src)
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

// gpgHome returns a GNUPGHOME holding the host's secret key.
func (r *sealedRepo) gpgHome(t *testing.T) string {
	t.Helper()
	needTool(t, "gpg")
	home := filepath.Join(t.TempDir(), "gnupg")
	os.Mkdir(home, 0o700)
	cmd := exec.Command("gpg", "--batch", "--homedir", home, "--import", filepath.Join(r.dir, "etc/keys/host.sec.asc"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	return home
}

// TestSealedVolumesReadByGnuPG: stock gpg verifies our signature (GOODSIG)
// and gpg | zstd | tar restores the full; the stock-tools procedure brings
// it forward to the sealed differential.
func TestSealedVolumesReadByGnuPG(t *testing.T) {
	needTool(t, "zstd")
	r := newSealedRepo(t)
	home := r.gpgHome(t)
	out := filepath.Join(t.TempDir(), "out")
	os.Mkdir(out, 0o755)
	vols, _ := filepath.Glob(filepath.Join(r.setDir(r.full), "vol-*.tar.zst.pgp"))
	if len(vols) < 2 {
		t.Fatalf("want several sealed volumes, got %v", vols)
	}
	for _, v := range vols {
		var status bytes.Buffer
		cmd := exec.Command("gpg", "--batch", "--homedir", home, "--status-fd", "1", "-o", "/dev/null", "-d", v)
		cmd.Stdout = &status
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg -d %s: %v\n%s", v, err, status.String())
		}
		if !strings.Contains(status.String(), "[GNUPG:] GOODSIG") || !strings.Contains(status.String(), "[GNUPG:] GOODMDC") {
			t.Fatalf("gpg did not report GOODSIG and GOODMDC for %s:\n%s", v, status.String())
		}
	}
	// gpg -d | zstd -d | tar -x, all volumes into one tar.
	x := exec.Command("sh", "-c", `for v in "$2"/vol-*; do gpg --batch -q --homedir "$1" -d "$v" | zstd -dcq; done | tar --warning=no-unknown-keyword --xattrs --xattrs-include='*' --acls --numeric-owner --ignore-zeros -xpf - -C "$3"`,
		"sh", home, r.setDir(r.full), out)
	if b, err := x.CombinedOutput(); err != nil {
		t.Fatalf("gpg | zstd | tar: %v\n%s", err, b)
	}
	diffs, _ := treecmp.Diff(r.fullCopy, out, treecmp.Options{IgnoreRootMeta: true})
	for _, d := range diffs {
		if !strings.Contains(d, "sparse") {
			t.Error(d)
		}
	}

	needTool(t, "rdiff")
	fwd := filepath.Join(t.TempDir(), "forward")
	cmd := exec.Command("../../scripts/restore-with-stock-tools.sh", r.setDir(r.full), r.setDir(r.diff), fwd)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stock-tools procedure on sealed sets: %v\n%s", err, b)
	}
	diffs, _ = treecmp.Diff(r.diffCopy, fwd, treecmp.Options{IgnoreRootMeta: true})
	for _, d := range diffs {
		if !strings.Contains(d, "sparse") {
			t.Error(d)
		}
	}
}

// TestTamper: each kind of tampering is refused with an error that names
// what is wrong, a non-zero exit, and no file of the bad object written.
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
	flipBit := func(p string, off int64) {
		f, _ := os.OpenFile(p, os.O_RDWR, 0)
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x10
		f.WriteAt(b, off)
		f.Close()
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
		{"bit flipped in a volume", func() { flipBit(vol(r.full, 0), 2000) }, []string{"--set", r.full}, "vol-000001.tar.zst.pgp: does not match its manifest", 1},
		{"truncated volume", func() {
			p := vol(r.full, 0)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-100)
		}, []string{"--set", r.full}, "vol-000001.tar.zst.pgp: does not match its manifest", 1},
		{"volume swapped with another set's", func() {
			b, _ := os.ReadFile(vol(r.diff, 0))
			os.WriteFile(vol(r.full, 0), b, 0o600)
		}, []string{"--set", r.full}, "vol-000001.tar.zst.pgp: does not match its manifest", 1},
		{"manifest re-signed by another key", func() {
			resign(t, r, otherKey, filepath.Join(r.setDir(r.full), "manifest.json.pgp"))
		}, []string{"--set", r.full}, "manifest.json.pgp", 1},
		{"differential's manifest replaced by the full's", func() {
			b, _ := os.ReadFile(filepath.Join(r.setDir(r.full), "manifest.json.pgp"))
			os.WriteFile(filepath.Join(r.setDir(r.diff), "manifest.json.pgp"), b, 0o600)
		}, []string{"--set", r.diff}, "it was moved or swapped", 1},
		{"newest set removed (rollback)", func() {
			os.RemoveAll(r.setDir(r.diff))
		}, nil, "rolled back", 1},
		{"bit flipped in the file table", func() {
			flipBit(filepath.Join(r.setDir(r.full), "files.jsonl.zst.pgp"), 300)
		}, []string{"--set", r.full}, "files.jsonl.zst.pgp: does not match its manifest", 1},
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

// resign replaces a sealed object by the same plaintext sealed and signed
// with another key (still encrypted to the host, so only the signature
// tells).
func resign(t *testing.T, r *sealedRepo, otherKey, object string) {
	t.Helper()
	keys := filepath.Join(r.dir, "etc/keys")
	host, err := seal.New(seal.Config{SigningKey: filepath.Join(keys, "host.sec.asc")})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(object)
	pr, err := host.Open(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := seal.New(seal.Config{SigningKey: otherKey + ".sec", Recipients: []string{filepath.Join(keys, "host.pub.asc")}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := intruder.Seal(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	os.WriteFile(object, out.Bytes(), 0o600)
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
