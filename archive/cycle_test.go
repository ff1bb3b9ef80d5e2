package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/internal/treecmp"
	"github.com/backtory/backtory/remote"
)

// testRepo is a source tree, a local remote and what is needed to back up
// and restore with the archive package directly.
type testRepo struct {
	t      *testing.T
	src    string
	b      remote.Backend
	spool  string
	cache  string
	sealer archive.Sealer
	clock  time.Time
	remote string // the remote's directory
	lastID string // the last set written
}

func newTestRepo(t *testing.T, sealer archive.Sealer) *testRepo {
	return newSampleRepo(t, sealer, treecmp.SampleOptions{})
}

// newSampleRepo is newTestRepo with a sample tree built with opt.
func newSampleRepo(t *testing.T, sealer archive.Sealer, opt treecmp.SampleOptions) *testRepo {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	if err := treecmp.BuildSample(src, opt); err != nil {
		t.Fatal(err)
	}
	b, err := remote.NewLocal(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	os.Mkdir(spool, 0o700)
	return &testRepo{t: t, src: src, b: b, spool: spool, cache: filepath.Join(dir, "cache"), sealer: sealer, remote: filepath.Join(dir, "remote"),
		clock: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)}
}

func (r *testRepo) repo() *archive.Repository {
	return &archive.Repository{Backend: r.b, Sealer: r.sealer, SpoolDir: r.spool, Host: "h", Source: "s"}
}

// dirCache keeps cached objects as <dir>/<host>/<source>/<set>.<object>.
type dirCache string

func (d dirCache) Path(host, source, set, object string) string {
	return filepath.Join(string(d), host, source, set+"."+object)
}

// setDir is the local directory of set id on the remote.
func (r *testRepo) setDir(id string) string {
	return filepath.Join(r.remote, archive.SetDir("h", "s", id))
}

// backup writes a full (base == "") or a differential against base, one
// simulated day after the previous set.
func (r *testRepo) backup(base string) *archive.Manifest {
	r.t.Helper()
	return r.backupWith(base, nil, nil, nil)
}

// backupWith is backup with a change list, excludes and a notice callback.
func (r *testRepo) backupWith(base string, changes *archive.ChangeList, exclude []string, info func(string)) *archive.Manifest {
	r.t.Helper()
	r.clock = r.clock.Add(24 * time.Hour)
	opt := archive.BackupOptions{
		Changes: changes, Exclude: exclude, Info: info,
		SourcePath: r.src, Root: r.src, Snapshot: "none",
		VolumeSize: 1 << 20, Compression: archive.Compression{Kind: "zstd", Level: 3},
		Uploads: 2, Tool: "test", Started: r.clock,
		Warn: func(p, msg string) { r.t.Errorf("warning: %s: %s", p, msg) },
	}
	ctx := context.Background()
	if base != "" {
		b, err := r.repo().OpenBase(ctx, base, dirCache(r.cache))
		if err != nil {
			r.t.Fatal(err)
		}
		defer b.Close()
		opt.Base = b
	}
	m, err := r.repo().Backup(ctx, opt)
	if err != nil {
		r.t.Fatalf("backup: %v", err)
	}
	r.lastID = m.ID
	return m
}

// restore restores set id into a new directory and returns it.
func (r *testRepo) restore(id string, paths ...string) (string, error) {
	ctx := context.Background()
	rd := r.repo()
	m, _, err := rd.Manifest(ctx, id)
	if err != nil {
		return "", err
	}
	out := filepath.Join(r.t.TempDir(), "restored")
	_, err = rd.Restore(ctx, m, archive.RestoreOptions{Target: out, Paths: paths,
		Warn: func(p, msg string) { r.t.Errorf("restore warning: %s: %s", p, msg) }})
	return out, err
}

// copyTree saves the source as it is now, with cp -a.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	return dst
}

func sameTree(t *testing.T, want, got, what string) {
	t.Helper()
	diffs, err := treecmp.Diff(want, got, treecmp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("%s: ... %d more", what, len(diffs)-20)
			break
		}
		t.Errorf("%s: %s", what, d)
	}
}

