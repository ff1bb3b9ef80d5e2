package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/backtory/backtory/internal/childenv"
)

// Change lists. A full's snapshot can be kept (Keep) under a name made
// from the full's set id; a later run asks Changes what changed between
// it and the run's snapshot, and walks only that. Only ZFS answers
// (`zfs diff`, which needs the snapshot itself: a bookmark has no names).
// btrfs does not: `btrfs subvolume find-new` lists files with new data
// only (no deletion, rename or metadata change), and a `btrfs send
// --no-data` stream parser is not written yet; LVM cannot say.

// KeptPrefix starts the name of a full's kept snapshot. It is not Prefix:
// CleanupStale leaves kept snapshots alone.
const KeptPrefix = "backtory_"

// ErrNoChangeList means the provider cannot say what changed (the kind
// cannot, the kept snapshot is gone, the source spans datasets): walk.
var ErrNoChangeList = errors.New("no change list")

// Keep keeps snap after the run as the snapshot of full set setID (ZFS
// only: other kinds do nothing), and destroys the kept snapshots of older
// fulls of the same dataset. After Keep, Release leaves snap alone.
func Keep(ctx context.Context, snap Snapshot, setID string) error {
	s, ok := snap.(*zfsSnapshot)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released || s.recursive {
		return nil
	}
	kept, err := snapName(setID)
	if err != nil {
		return err
	}
	kept = KeptPrefix + strings.TrimPrefix(kept, Prefix)
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	err = retryBusy(ctx, func() error {
		_, err := run(ctx, "zfs", "rename", s.dataset+"@"+s.name, s.dataset+"@"+kept)
		return err
	})
	if err != nil {
		return fmt.Errorf("keep the full's snapshot: %w", err)
	}
	s.released = true
	return forgetKept(ctx, s.dataset, kept)
}

// Forget destroys the kept snapshots of spec's dataset (all of them, or
// the one of full setID), when the full is pruned or replaced.
func Forget(ctx context.Context, spec Spec, setID string) error {
	if kind(spec) != KindZFS {
		return nil
	}
	ds, err := zfsDataset(spec)
	if err != nil {
		return err
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	out, err := run(ctx, "zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-d", "1", ds)
	if err != nil {
		return fmt.Errorf("list kept snapshots of %s: %w", ds, err)
	}
	var errs []error
	for _, name := range strings.Fields(out) {
		_, short, _ := strings.Cut(name, "@")
		if strings.HasPrefix(short, KeptPrefix) && (setID == "" || short == KeptPrefix+setID) {
			errs = append(errs, destroyZFS(ctx, name, false))
		}
	}
	return errors.Join(errs...)
}

// forgetKept destroys the kept snapshots of dataset other than keep.
func forgetKept(ctx context.Context, dataset, keep string) error {
	out, err := run(ctx, "zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-d", "1", dataset)
	if err != nil {
		return fmt.Errorf("list kept snapshots of %s: %w", dataset, err)
	}
	var errs []error
	for _, name := range strings.Fields(out) {
		_, short, _ := strings.Cut(name, "@")
		if strings.HasPrefix(short, KeptPrefix) && short != keep {
			errs = append(errs, destroyZFS(ctx, name, false))
		}
	}
	return errors.Join(errs...)
}

// Changes tells fn each path, relative to spec.Path, that may differ
// between the kept snapshot of full setID and snap; subtree means that
// everything below the path must be read too (a new or renamed
// directory). It returns the scan's name for the manifest ("zfs diff"),
// or an error wrapping ErrNoChangeList when the provider cannot say.
func Changes(ctx context.Context, spec Spec, snap Snapshot, setID string, fn func(rel string, subtree bool) error) (string, error) {
	s, ok := snap.(*zfsSnapshot)
	if !ok {
		return "", fmt.Errorf("%w: snapshot %s cannot list changes", ErrNoChangeList, snap.Kind())
	}
	if s.recursive {
		return "", fmt.Errorf("%w: zfs diff does not cover descendant datasets (recursive: true)", ErrNoChangeList)
	}
	kept, err := snapName(setID)
	if err != nil {
		return "", err
	}
	since := s.dataset + "@" + KeptPrefix + strings.TrimPrefix(kept, Prefix)
	if _, err := run(ctx, "zfs", "list", "-H", "-o", "name", "-t", "snapshot", since); err != nil {
		return "", fmt.Errorf("%w: the full's snapshot %s is gone", ErrNoChangeList, since)
	}
	// Paths come absolute under the dataset's mount point.
	src, err := realPath(spec.Path)
	if err != nil {
		return "", err
	}
	err = stream(ctx, func(r io.Reader) error {
		return parseZFSDiff(r, func(c zfsChange) error {
			for i, p := range []string{c.path, c.newPath} {
				if p == "" {
					continue
				}
				rel, ok := within(src, p)
				if !ok {
					continue // outside the source
				}
				if rel == "." {
					continue
				}
				subtree := c.typ == '/' && (c.kind == '+' || (c.kind == 'R' && i == 1))
				if err := fn(rel, subtree); err != nil {
					return err
				}
			}
			return nil
		})
	}, "zfs", "diff", "-FHt", since, s.Name())
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoChangeList, err)
	}
	return "zfs diff", nil
}

