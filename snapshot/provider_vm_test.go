//go:build vmtest

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The tests that need the VM's kernel (ZFS, device-mapper): built only
// with -tags vmtest, which test/vm/test.sh gives when it builds this
// package's tests for the VM. On the host they do not exist, so nothing
// skips there; in the VM, strict mode fails any missing tool.

// vmBeds are the ZFS and LVM beds of TestProviders.
var vmBeds = []namedBed{
	{"zfs", setupZFS},
	{"lvm-classic-ext4", func(t *testing.T) bed { return setupLVM(t, false) }},
	{"lvm-thin-xfs", func(t *testing.T) bed { return setupLVM(t, true) }},
}

// setupZFS: a pool on a file vdev (on ext4 on the VM's first disk: whole
// disks need udev), dataset <pool>/srv, source <mount>/www.
func setupZFS(t *testing.T) bed {
	needTools(t, "zfs", "zpool", "mkfs.ext4")
	disk := vmDisk(t, 0)
	host := "/mnt/zfs-vdev"
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(disk, host, "ext4", 0, ""); err != nil {
		sh(t, "mkfs.ext4", "-q", "-F", disk)
		if err := syscall.Mount(disk, host, "ext4", 0, ""); err != nil {
			t.Fatalf("mount %s: %v", disk, err)
		}
	}
	pool := fmt.Sprintf("bt%d", rand.IntN(1e6))
	vdev := filepath.Join(host, pool+".img")
	sh(t, "truncate", "-s", "512M", vdev)
	sh(t, "zpool", "create", "-f", "-m", "/mnt/"+pool, pool, vdev)
	t.Cleanup(func() {
		sh(t, "zpool", "destroy", "-f", pool)
		_ = os.Remove(vdev)
		_ = syscall.Unmount(host, 0)
	})
	ds := pool + "/srv"
	sh(t, "zfs", "create", ds)
	return bed{
		spec:      Spec{Kind: KindZFS, Path: "/mnt/" + pool + "/srv/www", Dataset: ds},
		snapshots: func(t *testing.T) []string { return zfsSnaps(t, ds) },
	}
}

func zfsSnaps(t *testing.T, ds string) []string {
	var names []string
	for _, l := range strings.Split(sh(t, "zfs", "list", "-H", "-r", "-t", "snapshot", "-o", "name", ds), "\n") {
		if _, s, ok := strings.Cut(l, "@"); ok && strings.HasPrefix(s, Prefix) {
			names = append(names, l)
		}
	}
	return names
}

// setupLVM: VG on the VM's second disk, an ext4 LV (classic snapshots) or an
// xfs thin LV (thin snapshots), source <mount>/www.
func setupLVM(t *testing.T, thin bool) bed {
	needTools(t, "lvm", "mkfs.ext4", "mkfs.xfs")
	disk := vmDisk(t, 1)
	vg := fmt.Sprintf("btvg%d", rand.IntN(1e6))
	sh(t, "pvcreate", "-ff", "--yes", disk)
	sh(t, "vgcreate", vg, disk)
	mnt := t.TempDir()
	t.Cleanup(func() {
		_ = syscall.Unmount(mnt, 0)
		sh(t, "vgremove", "--yes", "--force", vg)
		sh(t, "pvremove", "--yes", disk)
	})
	fs, lv := "ext4", "data"
	if thin {
		fs = "xfs"
		sh(t, "lvcreate", "--yes", "-L", "512M", "-T", vg+"/pool")
		sh(t, "lvcreate", "--yes", "-V", "384M", "-T", vg+"/pool", "-n", lv)
		sh(t, "mkfs.xfs", "-q", "/dev/"+vg+"/"+lv)
	} else {
		sh(t, "lvcreate", "--yes", "-L", "256M", "-n", lv, vg)
		sh(t, "mkfs.ext4", "-q", "/dev/"+vg+"/"+lv)
	}
	if err := syscall.Mount("/dev/"+vg+"/"+lv, mnt, fs, 0, ""); err != nil {
		t.Fatalf("mount %s: %v", lv, err)
	}
	return bed{
		spec: Spec{Kind: KindLVM, Path: filepath.Join(mnt, "www"), LV: vg + "/" + lv},
		snapshots: func(t *testing.T) []string {
			var names []string
			for _, l := range strings.Fields(sh(t, "lvs", "--noheadings", "-o", "lv_name", vg)) {
				if strings.HasPrefix(l, Prefix) {
					names = append(names, l)
				}
			}
			return names
		},
	}
}