// mutate changes the tree the way a day on a server does.
func mutate(t *testing.T, root string, rng *rand.Rand, day int) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(root, rel) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	edit := func(rel string, off int64, n int) {
		f, err := os.OpenFile(p(rel), os.O_WRONLY, 0)
		must(err)
		_, err = f.WriteAt(random(n), off)
		must(err)
		must(f.Close())
	}
	switch day % 4 {
	case 0:
		// Edits in the middle of a big file, an append, a truncation.
		edit("data/random.bin", int64(rng.Intn(3<<20)), 100)
		edit("data/random.bin", int64(rng.Intn(3<<20)), 5000)
		f, err := os.OpenFile(p("etc/text.conf"), os.O_APPEND|os.O_WRONLY, 0)
		must(err)
		fmt.Fprintf(f, "appended on day %d\n", day)
		must(f.Close())
		must(os.Truncate(p("data/block-edge"), int64(1000-day)))
		must(os.WriteFile(p(fmt.Sprintf("new/day%d.txt", day)), []byte(fmt.Sprintf("day %d\n", day)), 0o644))
	case 1:
		// Deletions, renames, new directories, mode/owner/xattr changes.
		os.MkdirAll(p("new"), 0o755)
		must(os.WriteFile(p(fmt.Sprintf("new/day%d.bin", day)), random(200000), 0o600))
		must(os.Rename(p("etc/hosts"), p(fmt.Sprintf("etc/hosts.day%d", day))))
		must(os.WriteFile(p("etc/hosts"), []byte(fmt.Sprintf("10.0.0.%d host\n", day)), 0o644))
		must(os.Chmod(p("bin/setgid"), os.FileMode(0o2700)|os.ModeSetgid))
		must(os.Lchown(p("tiny"), 1000+day, 1000+day))
		must(unix.Setxattr(p("data/random.bin"), "user.day", []byte(fmt.Sprint(day)), 0))
		os.RemoveAll(p("private"))
	case 2:
		// Type changes: file -> symlink, dir -> file, symlink -> dir.
		os.RemoveAll(p("tiny"))
		must(os.Symlink("etc/hosts", p("tiny")))
		os.RemoveAll(p("emptydir"))
		must(os.WriteFile(p("emptydir"), []byte("was a dir\n"), 0o644))
		os.Remove(p("data/dangling-link"))
		must(os.MkdirAll(p("data/dangling-link/inner"), 0o755))
		// Metadata-only change with the same content, and a content change
		// that keeps size and mtime.
		fi, err := os.Stat(p("data/random.bin"))
		must(err)
		must(os.Chmod(p("data/random.bin"), 0o640))
		edit("data/block-edge", 0, 10)
		must(os.Chtimes(p("data/block-edge"), fi.ModTime(), fi.ModTime()))
	case 3:
		// Hardlink changes: a new link, a removed link, a changed group.
		os.Remove(p("links/b"))
		must(os.Link(p("links/a"), p(fmt.Sprintf("links/d%d", day))))
		edit("links/a", 0, 5)
		must(os.WriteFile(p(fmt.Sprintf("links/own%d", day)), []byte("own\n"), 0o644))
		must(os.Link(p(fmt.Sprintf("links/own%d", day)), p(fmt.Sprintf("links/z/own%d", day))))
		os.Remove(p("data/sparse-tail-data"))
		edit("data/sparse", 30<<20, 4000) // fills part of a hole
	}
}

