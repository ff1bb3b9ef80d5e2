// Package snapshot freezes a source's tree for the length of one backup run:
// it takes a ZFS, LVM2 or btrfs snapshot (or none), tells the caller where
// the source's path can be read inside it, and removes it afterwards —
// including snapshots left behind by an earlier run that was killed.
//
// A run does:
//
//	if err := snapshot.CleanupStale(ctx, spec); err != nil { ... }
//	snap, err := snapshot.Create(ctx, spec, setID)
//	if err != nil { ... }
//	defer snap.Release(context.WithoutCancel(ctx)) // also after Ctrl-C
//	... read snap.Path() ...
//	if err := snap.Verify(ctx); err != nil { ... the data read is unusable ... }
//	if err := snap.Release(ctx); err != nil { ... }
//
// Snapshots are named Prefix+tag; CleanupStale removes every snapshot with
// that prefix that belongs to the spec's dataset, logical volume or btrfs
// subvolume, so it must run under the run's lock.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Prefix starts the name of every snapshot this package creates.
const Prefix = "backtory-"

// Kinds of snapshot.
const (
	KindNone  = "none"
	KindZFS   = "zfs"
	KindLVM   = "lvm"
	KindBtrfs = "btrfs"
)

// Spec says what to snapshot. The config keys are given in brackets.
type Spec struct {
	Kind string // [snapshot] zfs | lvm | btrfs | none ("" means none)
	Path string // [path] the source's absolute path on the live system

	// ZFS
	Dataset   string // [dataset] e.g. tank/srv; "" = the ZFS dataset mounted at or above Path
	Recursive bool   // [recursive] also snapshot descendant datasets, atomically

	// LVM2
	LV   string // [lv] vg/lv holding Path's filesystem
	Size string // [snapshot_size] COW space of a classic snapshot: 10%ORIGIN (default), 2G, 512M...; "" on a thin LV = thin snapshot

	// btrfs
	SnapshotDir string // [snapshot_dir] where btrfs snapshots go; "" = <subvolume>/.backtory-snapshots
}

// Snapshot is a frozen view of a source, valid until Release.
type Snapshot interface {
	// Path is where the source's tree (Spec.Path) is read.
	Path() string
	// Name is the snapshot's full name (tank/srv@backtory-x, vg0/backtory-x,
	// the btrfs snapshot's path); "" for kind none.
	Name() string
	// Kind is the snapshot kind; "none" means the live tree was read.
	Kind() string
	// Verify reports whether the snapshot is still a faithful copy. Call it
	// after reading and before committing the backup: an LVM snapshot whose
	// copy-on-write space filled up returns an error wrapping ErrInvalidated.
	Verify(ctx context.Context) error
	// Release removes the snapshot. It is idempotent, runs even when ctx is
	// already cancelled (it is bounded by its own timeout), and also returns
	// Verify's error so a run cannot end well on an invalidated snapshot.
	Release(ctx context.Context) error
}

// ErrInvalidated means the snapshot stopped being a copy of the source
// during the run (an LVM COW snapshot overflowed): what was read is garbage.
var ErrInvalidated = errors.New("snapshot invalidated")

// Create takes a snapshot of spec, named Prefix+tag (characters outside
// [A-Za-z0-9_.-] in tag become '-').
func Create(ctx context.Context, spec Spec, tag string) (Snapshot, error) {
	if err := Check(spec); err != nil {
		return nil, err
	}
	name, err := snapName(tag)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", spec.Path, err)
	}
	return providers[kind(spec)].create(ctx, spec, name)
}

