package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

func init() { registerKind(KindBtrfs, btrfsKind{}) }

// btrfsKind takes btrfs snapshots.
type btrfsKind struct{}

func (btrfsKind) check(spec Spec) error {
	if spec.SnapshotDir != "" && !filepath.IsAbs(spec.SnapshotDir) {
		return fmt.Errorf("snapshot_dir %q must be an absolute path", spec.SnapshotDir)
	}
	return nil
}

// btrfsSnapDir is the default directory, inside the snapshotted subvolume,
// that holds its snapshots.
const btrfsSnapDir = ".backtory-snapshots"

// btrfsSnapshot is `btrfs subvolume snapshot -r <subvolume> <dir>/<name>`.
type btrfsSnapshot struct {
	dir, name string
	ownDir    bool // dir is the default one, removed when empty
	path      string

	mu       sync.Mutex
	released bool
}

func (s *btrfsSnapshot) Path() string                 { return s.path }
func (s *btrfsSnapshot) Name() string                 { return filepath.Join(s.dir, s.name) }
func (s *btrfsSnapshot) Kind() string                 { return KindBtrfs }
func (s *btrfsSnapshot) Verify(context.Context) error { return nil }

func (s *btrfsSnapshot) Release(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := deleteBtrfs(ctx, s.Name()); err != nil {
		return err
	}
	if s.ownDir {
		_ = os.Remove(s.dir) // only when empty
	}
	s.released = true
	return nil
}

func (btrfsKind) create(ctx context.Context, spec Spec, name string) (Snapshot, error) {
	sub, rel, err := btrfsSubvolume(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("btrfs snapshot of %s: %w", spec.Path, err)
	}
	dir, own := spec.SnapshotDir, false
	if dir == "" {
		dir, own = filepath.Join(sub, btrfsSnapDir), true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("btrfs snapshot of %s: %w", spec.Path, err)
	}
	s := &btrfsSnapshot{dir: dir, name: name, ownDir: own}
	s.path = filepath.Join(s.Name(), rel)
	cctx, cancel := cleanupContext(ctx) // finish, then release after Ctrl-C
	defer cancel()
	if _, err := run(cctx, "btrfs", "subvolume", "snapshot", "-r", sub, s.Name()); err != nil {
		return nil, errors.Join(fmt.Errorf("btrfs snapshot of %s: %w", spec.Path, err), s.Release(ctx))
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("btrfs snapshot of %s: %w", spec.Path, err), s.Release(ctx))
	}
	return s, nil
}

func (btrfsKind) cleanup(ctx context.Context, spec Spec) error {
	dir := spec.SnapshotDir
	if dir == "" {
		sub, _, err := btrfsSubvolume(spec.Path)
		if err != nil {
			return fmt.Errorf("btrfs cleanup of %s: %w", spec.Path, err)
		}
		dir = filepath.Join(sub, btrfsSnapDir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("btrfs cleanup of %s: %w", spec.Path, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		if err := deleteBtrfs(ctx, filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("btrfs cleanup of stale snapshots in %s: %w", dir, firstError(errors.Join(errs...)))
	}
	return nil
}

// btrfsSubvolume finds the subvolume that holds path (the nearest directory
// upwards whose inode is 256, the root of every btrfs subvolume) and path's
// place inside it.
func btrfsSubvolume(path string) (sub, rel string, err error) {
	p, err := realPath(path)
	if err != nil {
		return "", "", err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(p, &fs); err != nil {
		return "", "", fmt.Errorf("statfs %s: %w", p, err)
	}
	if fs.Type != unix.BTRFS_SUPER_MAGIC {
		return "", "", fmt.Errorf("%s is not on btrfs; set snapshot: none or the right kind", path)
	}
	for d := p; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return "", "", fmt.Errorf("stat %s: %w", d, err)
		}
		if st.Ino == 256 {
			r, _ := within(d, p)
			return d, r, nil
		}
		if d == "/" {
			return "", "", fmt.Errorf("no btrfs subvolume holds %s", path)
		}
	}
}

// deleteBtrfs deletes a snapshot subvolume; one that is gone is fine.
func deleteBtrfs(ctx context.Context, p string) error {
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	err := retryBusy(ctx, func() error {
		_, err := run(ctx, "btrfs", "subvolume", "delete", p)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete btrfs snapshot: %w (delete it by hand: btrfs subvolume delete %s)", err, p)
	}
	return nil
}
