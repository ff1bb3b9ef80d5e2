package archive_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/internal/treecmp"
)

// TestRoundTripEveryKindOfFile backs up a tree holding every kind of file,
// restores it, and compares entry by entry; then restores a part of it.
func TestRoundTripEveryKindOfFile(t *testing.T) {
	big := int64(0)
	if !testing.Short() {
		big = 4<<30 + 12345 // past 4 GiB, sparse
	}
	r := newSampleRepo(t, nil, treecmp.SampleOptions{BigSparse: big})
	m := r.backup("")
	out, err := r.restore(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, r.src, out, m.ID)
	if err := r.repo().Verify(context.Background(), m, true); err != nil {
		t.Fatalf("verify --deep: %v", err)
	}

	// Restoring a part: one directory and a hardlink whose first name is elsewhere.
	part, err := r.restore(m.ID, "etc", "/links/z/c")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/hosts", "etc/text.conf", "links/z/c"} {
		if _, err := os.Lstat(filepath.Join(part, p)); err != nil {
			t.Errorf("partial restore: %v", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(part, "data")); err == nil {
		t.Error("partial restore wrote a path that was not asked for")
	}
	if b, _ := os.ReadFile(filepath.Join(part, "links/z/c")); string(b) != "linked content\n" {
		t.Errorf("partial restore of a hardlink: got %q", b)
	}
}

// TestStockToolsRestoreVolumes extracts the volumes with zstd and tar alone
// (GNU tar and bsdtar) and compares the trees.
func TestStockToolsRestoreVolumes(t *testing.T) {
	testenv.NeedTool(t, "zstd")
	r := newTestRepo(t, nil)
	m := r.backup("")
	vols, _ := filepath.Glob(filepath.Join(r.setDir(m.ID), "vol-*.tar.zst"))
	if len(vols) < 2 {
		t.Fatalf("want several volumes, got %d", len(vols))
	}
	for _, tool := range []struct{ name, extract string }{
		{"tar", "tar --xattrs --xattrs-include=* --acls --numeric-owner -xpf - -C"},
		{"bsdtar", "LC_ALL=C.UTF-8 bsdtar --xattrs --acls --numeric-owner -xpf - -C"},
	} {
		t.Run(tool.name, func(t *testing.T) {
			testenv.NeedTool(t, tool.name)
			out := filepath.Join(t.TempDir(), "out")
			os.Mkdir(out, 0o755)
			for _, v := range vols {
				cmd := exec.Command("sh", "-c", "zstd -dc < \"$1\" | "+tool.extract+" \"$2\"", "sh", v, out)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s: %v\n%s", v, err, stderr.String())
				}
			}
			// Stock tools restore content, links, modes and owners; they do
			// not restore sparseness from our plain entries, and the root's
			// and directories' mtimes depend on extraction order.
			diffs, err := treecmp.Diff(r.src, out, treecmp.Options{IgnoreRootMeta: true, IgnoreDirMTime: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				if strings.Contains(d, "sparse") {
					continue
				}
				t.Error(d)
			}
		})
	}
}

// sealedRepo is a repository sealed with a host key, over a sample tree,
// with a full and a differential already written.
type sealedRepo struct {
	*testRepo
	keys               string // directory of host.pub, host.sec, other.pub, other.sec
	full, diff         string
	fullCopy, diffCopy string
}

func newSealedRepo(t *testing.T) *sealedRepo {
	t.Helper()
	keys := t.TempDir()
	for _, name := range []string{"host", "other"} {
		k, err := seal.GenerateKey(name, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := k.SaveFiles(filepath.Join(keys, name+".pub"), filepath.Join(keys, name+".sec"), nil); err != nil {
			t.Fatal(err)
		}
	}
	r := &sealedRepo{keys: keys}
	r.testRepo = newTestRepo(t, r.box(t, "host", "host"))
	r.full = r.backup("").ID
	r.fullCopy = copyTree(t, r.src)
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed\n"), 0o644)
	f, _ := os.OpenFile(filepath.Join(r.src, "data/random.bin"), os.O_WRONLY, 0)
	f.WriteAt([]byte("edited in place"), 12345)
	f.Close()
	os.Remove(filepath.Join(r.src, "tiny"))
	r.diff = r.backup(r.full).ID
	r.diffCopy = copyTree(t, r.src)
	return r
}

// box returns a seal.Box that signs with key signer and encrypts to
// recipient.
func (r *sealedRepo) box(t *testing.T, signer, recipient string) *seal.Box {
	t.Helper()
	b, err := seal.New(seal.Config{SigningKey: filepath.Join(r.keys, signer+".sec"),
		Recipients: []string{filepath.Join(r.keys, recipient+".pub")}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gpgHome returns a GNUPGHOME holding the host's secret key.
func (r *sealedRepo) gpgHome(t *testing.T) string {
	t.Helper()
	testenv.NeedTool(t, "gpg")
	home := filepath.Join(t.TempDir(), "gnupg")
	os.Mkdir(home, 0o700)
	cmd := exec.Command("gpg", "--batch", "--homedir", home, "--import", filepath.Join(r.keys, "host.sec"))
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
	testenv.NeedTool(t, "zstd")
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

	testenv.NeedTool(t, "rdiff")
	fwd := filepath.Join(t.TempDir(), "forward")
	cmd := exec.Command("../scripts/restore-with-stock-tools.sh", "--signer", r.box(t, "host", "host").SignerFingerprint(), r.setDir(r.full), r.setDir(r.diff), fwd)
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

// TestTamper: each kind of tampering is refused with a one-line error that
// names what is wrong, and no file of the bad object is written.
func TestTamper(t *testing.T) {
	r := newSealedRepo(t)
	pristine := copyTree(t, r.remote)
	reset := func() {
		os.RemoveAll(r.remote)
		exec.Command("cp", "-a", pristine, r.remote).Run()
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
	tests := []struct {
		name   string
		tamper func()
		set    string
		sealer archive.Sealer // default: the host's
		want   string         // in the error
		stock  string         // in the error of scripts/restore-with-stock-tools.sh ("": not run)
	}{
		{"bit flipped in a volume", func() { flipBit(vol(r.full, 0), 2000) }, r.full, nil, "vol-000001.tar.zst.pgp: does not match its manifest", "vol-000001.tar.zst.pgp: FAILED"},
		{"truncated volume", func() {
			p := vol(r.full, 0)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-100)
		}, r.full, nil, "vol-000001.tar.zst.pgp: does not match its manifest", "vol-000001.tar.zst.pgp: FAILED"},
		{"volume swapped with another set's", func() {
			b, _ := os.ReadFile(vol(r.diff, 0))
			os.WriteFile(vol(r.full, 0), b, 0o600)
		}, r.full, nil, "vol-000001.tar.zst.pgp: does not match its manifest", "vol-000001.tar.zst.pgp: FAILED"},
		{"manifest re-signed by another key", func() {
			resign(t, r, filepath.Join(r.setDir(r.full), archive.ManifestName(true)))
		}, r.full, nil, "manifest.json.pgp", "manifest.json.pgp is not signed by"},
		{"differential's manifest replaced by the full's", func() {
			b, _ := os.ReadFile(filepath.Join(r.setDir(r.full), archive.ManifestName(true)))
			os.WriteFile(filepath.Join(r.setDir(r.diff), archive.ManifestName(true)), b, 0o600)
		}, r.diff, nil, "it was moved or swapped", "is not a differential"},
		{"bit flipped in the file table", func() {
			flipBit(filepath.Join(r.setDir(r.full), archive.FilesName(true, true)), 300)
		}, r.full, nil, "files.jsonl.zst.pgp: does not match its manifest", "files.jsonl.zst.pgp: FAILED"},
		{"wrong decryption key", func() {}, r.full, r.box(t, "other", "other"), "key", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reset()
			tc.tamper()
			repo := r.repo()
			if tc.sealer != nil {
				repo.Sealer = tc.sealer
			}
			out := filepath.Join(t.TempDir(), "out")
			ctx := context.Background()
			m, _, err := repo.Manifest(ctx, tc.set)
			if err == nil {
				_, err = repo.Restore(ctx, m, archive.RestoreOptions{Target: out})
			}
			if err == nil {
				t.Fatal("restore of tampered data succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tc.want)
			}
			noFileIn(t, out)
			if tc.stock == "" {
				return
			}
			// The stock-tools procedure refuses the same, before writing a file.
			testenv.NeedTool(t, "zstd")
			args := []string{"--signer", r.box(t, "host", "host").SignerFingerprint(), r.setDir(r.full)}
			if tc.set == r.diff {
				args = append(args, r.setDir(r.diff))
			}
			out = filepath.Join(t.TempDir(), "stock")
			cmd := exec.Command("../scripts/restore-with-stock-tools.sh", append(args, out)...)
			cmd.Env = append(os.Environ(), "GNUPGHOME="+r.gpgHome(t))
			b, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(b), tc.stock) {
				t.Errorf("stock-tools procedure: %v\n%s\nwant an error with %q", err, b, tc.stock)
			}
			noFileIn(t, out)
		})
	}
}

// noFileIn fails the test if dir holds a regular file.
func noFileIn(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			t.Errorf("a file was written from tampered data: %s", p)
		}
		return nil
	})
}

// resign replaces a sealed object by the same plaintext sealed and signed
// with the other key (still encrypted to the host, so only the signature
// tells).
func resign(t *testing.T, r *sealedRepo, object string) {
	t.Helper()
	raw, _ := os.ReadFile(object)
	pr, err := r.box(t, "host", "host").Open(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := r.box(t, "other", "host").Seal(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	os.WriteFile(object, out.Bytes(), 0o600)
}

// TestDeepVerifyReadsEachObjectOnce: a deep verify downloads each volume
// and the signatures once (the decoding pass checks what it reads; the
// rest is checked alone; the file table is read twice, as by a restore:
// its plan, then the extraction), and still finds damage in an object the
// decoding pass does not read (the block signatures).
func TestDeepVerifyReadsEachObjectOnce(t *testing.T) {
	r := newTestRepo(t, nil)
	full := r.backup("")
	if full.Sigs == nil || len(full.Volumes) == 0 {
		t.Fatalf("the full has no signatures or no volume: %+v", full)
	}
	cb := &countingBackend{Backend: r.b, gets: map[string]int{}}
	repo := &archive.Repository{Backend: cb, SpoolDir: r.spool, Host: "h", Source: "s"}
	ctx := context.Background()
	if err := repo.Verify(ctx, full, true); err != nil {
		t.Fatalf("verify --deep: %v", err)
	}
	dir := archive.SetDir("h", "s", full.ID)
	refs := append([]archive.ObjectRef{*full.Sigs}, full.Volumes...)
	for _, ref := range refs {
		if n := cb.gets[dir+"/"+ref.Name]; n != 1 {
			t.Errorf("%s was downloaded %d times, want 1", ref.Name, n)
		}
	}
	if n := cb.gets[dir+"/"+full.Files.Name]; n != 2 {
		t.Errorf("the file table was downloaded %d times, want 2", n)
	}

	// Damage the signatures, which a restore never reads.
	p := filepath.Join(r.setDir(full.ID), full.Sigs.Name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = repo.Verify(ctx, full, true)
	if err == nil || !strings.Contains(err.Error(), full.Sigs.Name) {
		t.Errorf("verify --deep of a set with damaged signatures: %v", err)
	}
}
