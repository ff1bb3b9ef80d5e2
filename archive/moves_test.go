package archive_test

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/internal/treecmp"
	"github.com/backtory/backtory/recovery"
)

// moveTree builds, in an empty source, the files that TestMoves renames.
func moveTree(t *testing.T, src string, size int) {
	t.Helper()
	rng := rand.New(rand.NewSource(19))
	for _, p := range []string{"a/same-dir", "a/other-dir", "a/modified", "a/copied", "a/linked", "b/kept"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
		data := make([]byte, size)
		rng.Read(data)
		if err := os.WriteFile(filepath.Join(src, p), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, "a/linked"), filepath.Join(src, "b/linked2")); err != nil {
		t.Fatal(err)
	}
}

// moveFiles renames and moves the files of moveTree: in the same
// directory, to a new directory, renamed then modified, copied to a new
// inode and the old one removed, and the first name of a hardlinked file.
func moveFiles(t *testing.T, src string) {
	t.Helper()
	mv := func(a, b string) {
		os.MkdirAll(filepath.Join(src, filepath.Dir(b)), 0o755)
		if err := os.Rename(filepath.Join(src, a), filepath.Join(src, b)); err != nil {
			t.Fatal(err)
		}
	}
	mv("a/same-dir", "a/same-dir.renamed")
	mv("a/other-dir", "c/new/other-dir")
	mv("a/modified", "0-modified")
	f, err := os.OpenFile(filepath.Join(src, "0-modified"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("a few changed bytes"), 1000)
	f.Close()
	if out, err := exec.Command("cp", "-p", filepath.Join(src, "a/copied"), filepath.Join(src, "b/copy")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.Remove(filepath.Join(src, "a/copied"))
	mv("a/linked", "c/linked")
	os.Chtimes(filepath.Join(src, "c"), time.Unix(1e9, 0), time.Unix(1e9, 0))
}

// TestMoves backs up renamed and moved files as deltas against their old
// paths (format 2) and restores the differential identically with backtory,
// with the stock-tools script and with recover.sh --stock.
func TestMoves(t *testing.T) {
	for _, tool := range []string{"rdiff", "zstd", "tar", "dash"} {
		testenv.NeedTool(t, tool)
	}
	defer archive.SetMoveMinSize(64 << 10)()
	const size = 256 << 10
	r := newSampleRepo(t, nil, treecmp.SampleOptions{})
	// Stock tools restore holes as zeros: no sparse file here.
	os.Remove(filepath.Join(r.src, "data/sparse"))
	os.Remove(filepath.Join(r.src, "data/sparse-tail-data"))
	moveTree(t, r.src, size)
	full := r.backup("")
	moveFiles(t, r.src)
	diff := r.backup(full.ID)
	want := copyTree(t, r.src)

	if diff.Format != 2 {
		t.Errorf("a differential with moved files has format %d, want 2", diff.Format)
	}
	// Four moved files are deltas; the hardlinked one is stored whole.
	if diff.Stats.StoredBytes > 1*size+size/2 {
		t.Errorf("the differential stored %d bytes for four moved and one relinked %d-byte files", diff.Stats.StoredBytes, size)
	}
	moved := map[string]string{}
	rd := r.repo()
	table, tc, err := rd.Files(t.Context(), diff)
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := table.Next()
		if err != nil {
			break
		}
		if e.BasePath != "" {
			moved[string(e.Path)] = string(e.BasePath)
		}
	}
	tc.Close()
	wantMoved := map[string]string{"a/same-dir.renamed": "a/same-dir", "c/new/other-dir": "a/other-dir",
		"0-modified": "a/modified", "b/copy": "a/copied"}
	for n, o := range wantMoved {
		if moved[n] != o {
			t.Errorf("%s: stored against %q, want a delta against %q", n, moved[n], o)
		}
	}
	if len(moved) != len(wantMoved) {
		t.Errorf("moved files: %v, want %v", moved, wantMoved)
	}

	got, err := r.restore(diff.ID)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	sameTree(t, want, got, "backtory restore")
	if err := rd.Verify(t.Context(), diff, true); err != nil {
		t.Errorf("verify --deep: %v", err)
	}
	// Only the moved file, from a subset of paths.
	got, err = r.restore(diff.ID, "c/new")
	if err != nil {
		t.Fatalf("restore c/new: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(got, "c/new/other-dir")); len(b) != size {
		t.Errorf("restore of c/new alone: other-dir has %d bytes", len(b))
	}

	stock := filepath.Join(t.TempDir(), "stock")
	if out, err := exec.Command("../scripts/restore-with-stock-tools.sh", "--unauthenticated", r.setDir(full.ID), r.setDir(diff.ID), stock).CombinedOutput(); err != nil {
		t.Fatalf("restore-with-stock-tools.sh: %v\n%s", err, out)
	}
	stockCmp(t, want, stock, "restore-with-stock-tools.sh")

	work := t.TempDir()
	script := filepath.Join(work, "recover.sh")
	f, _ := os.Create(script)
	err = recovery.Render(f, recovery.ScriptParams{Host: "h", RemoteURL: "file://" + r.remote,
		Sources: []recovery.Source{{Name: "s", Path: "/"}},
		Sets:    []recovery.SetRef{{Source: "s", ID: full.ID}, {Source: "s", ID: diff.ID, Base: full.ID}},
		Layout:  &recovery.Layout{}, LayoutSet: diff.ID, Tool: "test", Generated: time.Now()})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(work, "to")
	if out, err := exec.Command("dash", script, "files", "--stock", "--to", to, "--work", filepath.Join(work, "w")).CombinedOutput(); err != nil {
		t.Fatalf("recover.sh files --stock: %v\n%s", err, out)
	}
	stockCmp(t, want, to, "recover.sh --stock")
}

func stockCmp(t *testing.T, want, got, what string) {
	t.Helper()
	diffs, err := treecmp.Diff(want, got, treecmp.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s: %s", what, d)
	}
}
