package archive_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
)

// TestForceReplacesOtherTypes restores with --force into a target whose
// entries changed type since the backup (directory, file, symlink, FIFO,
// a symlink to a directory outside): each is replaced, none is followed,
// and the tree comes out as backed up.
func TestForceReplacesOtherTypes(t *testing.T) {
	r := newTestRepo(t, nil)
	src := r.src
	os.RemoveAll(src)
	os.Mkdir(src, 0o755)
	for _, d := range []string{"dir", "dir2/sub", "dir3"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	os.WriteFile(filepath.Join(src, "dir/f"), []byte("in dir\n"), 0o644)
	os.WriteFile(filepath.Join(src, "file"), []byte("file\n"), 0o640)
	os.WriteFile(filepath.Join(src, "file2"), []byte("file2\n"), 0o600)
	os.WriteFile(filepath.Join(src, "dir3/f"), []byte("dir3\n"), 0o600)
	os.Symlink("file", filepath.Join(src, "link"))
	m := r.backup("")

	outside := filepath.Join(t.TempDir(), "outside")
	os.Mkdir(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "f"), []byte("outside\n"), 0o600)
	target := filepath.Join(t.TempDir(), "target")
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "dir"), []byte("a file where a directory was\n"), 0o644)
	os.MkdirAll(filepath.Join(target, "file/deep/er"), 0o755)
	os.Symlink(outside, filepath.Join(target, "file2"))
	os.Symlink(outside, filepath.Join(target, "dir3"))
	os.Mkdir(filepath.Join(target, "link"), 0o755)
	if err := mkfifo(filepath.Join(target, "dir2")); err != nil {
		t.Fatal(err)
	}
	rd := r.repo()
	if _, err := rd.Restore(context.Background(), m, archive.RestoreOptions{Target: target}); err == nil {
		t.Fatal("restore into a non-empty target without --force succeeded")
	}
	_, err := rd.Restore(context.Background(), m, archive.RestoreOptions{Target: target, Force: true,
		Warn: func(p, msg string) { t.Errorf("warning: %s: %s", p, msg) }})
	if err != nil {
		t.Fatalf("restore --force: %v", err)
	}
	sameTree(t, src, target, "restore --force")
	if b, err := os.ReadFile(filepath.Join(outside, "f")); err != nil || string(b) != "outside\n" {
		t.Errorf("the directory outside changed: %q, %v", b, err)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory outside changed mode: %v", fi.Mode())
	}
}

func mkfifo(p string) error { return unix.Mkfifo(p, 0o600) }