// CleanupStale removes the snapshots (names starting with Prefix) that
// earlier runs of spec left behind, with their mounts. Call it under the run
// lock, before Create.
func CleanupStale(ctx context.Context, spec Spec) error {
	if err := Check(spec); err != nil {
		return err
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	return providers[kind(spec)].cleanup(ctx, spec)
}

// Check validates spec without touching the system. Its errors are one line.
func Check(spec Spec) error {
	p := spec.Path
	if p == "" || !filepath.IsAbs(p) {
		return fmt.Errorf("source path %q: must be an absolute path", p)
	}
	k := kind(spec)
	prov, ok := providers[k]
	if !ok {
		return fmt.Errorf("source %s: snapshot %q is not one of %s", p, spec.Kind, strings.Join(Kinds(), ", "))
	}
	misplaced := func(key string, set bool, want string) error {
		if set && k != want {
			return fmt.Errorf("source %s: %s is only for snapshot: %s", p, key, want)
		}
		return nil
	}
	if err := errors.Join(
		misplaced("dataset", spec.Dataset != "", KindZFS),
		misplaced("recursive", spec.Recursive, KindZFS),
		misplaced("lv", spec.LV != "", KindLVM),
		misplaced("snapshot_size", spec.Size != "", KindLVM),
		misplaced("snapshot_dir", spec.SnapshotDir != "", KindBtrfs),
	); err != nil {
		return firstError(err)
	}
	if err := prov.check(spec); err != nil {
		return fmt.Errorf("source %s: %w", p, err)
	}
	return nil
}

// Kinds lists the snapshot kinds Spec.Kind accepts: the registered
// providers in reverse alphabetical order, none last (zfs, lvm, btrfs, none).
func Kinds() []string {
	ks := make([]string, 0, len(providers))
	for k := range providers {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if (ks[i] == KindNone) != (ks[j] == KindNone) {
			return ks[j] == KindNone
		}
		return ks[i] > ks[j]
	})
	return ks
}

// provider is one kind of snapshot. Each registers itself in its file's
// init, as remote backends register their URL scheme.
type provider interface {
	// check validates the kind's own keys of spec without touching the
	// system; its error is one line, without the "source <path>: " prefix.
	check(spec Spec) error
	// create takes the snapshot named name of a checked spec.
	create(ctx context.Context, spec Spec, name string) (Snapshot, error)
	// cleanup removes the stale snapshots of a checked spec; ctx is already
	// detached from cancellation and bounded.
	cleanup(ctx context.Context, spec Spec) error
}

var providers = map[string]provider{}

func registerKind(kind string, p provider) { providers[kind] = p }

// releaseTimeout bounds cleanup, which runs even after the run's context
// was cancelled.
const releaseTimeout = 2 * time.Minute

var tagRE = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func kind(spec Spec) string {
	if spec.Kind == "" {
		return KindNone
	}
	return spec.Kind
}

// snapName turns a tag into a snapshot name valid for ZFS, LVM and btrfs.
func snapName(tag string) (string, error) {
	if tag == "" {
		return "", errors.New("snapshot: empty tag")
	}
	n := Prefix + tagRE.ReplaceAllString(tag, "-")
	if len(n) > 100 {
		return "", fmt.Errorf("snapshot: tag %q is too long (at most %d characters)", tag, 100-len(Prefix))
	}
	return n, nil
}

// cleanupContext detaches ctx from its cancellation and bounds it: cleanup
// must run after Ctrl-C, but not forever.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
}

// firstError keeps the first of joined errors, for one-line messages.
func firstError(err error) error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()[0]
	}
	return err
}

// within returns p relative to root, or false when p is outside root.
func within(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

func init() { registerKind(KindNone, noneKind{}) }

// noneKind reads the live tree.
type noneKind struct{}

func (noneKind) check(Spec) error { return nil }

func (noneKind) create(_ context.Context, spec Spec, _ string) (Snapshot, error) {
	return noneSnapshot{path: filepath.Clean(spec.Path)}, nil
}

func (noneKind) cleanup(context.Context, Spec) error { return nil }

// noneSnapshot is the live tree.
type noneSnapshot struct{ path string }

func (s noneSnapshot) Path() string                  { return s.path }
func (s noneSnapshot) Name() string                  { return "" }
func (s noneSnapshot) Kind() string                  { return KindNone }
func (s noneSnapshot) Verify(context.Context) error  { return nil }
func (s noneSnapshot) Release(context.Context) error { return nil }
