package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Spool returns a directory of this process's own under spool/ for
// objects in transit, and release, which removes it. While the process
// lives it holds a flock on the directory's lock file, so that
// CleanLeftovers tells a live run's spool from that of a run that was
// killed.
func (d *Dir) Spool() (dir string, release func(), err error) {
	root := filepath.Join(d.root, "spool")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp(root, "run-")
	if err != nil {
		return "", nil, err
	}
	// The lock file appears under its name only once it is locked: a
	// cleaner that finds it unlocked knows its run is dead, and one that
	// finds none takes a young directory for a run being born.
	f, err := os.CreateTemp(dir, "lock-*")
	if err == nil {
		if err = flock(f); err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, spoolLock))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("lock spool %s: %w", dir, err)
	}
	return dir, func() {
		os.RemoveAll(dir)
		f.Close()
	}, nil
}

// spoolLock is the file in a spool directory that its process keeps locked.
const spoolLock = ".lock"

// Leftovers is what CleanLeftovers removed: files of runs that were
// killed before they could remove them.
type Leftovers struct {
	Files  int
	Bytes  int64
	dryRun bool
}

// tempGrace is how old a temporary file outside the spool must be before
// CleanLeftovers takes it for a leftover: such files (an atomic write, a
// fetch into the cache) live for moments, and a command that does not
// take the run lock may be writing one.
const tempGrace = 10 * time.Minute

// CleanLeftovers removes what killed runs left in the state directory:
// the spool directories no live process holds (and any file directly in
// spool/, where older versions spooled), and temporary files of atomic
// writes and cache fetches. Call it holding the run lock. With dryRun it
// only counts them.
func (d *Dir) CleanLeftovers(now time.Time, dryRun bool) (Leftovers, error) {
	l := Leftovers{dryRun: dryRun}
	root := filepath.Join(d.root, "spool")
	ents, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l, err
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if e.IsDir() && spoolInUse(p, now) {
			continue
		}
		errs = append(errs, l.remove(p))
	}
	for _, sub := range []string{"cache", "runs", "seen"} {
		err := filepath.WalkDir(filepath.Join(d.root, sub), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !e.Type().IsRegular() || !isTemp(e.Name()) {
				return nil
			}
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > tempGrace {
				errs = append(errs, l.remove(p))
			}
			return nil
		})
		errs = append(errs, err)
	}
	return l, errors.Join(errs...)
}

// spoolInUse reports whether a live process holds the spool directory dir.
func spoolInUse(dir string, now time.Time) bool {
	f, err := os.Open(filepath.Join(dir, spoolLock))
	if err != nil {
		// No lock file yet: a run that is just creating it, or one killed
		// in that moment.
		fi, serr := os.Stat(dir)
		return serr == nil && now.Sub(fi.ModTime()) < tempGrace
	}
	defer f.Close()
	err = flock(f)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// isTemp says whether a file name is one of a temporary file: an atomic
// write's (internal/atomicfile: .NAME.tmpNNN) or a cache fetch's (.fetch-NNN).
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".tmp") || strings.HasPrefix(name, ".fetch-"))
}

// remove deletes p (a file or a tree), unless in a dry run, and counts
// what it held.
func (l *Leftovers) remove(p string) error {
	filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && e.Name() != spoolLock {
			if fi, err := e.Info(); err == nil {
				l.Files++
				l.Bytes += fi.Size()
			}
		}
		return nil
	})
	if l.dryRun {
		return nil
	}
	return os.RemoveAll(p)
}