// zfsDataset is the dataset of spec: set, or the one mounted at or above
// its path.
func zfsDataset(spec Spec) (string, error) {
	if spec.Dataset != "" {
		return spec.Dataset, nil
	}
	src, err := realPath(spec.Path)
	if err != nil {
		return "", err
	}
	ms, err := mounts()
	if err != nil {
		return "", err
	}
	m, _, ok := mountOf(ms, src, func(m mountEntry) bool { return m.FSType == "zfs" && !strings.Contains(m.Source, "@") })
	if !ok {
		return "", fmt.Errorf("%s is not on a mounted ZFS dataset", spec.Path)
	}
	return m.Source, nil
}

// zfsChange is one line of `zfs diff -FHt`.
type zfsChange struct {
	kind    byte   // '+' created, '-' removed, 'M' modified, 'R' renamed
	typ     byte   // 'F' file, '/' directory, '@' symlink, '|' FIFO, 'B', 'C' devices, '=' socket, '>' door, 'P' event port
	path    string // absolute
	newPath string // a rename's new path
}

// parseZFSDiff reads `zfs diff -FHt` output: per line, tab-separated, the
// time of the change, the change, the file type, the path, and for a
// rename the new path; bytes outside printable ASCII, the space and the
// backslash are written \0ooo.
func parseZFSDiff(r io.Reader, fn func(zfsChange) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 4 {
			return fmt.Errorf("zfs diff line %d: %d fields", n, len(f))
		}
		if _, err := strconv.ParseFloat(f[0], 64); err != nil {
			return fmt.Errorf("zfs diff line %d: bad time %q", n, f[0])
		}
		var c zfsChange
		if len(f[1]) != 1 || !strings.Contains("+-MR", f[1]) {
			return fmt.Errorf("zfs diff line %d: bad change %q", n, f[1])
		}
		if len(f[2]) != 1 || !strings.Contains("F/@|BC=>P", f[2]) {
			return fmt.Errorf("zfs diff line %d: bad file type %q", n, f[2])
		}
		c.kind, c.typ = f[1][0], f[2][0]
		want := 4
		if c.kind == 'R' {
			want = 5
		}
		if len(f) != want {
			return fmt.Errorf("zfs diff line %d: %d fields for change %c", n, len(f), c.kind)
		}
		var err error
		if c.path, err = unescapeZFS(f[3]); err != nil {
			return fmt.Errorf("zfs diff line %d: %w", n, err)
		}
		if c.kind == 'R' {
			if c.newPath, err = unescapeZFS(f[4]); err != nil {
				return fmt.Errorf("zfs diff line %d: %w", n, err)
			}
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("zfs diff: %w", err)
	}
	return nil
}

// unescapeZFS undoes zfs diff's \0ooo escapes and checks the path is
// absolute and clean.
func unescapeZFS(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+5 > len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+5], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 4
	}
	p := b.String()
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") || strings.Contains(p+"/", "/../") ||
		strings.Contains(p+"/", "/./") || strings.Contains(p, "//") {
		return "", fmt.Errorf("not a clean absolute path: %q", p)
	}
	return p, nil
}

// stream runs a command like run, handing its standard output to read as
// it comes, so that memory does not grow with a long change list.
func stream(ctx context.Context, read func(io.Reader) error, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Env = childenv.Environ("LC_ALL=C")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	rerr := read(out)
	if rerr != nil {
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	if werr != nil {
		return fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), toolMessage(stderr.String(), werr))
	}
	return rerr
}
