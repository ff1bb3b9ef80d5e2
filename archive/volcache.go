package archive

import (
	"bufio"
	"container/list"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// VolumeCache holds opened (decrypted, still compressed) copies of sealed
// volumes for SetFS, so that a sealed volume is downloaded, checked and
// decrypted once and then read at any offset. Its files never hold more
// than Max bytes together: the least recently used volume that no reader
// holds open is removed to make room, and a volume that does not fit is
// refused. RemoveAll removes the directory and everything in it.
type VolumeCache struct {
	dir string
	max int64

	mu    sync.Mutex
	total int64
	lru   *list.List // of *cachedVolume, most recent first
	vols  map[string]*cachedVolume
	// idle holds, for the volumes that idle streams keep open, how to
	// close each of those streams when the room is needed.
	idle map[*cachedVolume]map[*idleToken]func()
}

// idleToken names one idle stream of a cached volume.
type idleToken struct{ _ byte }

type cachedVolume struct {
	key   string
	path  string
	size  int64
	refs  int
	ready chan struct{} // closed once filled (or failed)
	err   error
	elem  *list.Element
}

// NewVolumeCache returns a cache in dir (created, mode 0700) of at most
// max bytes.
func NewVolumeCache(dir string, max int64) (*VolumeCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("volume cache: %w", err)
	}
	return &VolumeCache{dir: dir, max: max, lru: list.New(), vols: map[string]*cachedVolume{},
		idle: map[*cachedVolume]map[*idleToken]func(){}}, nil
}

// Size returns the bytes the cache's files hold.
func (c *VolumeCache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// RemoveAll removes the cache's directory with everything in it.
func (c *VolumeCache) RemoveAll() error { return os.RemoveAll(c.dir) }

// cacheFile is an open cached volume; closing it lets the cache evict it.
type cacheFile struct {
	*os.File
	c *VolumeCache
	v *cachedVolume
}

func (f *cacheFile) Close() error {
	err := f.File.Close()
	f.c.mu.Lock()
	f.v.refs--
	f.c.mu.Unlock()
	return err
}

// open returns the opened copy of volume ref of set m, filling it first.
func (c *VolumeCache) open(ctx context.Context, r *Repository, m *Manifest, ref ObjectRef) (*cacheFile, error) {
	key := m.Host + "/" + m.Source + "/" + m.ID + "/" + ref.Name
	c.mu.Lock()
	v, ok := c.vols[key]
	if !ok {
		v = &cachedVolume{key: key, ready: make(chan struct{})}
		c.vols[key] = v
		v.elem = c.lru.PushFront(v)
		v.refs++
		c.mu.Unlock()
		v.err = c.fill(ctx, r, m, ref, v)
		close(v.ready)
		c.mu.Lock()
		if v.err != nil {
			v.refs--
			c.drop(v)
			c.mu.Unlock()
			return nil, v.err
		}
	} else {
		v.refs++
		c.lru.MoveToFront(v.elem)
		c.mu.Unlock()
		<-v.ready
		c.mu.Lock()
		if v.err != nil {
			v.refs--
			c.mu.Unlock()
			return nil, v.err
		}
	}
	c.mu.Unlock()
	f, err := os.Open(v.path)
	if err != nil {
		c.mu.Lock()
		v.refs--
		c.mu.Unlock()
		return nil, fmt.Errorf("volume cache: %w", err)
	}
	return &cacheFile{File: f, c: c, v: v}, nil
}

// fill downloads ref, checks it against the manifest, and decrypts it into
// the cache, after making room for it. The stored size bounds the opened one.
func (c *VolumeCache) fill(ctx context.Context, r *Repository, m *Manifest, ref ObjectRef, v *cachedVolume) error {
	if err := c.reserve(v, ref.Size); err != nil {
		return fmt.Errorf("%s of %s: %w", ref.Name, m.ID, err)
	}
	sf, err := r.fetch(ctx, m, ref)
	if err != nil {
		return err
	}
	defer sf.Close()
	pt, err := r.Sealer.Open(bufio.NewReaderSize(sf, 256<<10))
	if err != nil {
		return fmt.Errorf("%s: %w", ref.Name, err)
	}
	out, err := os.CreateTemp(c.dir, "vol-*")
	if err != nil {
		return fmt.Errorf("volume cache: %w", err)
	}
	v.path = out.Name()
	n, err := io.Copy(out, io.LimitReader(pt, ref.Size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > ref.Size {
		err = fmt.Errorf("opens to more bytes than it stores")
	}
	if err != nil {
		return fmt.Errorf("%s of %s: %w", ref.Name, m.ID, err)
	}
	c.mu.Lock()
	c.total += n - ref.Size // the reservation was the stored size
	v.size = n
	c.mu.Unlock()
	return nil
}

// setIdle records that an idle stream holds v open, and how to close it.
func (c *VolumeCache) setIdle(v *cachedVolume, close func()) *idleToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &idleToken{}
	if c.idle[v] == nil {
		c.idle[v] = map[*idleToken]func(){}
	}
	c.idle[v][t] = close
	return t
}

// unsetIdle takes an idle stream back for use; false means the cache is
// closing it already.
func (c *VolumeCache) unsetIdle(v *cachedVolume, t *idleToken) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.idle[v][t]; !ok {
		return false
	}
	delete(c.idle[v], t)
	return true
}

// reserve makes room for n bytes, evicting unused volumes from the end,
// and if that is not enough, closing the idle streams that hold others.
func (c *VolumeCache) reserve(v *cachedVolume, n int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	evict := func() {
		for e := c.lru.Back(); e != nil && c.total+n > c.max; {
			prev := e.Prev()
			if u := e.Value.(*cachedVolume); u != v && u.refs == 0 {
				c.drop(u)
			}
			e = prev
		}
	}
	evict()
	if c.total+n > c.max && len(c.idle) > 0 {
		var closers []func()
		for u, ts := range c.idle {
			if u != v {
				for t, f := range ts {
					closers = append(closers, f)
					delete(ts, t)
				}
			}
		}
		c.mu.Unlock()
		for _, f := range closers {
			f()
		}
		c.mu.Lock()
		evict()
	}
	if c.total+n > c.max {
		return fmt.Errorf("the volume cache (%d bytes, %d in use) has no room for a volume of %d bytes: raise its size", c.max, c.total, n)
	}
	c.total += n
	v.size = n
	return nil
}

// drop forgets v and removes its file; c.mu is held.
func (c *VolumeCache) drop(v *cachedVolume) {
	if c.vols[v.key] != v {
		return
	}
	delete(c.vols, v.key)
	c.lru.Remove(v.elem)
	c.total -= v.size
	if v.path != "" {
		os.Remove(v.path)
	}
}

// Dir returns the cache's directory.
func (c *VolumeCache) Dir() string { return filepath.Clean(c.dir) }
