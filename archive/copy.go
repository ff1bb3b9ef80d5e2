package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"

	"github.com/backtory/backtory/remote"
)

// Copier copies complete sets, byte for byte, from one remote to another
// (any scheme to any scheme), without the keys: sealed objects stay
// sealed. A set's objects are copied first and each is read back and
// compared; its manifest is written last and never over an existing one,
// so a set at the destination is complete or has no manifest. Run again
// after an interruption, it skips the sets whose manifest is already there
// and the objects already copied whole.
type Copier struct {
	Src, Dst remote.Backend
	SpoolDir string       // local directory for one object in transit
	Log      *slog.Logger // nil discards
}

// CopyStats counts what a copy did.
type CopyStats struct {
	Sets       int   // sets copied
	Skipped    int   // sets found complete at the destination
	Incomplete int   // sets without a manifest at the source, not copied
	Objects    int   // objects copied
	Bytes      int64 // bytes copied
}

// ErrCopyConflict is returned for a set whose manifest at the
// destination differs from the source's.
var ErrCopyConflict = errors.New("the destination holds a different set of that name")

// CopyHost copies every complete set of every source of host.
func (c *Copier) CopyHost(ctx context.Context, host string, st *CopyStats) error {
	infos, err := c.Src.List(ctx, host)
	if err != nil {
		return fmt.Errorf("list %s: %w", host, err)
	}
	for _, src := range infos {
		if !src.IsDir {
			continue
		}
		if err := c.CopySource(ctx, host, src.Name, st); err != nil {
			return err
		}
	}
	return nil
}

// Hosts lists the host directories at the remote's root.
func Hosts(ctx context.Context, b remote.Backend) ([]string, error) {
	infos, err := b.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list the remote's root: %w", err)
	}
	var hosts []string
	for _, i := range infos {
		if i.IsDir {
			hosts = append(hosts, i.Name)
		}
	}
	return hosts, nil
}

// CopySource copies every complete set of host/source, oldest first, so
// that a differential never arrives before its full, then the objects
// beside the sets.
func (c *Copier) CopySource(ctx context.Context, host, source string, st *CopyStats) error {
	dir := SourceDir(host, source)
	infos, err := c.Src.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var ids []string
	for _, i := range infos {
		if _, _, ok := ParseSetID(i.Name); ok && i.IsDir {
			ids = append(ids, i.Name)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		_, ti, _ := ParseSetID(ids[i])
		_, tj, _ := ParseSetID(ids[j])
		return ti.Before(tj)
	})
	for _, id := range ids {
		if err := c.copySet(ctx, SetDir(host, source, id), st); err != nil {
			return err
		}
	}
	// After the sets: recover.sh names the newest.
	return c.copyBeside(ctx, dir, infos, st)
}

// copyBeside copies the objects beside the sets (recover.sh, the static
// binary and their signatures), replacing older copies: they change with
// every run, and a copy that can be recovered from needs them.
func (c *Copier) copyBeside(ctx context.Context, dir string, infos []remote.Info, st *CopyStats) error {
	for _, i := range infos {
		if i.IsDir || remote.IsTemp(i.Name) {
			continue
		}
		name := objectPath(dir, i.Name)
		if err := c.copyObject(ctx, name, i.Size, st); err != nil {
			return err
		}
	}
	return nil
}