// TestDifferentialCycles runs days of mutations, each followed by a
// differential, with new fulls in between, and restores every point in
// time: each must equal a copy of the tree saved at that moment.
func TestDifferentialCycles(t *testing.T) {
	r := newTestRepo(t, nil)
	rng := rand.New(rand.NewSource(42))
	type point struct {
		id   string
		copy string
		kind archive.Kind
	}
	var points []point
	full := ""
	for day := 0; day < 11; day++ {
		if day > 0 {
			mutate(t, r.src, rng, day)
		}
		base := full
		if day%5 == 0 {
			base = ""
		}
		m := r.backup(base)
		if m.Kind == archive.KindFull {
			full = m.ID
		}
		points = append(points, point{m.ID, copyTree(t, r.src), m.Kind})
	}
	for _, pt := range points {
		got, err := r.restore(pt.id)
		if err != nil {
			t.Fatalf("restore %s: %v", pt.id, err)
		}
		sameTree(t, pt.copy, got, pt.id)
	}

	// Any differential can go: delete one, every other point still restores.
	victim := points[2]
	if victim.kind != archive.KindDiff {
		t.Fatalf("point 2 is a %s", victim.kind)
	}
	ctx := context.Background()
	dir := archive.SetDir("h", "s", victim.id)
	infos, _ := r.b.List(ctx, dir)
	for _, i := range infos {
		if err := r.b.Delete(ctx, dir+"/"+i.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, pt := range points {
		if pt.id == victim.id {
			continue
		}
		got, err := r.restore(pt.id)
		if err != nil {
			t.Fatalf("after deleting %s, restore %s: %v", victim.id, pt.id, err)
		}
		sameTree(t, pt.copy, got, pt.id+" after deleting "+victim.id)
	}
}

// TestDifferentialIsSmall checks that a differential of a small change
// stores about the change, not the tree.
func TestDifferentialIsSmall(t *testing.T) {
	r := newTestRepo(t, nil)
	full := r.backup("")
	f, err := os.OpenFile(filepath.Join(r.src, "data/random.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte("x"), 100), 1<<20)
	f.Close()
	diff := r.backup(full.ID)
	if diff.Stats.Changed != 1 {
		t.Errorf("differential counts %d changed paths, want 1", diff.Stats.Changed)
	}
	if diff.Stats.StoredBytes > full.Stats.StoredBytes/20 {
		t.Errorf("differential stored %d bytes for a 100-byte edit (full: %d)", diff.Stats.StoredBytes, full.Stats.StoredBytes)
	}
}

// TestStockToolsBringFullForward follows the documented manual procedure
// (scripts/restore-with-stock-tools.sh: GNU tar, zstd, rdiff) to restore a
// full and bring it forward to a differential.
func TestStockToolsBringFullForward(t *testing.T) {
	for _, tool := range []string{"rdiff", "zstd", "tar", "setfattr"} {
		testenv.NeedTool(t, tool)
	}
	r := newTestRepo(t, nil)
	rng := rand.New(rand.NewSource(7))
	full := r.backup("")
	for day := 1; day <= 4; day++ {
		mutate(t, r.src, rng, day)
	}
	diff := r.backup(full.ID)
	want := copyTree(t, r.src)
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("../scripts/restore-with-stock-tools.sh", "--unauthenticated", r.setDir(full.ID), r.setDir(diff.ID), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stock-tools procedure: %v\n%s", err, b)
	}
	diffs, err := treecmp.Diff(want, out, treecmp.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

// countingBackend counts the Gets of each object (the one fault-free
// wrapper these tests need: to see how often a manifest is read).
type countingBackend struct {
	remote.Backend
	gets map[string]int
}

func (c *countingBackend) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	c.gets[name]++
	return c.Backend.Get(ctx, name, off)
}

// TestManifestReadOnce: a Repository reads a set's manifest from the
// remote once, however often it is asked; a deleted set's is forgotten.
func TestManifestReadOnce(t *testing.T) {
	r := newSampleRepo(t, nil, treecmp.SampleOptions{})
	m := r.backup("")
	cb := &countingBackend{Backend: r.b, gets: map[string]int{}}
	repo := &archive.Repository{Backend: cb, SpoolDir: r.spool, Host: "h", Source: "s"}
	ctx := context.Background()
	for range 3 {
		got, _, err := repo.Manifest(ctx, m.ID)
		if err != nil || got.ID != m.ID {
			t.Fatalf("Manifest = %v, %v", got, err)
		}
	}
	name := archive.SetDir("h", "s", m.ID) + "/" + archive.ManifestName(false)
	if cb.gets[name] != 1 {
		t.Errorf("the manifest was read %d times, want 1", cb.gets[name])
	}
	if err := repo.DeleteSet(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.Manifest(ctx, m.ID); err == nil {
		t.Error("the manifest of a deleted set is still returned")
	}
}