// vmDisk returns the i-th blank disk of the VM.
func vmDisk(t *testing.T, i int) string {
	t.Helper()
	d := strings.Fields(os.Getenv("BACKTORY_VM_DISKS"))
	if i >= len(d) {
		t.Fatalf("BACKTORY_VM_DISKS has no disk %d", i)
	}
	return d[i]
}

func TestLVMOverflow(t *testing.T) {
	b := setupLVM(t, false)
	b.spec.Size = "4M" // one extent
	writeFile(t, filepath.Join(b.spec.Path, "a"), "x")
	s, err := Create(context.Background(), b.spec, "overflow")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	// Rewrite far more than 4 MiB of the origin.
	f, err := os.Create(filepath.Join(b.spec.Path, "big"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := 0; i < 24; i++ {
		for j := range buf {
			buf[j] = byte(rand.Uint32())
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	syscall.Sync()
	err = s.Verify(context.Background())
	if !errors.Is(err, ErrInvalidated) || !strings.Contains(err.Error(), "snapshot_size") {
		t.Fatalf("Verify after overflow = %v, want ErrInvalidated naming snapshot_size", err)
	}
	t.Logf("the user sees: %v", err)
	if err := s.Release(context.Background()); !errors.Is(err, ErrInvalidated) {
		t.Fatalf("Release after overflow = %v, want ErrInvalidated", err)
	}
	if got := b.snapshots(t); len(got) != 0 {
		t.Fatalf("snapshots after Release = %q", got)
	}
}

func TestZFSPathMapping(t *testing.T) {
	b := setupZFS(t)
	parent := b.spec.Dataset
	child := parent + "/www"
	mnt := filepath.Dir(b.spec.Path) // the parent's mount point
	sh(t, "zfs", "create", child)
	src := filepath.Join(mnt, "www", "site")
	writeFile(t, filepath.Join(src, "index.html"), "v1")

	spec := Spec{Kind: KindZFS, Path: src, Dataset: parent}
	if _, err := Create(context.Background(), spec, "map"); err == nil || !strings.Contains(err.Error(), "recursive: true") {
		t.Fatalf("Create of a descendant's path without recursive = %v, want advice", err)
	}
	spec.Recursive = true
	s, err := Create(context.Background(), spec, "map")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	want := filepath.Join(mnt, "www", ".zfs", "snapshot", "backtory-map", "site")
	if s.Path() != want {
		t.Errorf("Path = %q, want %q", s.Path(), want)
	}
	writeFile(t, filepath.Join(src, "index.html"), "v2")
	if got := readFile(t, filepath.Join(s.Path(), "index.html")); got != "v1" {
		t.Errorf("index.html in the snapshot = %q", got)
	}
	if got := zfsSnaps(t, parent); len(got) != 2 {
		t.Errorf("recursive snapshots = %q, want parent and child", got)
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := zfsSnaps(t, parent); len(got) != 0 {
		t.Errorf("snapshots after Release = %q", got)
	}

	// A recursive snapshot left by a killed run is removed everywhere.
	if _, err := Create(context.Background(), spec, "stale"); err != nil {
		t.Fatal(err)
	}
	if err := CleanupStale(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if got := zfsSnaps(t, parent); len(got) != 0 {
		t.Errorf("snapshots after CleanupStale = %q", got)
	}

	// The dataset is found from the path when not given.
	s, err = Create(context.Background(), Spec{Kind: KindZFS, Path: src}, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != child+"@backtory-auto" {
		t.Errorf("Name = %q", s.Name())
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLVMBindMountMapping(t *testing.T) {
	b := setupLVM(t, false)
	writeFile(t, filepath.Join(b.spec.Path, "sub", "f"), "x")
	bind := t.TempDir()
	sh(t, "mount", "--bind", filepath.Join(b.spec.Path, "sub"), bind)
	t.Cleanup(func() { _ = syscall.Unmount(bind, 0) })
	spec := b.spec
	spec.Path = bind
	s, err := Create(context.Background(), spec, "bind")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	if got := readFile(t, filepath.Join(s.Path(), "f")); got != "x" {
		t.Errorf("f through the bind mount's snapshot = %q", got)
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestZFSChangeList: a full's snapshot is kept; zfs diff between it and a
// later snapshot names every kind of change under the source, relative to
// it; an older kept snapshot is destroyed by the next Keep; and Changes
// refuses (ErrNoChangeList) when the kept snapshot is gone or the source
// spans datasets.
func TestZFSChangeList(t *testing.T) {
	b := setupZFS(t)
	ctx := context.Background()
	src := b.spec.Path
	writeFile(t, filepath.Join(src, "a", "edit"), "v1")
	writeFile(t, filepath.Join(src, "a", "gone"), "x")
	writeFile(t, filepath.Join(src, "a", "old name"), "x")
	writeFile(t, filepath.Join(src, "dir", "inside"), "x")
	writeFile(t, filepath.Join(src, "same"), "x")
	writeFile(t, filepath.Join(filepath.Dir(src), "outside"), "x")
	full, err := Create(ctx, b.spec, "full-20260101T000000Z")
	if err != nil {
		t.Fatal(err)
	}
	if err := Keep(ctx, full, "full-20260101T000000Z"); err != nil {
		t.Fatal(err)
	}
	if err := full.Release(ctx); err != nil {
		t.Fatal(err)
	}
	kept := b.spec.Dataset + "@" + KeptPrefix + "full-20260101T000000Z"
	if out := sh(t, "zfs", "list", "-H", "-o", "name", "-t", "snapshot", kept); !strings.Contains(out, kept) {
		t.Fatalf("the kept snapshot %s is not there: %q", kept, out)
	}
	if got := zfsSnaps(t, b.spec.Dataset); len(got) != 0 {
		t.Errorf("backtory- snapshots after Keep and Release: %q", got)
	}

	writeFile(t, filepath.Join(src, "a", "edit"), "v2")
	os.Remove(filepath.Join(src, "a", "gone"))
	os.Rename(filepath.Join(src, "a", "old name"), filepath.Join(src, "a", "new\nname"))
	os.Rename(filepath.Join(src, "dir"), filepath.Join(src, "dir2"))
	writeFile(t, filepath.Join(src, "new", "file"), "x")
	writeFile(t, filepath.Join(filepath.Dir(src), "outside"), "y")
	snap, err := Create(ctx, b.spec, "diff-20260102T000000Z")
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release(ctx)
	got := map[string]bool{}
	scan, err := Changes(ctx, b.spec, snap, "full-20260101T000000Z", func(rel string, subtree bool) error {
		got[fmt.Sprintf("%s %v", rel, subtree)] = true
		return nil
	})
	if err != nil || scan != "zfs diff" {
		t.Fatalf("Changes = %q, %v", scan, err)
	}
	for _, w := range []string{"a false", "a/edit false", "a/gone false", "a/old name false", "a/new\nname false",
		"dir false", "dir2 true", "new true", "new/file false"} {
		if !got[w] {
			t.Errorf("Changes did not give %q; gave %v", w, got)
		}
	}
	for g := range got {
		if strings.HasPrefix(g, "same") || strings.HasPrefix(g, "..") || strings.HasPrefix(g, "/") || strings.Contains(g, "outside") {
			t.Errorf("Changes gave %q", g)
		}
	}

	// The next full's Keep destroys the older kept snapshot.
	if err := Keep(ctx, snap, "full-20260103T000000Z"); err != nil {
		t.Fatal(err)
	}
	out := sh(t, "zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", b.spec.Dataset)
	if strings.Contains(out, kept) || !strings.Contains(out, KeptPrefix+"full-20260103T000000Z") {
		t.Errorf("kept snapshots after a second Keep: %q", out)
	}
	s3, err := Create(ctx, b.spec, "diff-20260104T000000Z")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Release(ctx)
	none := func(string, bool) error { return nil }
	if _, err := Changes(ctx, b.spec, s3, "full-20260101T000000Z", none); !errors.Is(err, ErrNoChangeList) || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("Changes since a destroyed snapshot = %v, want ErrNoChangeList: ... is gone", err)
	}
	if err := Forget(ctx, b.spec, ""); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, "zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", b.spec.Dataset); strings.Contains(out, KeptPrefix) {
		t.Errorf("kept snapshots after Forget: %q", out)
	}
	rec := b.spec
	rec.Recursive = true
	r, err := Create(ctx, rec, "rec")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx)
	if _, err := Changes(ctx, rec, r, "full-20260103T000000Z", none); !errors.Is(err, ErrNoChangeList) || !strings.Contains(err.Error(), "recursive") {
		t.Errorf("Changes of a recursive snapshot = %v, want ErrNoChangeList", err)
	}
}