func (c *Copier) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// copySet copies the set in dir: objects, then the manifest.
func (c *Copier) copySet(ctx context.Context, dir string, st *CopyStats) error {
	objs, err := c.Src.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	manifest := ""
	var rest []remote.Info
	for _, o := range objs {
		switch {
		case o.IsDir || remote.IsTemp(o.Name):
		case isManifest(o.Name):
			manifest = o.Name
		default:
			rest = append(rest, o)
		}
	}
	if manifest == "" {
		c.log().Warn("copy: a set without a manifest at the source (incomplete, or being written) is not copied", "set", dir)
		st.Incomplete++
		return nil
	}
	mname := objectPath(dir, manifest)
	want, err := c.readSmall(ctx, c.Src, mname)
	if err != nil {
		return err
	}
	if got, err := c.readSmall(ctx, c.Dst, mname); err == nil {
		if !bytes.Equal(got, want) {
			return fmt.Errorf("copy %s: %w (its manifest differs)", dir, ErrCopyConflict)
		}
		// Committed there: check that every object is present, whole.
		for _, o := range rest {
			name := objectPath(dir, o.Name)
			info, err := c.Dst.Stat(ctx, name)
			if err != nil {
				return fmt.Errorf("copy %s: the destination's set is damaged: %w", dir, err)
			}
			if info.Size != o.Size {
				return fmt.Errorf("copy %s: the destination's set is damaged: %s has %d bytes, the source's %d", dir, name, info.Size, o.Size)
			}
		}
		st.Skipped++
		c.log().Info("copy: already there", "set", dir)
		return nil
	} else if !remote.IsNotExist(err) {
		return err
	}
	if err := c.copyAll(ctx, dir, rest, st); err != nil {
		return err
	}
	err = remote.Create(ctx, c.Dst, mname, bytes.NewReader(want))
	if errors.Is(err, fs.ErrExist) {
		// Another copy committed it meanwhile: the same bytes are fine.
		if got, rerr := c.readSmall(ctx, c.Dst, mname); rerr != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("copy %s: %w (its manifest differs)", dir, ErrCopyConflict)
		}
	} else if err != nil {
		return fmt.Errorf("copy %s: %w", mname, err)
	}
	st.Sets++
	st.Objects++
	st.Bytes += int64(len(want))
	c.log().Info("copy: set copied", "set", dir)
	return nil
}

// copyAll copies objects of dir, as many at once as both backends take
// uploads (Capabilities.Connections), and stops at the first failure.
func (c *Copier) copyAll(ctx context.Context, dir string, objs []remote.Info, st *CopyStats) error {
	n := min(c.Src.Capabilities().Connections, c.Dst.Capabilities().Connections, len(objs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan remote.Info)
	var mu sync.Mutex // guards st and first
	var first error
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				var one CopyStats
				err := c.copyObject(ctx, objectPath(dir, o.Name), o.Size, &one)
				mu.Lock()
				st.Objects += one.Objects
				st.Bytes += one.Bytes
				if err != nil && first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range objs {
		if ctx.Err() != nil {
			break
		}
		work <- o
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// copyObject copies one object through the spool, unless the destination
// holds it whole already, and reads the copy back to compare.
func (c *Copier) copyObject(ctx context.Context, name string, size int64, st *CopyStats) error {
	f, err := os.CreateTemp(c.SpoolDir, "copy-*")
	if err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	sum, n, err := c.fetch(ctx, c.Src, name, f)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("copy %s: read %d bytes, the source lists %d", name, n, size)
	}
	if info, err := c.Dst.Stat(ctx, name); err == nil && info.Size == size {
		if dsum, _, err := c.fetch(ctx, c.Dst, name, io.Discard); err == nil && dsum == sum {
			return nil // copied whole by an earlier run
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	if err := c.Dst.Put(ctx, name, f); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	dsum, dn, err := c.fetch(ctx, c.Dst, name, io.Discard)
	if err != nil {
		return fmt.Errorf("copy %s: read back: %w", name, err)
	}
	if dsum != sum || dn != n {
		return fmt.Errorf("copy %s: the destination returns other bytes than were sent (%d bytes)", name, dn)
	}
	st.Objects++
	st.Bytes += n
	return nil
}

// fetch streams an object into w and returns its SHA-256 and length.
func (c *Copier) fetch(ctx context.Context, b remote.Backend, name string, w io.Writer) ([sha256.Size]byte, int64, error) {
	var sum [sha256.Size]byte
	rc, err := b.Get(ctx, name, 0)
	if err != nil {
		return sum, 0, fmt.Errorf("copy %s: %w", name, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), rc)
	if err != nil {
		return sum, n, fmt.Errorf("copy %s: %w", name, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}

// readSmall reads a manifest (at most maxManifest bytes).
func (c *Copier) readSmall(ctx context.Context, b remote.Backend, name string) ([]byte, error) {
	rc, err := b.Get(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("read %s: larger than %d bytes, not a manifest", name, maxManifest)
	}
	return data, nil
}
