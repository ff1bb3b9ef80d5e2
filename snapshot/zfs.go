package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	zfs "github.com/mistifyio/go-zfs/v3"
)

func init() { registerKind(KindZFS, zfsKind{}) }

// zfsKind takes ZFS snapshots.
type zfsKind struct{}

var datasetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*$`)

func (zfsKind) check(spec Spec) error {
	if spec.Dataset != "" && !datasetRE.MatchString(spec.Dataset) {
		return fmt.Errorf("dataset %q is not a ZFS filesystem name like pool/data", spec.Dataset)
	}
	return nil
}

// zfsSnapshot is `zfs snapshot [-r] dataset@name`, read through the
// mounted dataset's .zfs/snapshot/<name> directory.
type zfsSnapshot struct {
	dataset   string // the spec's dataset
	name      string // backtory-<tag>
	recursive bool
	path      string

	mu       sync.Mutex
	released bool
}

func (s *zfsSnapshot) Path() string                 { return s.path }
func (s *zfsSnapshot) Name() string                 { return s.dataset + "@" + s.name }
func (s *zfsSnapshot) Kind() string                 { return KindZFS }
func (s *zfsSnapshot) Verify(context.Context) error { return nil }

func (s *zfsSnapshot) Release(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := destroyZFS(ctx, s.Name(), s.recursive); err != nil {
		return err
	}
	s.released = true
	return nil
}

// go-zfs runs zfs without a context; `zfs snapshot` and `zfs destroy` are
// short, atomic operations, so each call runs to completion and the context
// is checked between calls.

func (zfsKind) create(ctx context.Context, spec Spec, name string) (Snapshot, error) {
	src, err := realPath(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("zfs snapshot of %s: %w", spec.Path, err)
	}
	ms, err := mounts()
	if err != nil {
		return nil, fmt.Errorf("zfs snapshot of %s: %w", spec.Path, err)
	}
	// The dataset that holds the source path decides where it is read.
	holder, rel, ok := mountOf(ms, src, func(m mountEntry) bool { return m.FSType == "zfs" && !strings.Contains(m.Source, "@") })
	if !ok {
		return nil, fmt.Errorf("zfs snapshot of %s: the path is not on a mounted ZFS dataset; set snapshot: none or the right kind", spec.Path)
	}
	dataset := spec.Dataset
	if dataset == "" {
		dataset = holder.Source
	}
	if holder.Source != dataset {
		if !strings.HasPrefix(holder.Source, dataset+"/") {
			return nil, fmt.Errorf("zfs snapshot of %s: the path is on dataset %s, not %s: set dataset: %s", spec.Path, holder.Source, dataset, holder.Source)
		}
		if !spec.Recursive {
			return nil, fmt.Errorf("zfs snapshot of %s: the path is on %s, a descendant of dataset %s: set recursive: true or dataset: %s", spec.Path, holder.Source, dataset, holder.Source)
		}
	}
	if holder.Root != "/" {
		return nil, fmt.Errorf("zfs snapshot of %s: %s is a bind mount of %s; give the dataset's own mount point", spec.Path, holder.Point, holder.Source)
	}
	ds := &zfs.Dataset{Name: dataset}
	if _, err := ds.Snapshot(name, spec.Recursive); err != nil {
		// go-zfs lists the new snapshot after creating it; if only that
		// listing failed, the snapshot exists: remove it before reporting.
		if _, gerr := zfs.GetDataset(dataset + "@" + name); gerr == nil {
			_ = destroyZFS(context.Background(), dataset+"@"+name, spec.Recursive)
		}
		return nil, fmt.Errorf("zfs snapshot %s@%s: %s", dataset, name, zfsMessage(err))
	}
	s := &zfsSnapshot{
		dataset:   dataset,
		name:      name,
		recursive: spec.Recursive,
		path:      filepath.Join(holder.Point, ".zfs", "snapshot", name, rel),
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("zfs snapshot of %s: %w", spec.Path, err), s.Release(ctx))
	}
	return s, nil
}

func (zfsKind) cleanup(ctx context.Context, spec Spec) error {
	dataset := spec.Dataset
	if dataset == "" {
		src, err := realPath(spec.Path)
		if err != nil {
			return fmt.Errorf("zfs cleanup of %s: %w", spec.Path, err)
		}
		ms, err := mounts()
		if err != nil {
			return fmt.Errorf("zfs cleanup of %s: %w", spec.Path, err)
		}
		m, _, ok := mountOf(ms, src, func(m mountEntry) bool { return m.FSType == "zfs" && !strings.Contains(m.Source, "@") })
		if !ok {
			return fmt.Errorf("zfs cleanup of %s: the path is not on a mounted ZFS dataset", spec.Path)
		}
		dataset = m.Source
	}
	// Lists the dataset and its descendants: a recursive snapshot's stale
	// children are found even if the parent's snapshot is already gone.
	snaps, err := zfs.Snapshots(dataset)
	if err != nil {
		return fmt.Errorf("zfs cleanup: list snapshots of %s: %s", dataset, zfsMessage(err))
	}
	var errs []error
	for _, sn := range snaps {
		_, short, _ := strings.Cut(sn.Name, "@")
		if !strings.HasPrefix(short, Prefix) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("zfs cleanup of %s: %w", dataset, err)
		}
		if err := destroyZFS(ctx, sn.Name, false); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("zfs cleanup of stale snapshots of %s: %w", dataset, firstError(errors.Join(errs...)))
	}
	return nil
}

// destroyZFS destroys a snapshot (with its descendants' namesakes when
// recursive); a snapshot that is already gone is not an error.
func destroyZFS(ctx context.Context, name string, recursive bool) error {
	var flags zfs.DestroyFlag
	if recursive {
		flags = zfs.DestroyRecursive
	}
	err := retryBusy(ctx, func() error {
		err := (&zfs.Dataset{Name: name}).Destroy(flags)
		if err != nil && isBusy(err) {
			return errors.New(zfsMessage(err))
		}
		return err
	})
	if err == nil || strings.Contains(zfsMessage(err), "could not find any snapshots to destroy") ||
		strings.Contains(zfsMessage(err), "does not exist") {
		return nil
	}
	return fmt.Errorf("zfs destroy %s: %s (remove it by hand: zfs destroy %s%s)", name, zfsMessage(err), map[bool]string{true: "-r ", false: ""}[recursive], name)
}

// zfsMessage is the last line zfs printed, without go-zfs's command dump.
func zfsMessage(err error) string {
	var ze *zfs.Error
	if errors.As(err, &ze) {
		return toolMessage(ze.Stderr, ze.Err)
	}
	return err.Error()
}
