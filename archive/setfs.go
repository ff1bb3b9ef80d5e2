package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/backtory/backtory/rsyncdelta"
)

// SetFS is one set's tree, read at random without restoring it: Lookup
// and ReadDir answer from the set's file table, Open returns a File whose
// ReadAt reads one file's content from the volumes. A differential's
// unchanged files are read from its full, and a changed one is its full's
// version patched with the delta on the fly.
//
// Sets of format 2 say where each file starts in its volume (a zstd frame
// offset, docs/format.md §4), so a read decompresses from the nearest
// frame at or before it; sets of format 1 are read from the volume's start.
// Unsealed volumes are read from the remote with ranged reads
// (remote.Backend.Get at an offset); sealed ones cannot be seeked, so each
// is downloaded once, checked against the manifest, decrypted (still
// compressed) into a VolumeCache and read from there.
//
// A SetFS keeps its file table in memory (one Entry per path). It is safe
// for concurrent use.
type SetFS struct {
	ctx      context.Context
	r        *Repository
	m        *Manifest
	base     *SetFS // a differential's full
	cache    *VolumeCache
	entries  map[string]*Entry
	children map[string][]string // directory -> names inside, sorted
	links    map[string]int      // first name of a hardlink group -> number of names
	subdirs  map[string]int      // directory -> directories inside

	// Idle volume streams, kept so that files read in table order (find
	// and cat, cp -r) continue one decompression instead of starting each
	// at its frame again.
	mu   sync.Mutex
	idle []*volStream
}

// volStream is a volume decompressed from the start of a frame; pos is
// how far into that frame's plain bytes it was read.
type volStream struct {
	vol   int
	frame int64
	pos   int64
	err   error
	rc    io.ReadCloser
	cf    *cacheFile // the cached copy it reads, for a sealed volume
	tok   *idleToken // while idle: the cache may close it to make room
}

func (v *volStream) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.pos += int64(n)
	if err != nil && err != io.EOF {
		v.err = err
	}
	return n, err
}

// maxIdle bounds the idle streams of a set.
const maxIdle = 4

// take returns an idle stream of frame in volume vol read no further than
// skip, if there is one.
func (s *SetFS) take(vol int, frame, skip int64) *volStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.idle {
		if v.vol == vol && v.frame == frame && v.pos <= skip {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			if v.cf != nil && !s.cache.unsetIdle(v.cf.v, v.tok) {
				return nil // the cache is closing it
			}
			return v
		}
	}
	return nil
}

// unidle removes v from the idle streams; the cache calls it (through the
// closer put registers) before closing v to make room.
func (s *SetFS) unidle(v *volStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range s.idle {
		if u == v {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			return
		}
	}
}

// put keeps v for a later file, or closes it.
func (s *SetFS) put(v *volStream) {
	if v.err != nil {
		v.rc.Close()
		return
	}
	s.mu.Lock()
	if v.cf != nil {
		// An idle stream holds its cached volume open: let the cache
		// close it when it needs the room.
		v.tok = s.cache.setIdle(v.cf.v, func() { s.unidle(v); v.rc.Close() })
	}
	s.idle = append(s.idle, v)
	var old *volStream
	if len(s.idle) > maxIdle {
		old, s.idle = s.idle[0], s.idle[1:]
	}
	s.mu.Unlock()
	if old != nil && (old.cf == nil || s.cache.unsetIdle(old.cf.v, old.tok)) {
		old.rc.Close()
	}
}

// OpenSet reads the file table of set id (and, for a differential, its
// full's) and returns its tree. ctx bounds every later read of the set;
// sealed volumes are decrypted into cache, which may be nil for an
// unsealed set.
func (r *Repository) OpenSet(ctx context.Context, id string, cache *VolumeCache) (*SetFS, error) {
	m, _, err := r.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Sealed && cache == nil {
		return nil, fmt.Errorf("set %s is sealed: reading it needs a VolumeCache", id)
	}
	s := &SetFS{ctx: ctx, r: r, m: m, cache: cache, entries: map[string]*Entry{},
		children: map[string][]string{}, links: map[string]int{}, subdirs: map[string]int{}}
	bm, err := r.fullOf(ctx, m)
	if err != nil {
		return nil, err
	}
	if bm != nil {
		if s.base, err = r.OpenSet(ctx, bm.ID, cache); err != nil {
			return nil, err
		}
	}
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	for {
		e, err := table.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", id, err)
		}
		p := string(e.Path)
		if p != "." {
			dir := path.Dir(p)
			if d, ok := s.entries[dir]; !ok || d.Type != TypeDir {
				return nil, fmt.Errorf("set %s: %q comes without its parent directory: the set is malformed", id, p)
			}
			s.children[dir] = append(s.children[dir], path.Base(p))
			if e.Type == TypeDir {
				s.subdirs[dir]++
			}
		} else if e.Type != TypeDir {
			return nil, fmt.Errorf("set %s: the root is a %s", id, e.Type)
		}
		switch e.Type {
		case TypeFile:
			s.links[p] = 1
		case TypeHardlink:
			if t, ok := s.entries[string(e.Target)]; !ok || t.Type != TypeFile {
				return nil, fmt.Errorf("set %s: hardlink %q names %q, not a file listed before it", id, p, e.Target)
			}
			s.links[string(e.Target)]++
		}
		e.CTime, e.Inode = 0, 0
		s.entries[p] = e
	}
	if _, ok := s.entries["."]; !ok {
		return nil, fmt.Errorf("set %s: the file table has no root", id)
	}
	for _, names := range s.children {
		sort.Strings(names)
	}
	return s, nil
}

// Manifest returns the set's manifest.
func (s *SetFS) Manifest() *Manifest { return s.m }

// Lookup returns the entry of path p ("." is the root). A hardlink's
// entry is returned as such; Resolve gives the file it names.
func (s *SetFS) Lookup(p string) (*Entry, bool) {
	e, ok := s.entries[p]
	return e, ok
}

// Resolve returns the file entry a hardlink names, or e itself.
func (s *SetFS) Resolve(e *Entry) *Entry {
	if e.Type == TypeHardlink {
		if t, ok := s.entries[string(e.Target)]; ok {
			return t
		}
	}
	return e
}

// ReadDir returns the names inside directory p, sorted bytewise.
func (s *SetFS) ReadDir(p string) ([]string, error) {
	e, ok := s.entries[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	if e.Type != TypeDir {
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	return s.children[p], nil
}

// Links returns the link count of path p as stat reports it: the names of
// a file's hardlink group, 2 plus the subdirectories of a directory, 1
// for anything else.
func (s *SetFS) Links(p string) int {
	e, ok := s.entries[p]
	if !ok {
		return 0
	}
	switch e.Type {
	case TypeDir:
		return 2 + s.subdirs[p]
	case TypeFile:
		return s.links[p]
	case TypeHardlink:
		return s.links[string(e.Target)]
	}
	return 1
}

// Open returns the content of the regular file at p (a hardlink reads its
// group's file). Close it when done.
func (s *SetFS) Open(p string) (*File, error) {
	e, ok := s.entries[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	e = s.Resolve(e)
	if e.Type != TypeFile {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	f := &File{s: s, e: e, hash: e.Hash}
	switch e.Change {
	case ChangeUnchanged, ChangeMeta, ChangeDelta:
		if s.base == nil {
			return nil, fmt.Errorf("%s: the file table points into a full, but set %s is a full itself", p, s.m.ID)
		}
	}
	switch e.Change {
	case "", ChangeWhole, ChangeNew:
		f.open = func(off int64) (io.ReadCloser, int64, error) { return s.openContent(e, tarName(e.Path, false), off) }
	case ChangeUnchanged, ChangeMeta:
		be, ok := s.base.entries[string(e.Path)]
		if !ok || be.Type != TypeFile || be.Volume != e.BaseVolume {
			return nil, fmt.Errorf("%s: not in the full %s where the differential says it is", p, s.base.m.ID)
		}
		if f.hash == "" {
			f.hash = be.Hash
		}
		f.open = func(off int64) (io.ReadCloser, int64, error) {
			return s.base.openContent(be, tarName(be.Path, false), off)
		}
	case ChangeDelta:
		f.open = func(int64) (io.ReadCloser, int64, error) { return s.openPatched(e) }
	}
	return f, nil
}

// openContent returns a reader of e's content (stored under tar entry
// name in e.Volume) from content offset start <= off, and start.
func (s *SetFS) openContent(e *Entry, name string, off int64) (io.ReadCloser, int64, error) {
	if e.Volume < 1 || e.Volume > len(s.m.Volumes) {
		return nil, 0, fmt.Errorf("set %s: the file table names volume %d, which the set does not have", s.m.ID, e.Volume)
	}
	ref := s.m.Volumes[e.Volume-1]
	zst := s.m.Compression == "zstd"
	framed := s.m.Format >= formatFrames
	if framed && off >= FrameSpan && len(e.Frames) > 0 {
		k := min(int(off/FrameSpan), len(e.Frames))
		rc, _, err := s.openVolume(ref, e.Frames[k-1], zst)
		if err != nil {
			return nil, 0, err
		}
		start := int64(k) * FrameSpan
		return readCloser{io.LimitReader(rc, e.Size-start), rc}, start, nil
	}
	var at int64
	if framed {
		at = e.Frame
	}
	vs := s.take(e.Volume, at, e.Skip)
	if vs == nil || !framed {
		rc, cf, err := s.openVolume(ref, at, zst)
		if err != nil {
			return nil, 0, err
		}
		vs = &volStream{vol: e.Volume, frame: at, rc: rc, cf: cf}
	}
	var rc io.ReadCloser = readCloser{vs, closerFunc(func() error { s.put(vs); return nil })}
	if framed {
		if _, err := io.CopyN(io.Discard, vs, e.Skip-vs.pos); err != nil {
			vs.rc.Close()
			return nil, 0, fmt.Errorf("%s of %s: %w", ref.Name, s.m.ID, err)
		}
	} else {
		rc = vs.rc // format 1: each file reads its volume from the start
	}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			err = fmt.Errorf("has no entry %q, which the file table lists", name)
		}
		if err != nil {
			vs.rc.Close() // not kept: the volume or the table is wrong
			return nil, 0, fmt.Errorf("%s of %s: %w", ref.Name, s.m.ID, err)
		}
		if h.Name == name {
			if h.Typeflag != tar.TypeReg || (name == tarName(e.Path, false) && h.Size != e.Size) {
				vs.rc.Close() // not kept: the volume or the table is wrong
				return nil, 0, fmt.Errorf("%s of %s: entry %q does not match the file table", ref.Name, s.m.ID, name)
			}
			return readCloser{tr, rc}, 0, nil
		}
		if framed {
			vs.rc.Close() // not kept: the volume or the table is wrong
			return nil, 0, fmt.Errorf("%s of %s: %q where the file table says %q starts", ref.Name, s.m.ID, h.Name, name)
		}
	}
}

// openPatched returns a reader of a delta entry's content from its start:
// the full's version patched with the differential's delta.
func (s *SetFS) openPatched(e *Entry) (io.ReadCloser, int64, error) {
	// A renamed or moved file's delta is against its old path (format 2).
	basePath, name := string(e.Path), deltaPrefix+string(e.Path)
	if e.BasePath != "" {
		basePath, name = string(e.BasePath), movedPrefix+string(e.Path)
	}
	basis, err := s.base.Open(basePath)
	if err != nil {
		return nil, 0, err
	}
	delta, _, err := s.openContent(e, name, 0)
	if err != nil {
		basis.Close()
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	go func() {
		err := rsyncdelta.Patch(basis, bufio.NewReaderSize(delta, 64<<10), pw)
		delta.Close()
		basis.Close()
		pw.CloseWithError(err)
	}()
	return pr, 0, nil
}

// openVolume returns the volume's plain stream from compressed offset off
// (a frame start, or 0), and for a sealed volume the cached copy it reads.
func (s *SetFS) openVolume(ref ObjectRef, off int64, zst bool) (io.ReadCloser, *cacheFile, error) {
	var rc io.ReadCloser
	var cf *cacheFile
	if s.m.Sealed {
		f, err := s.cache.open(s.ctx, s.r, s.m, ref)
		if err != nil {
			return nil, nil, err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, nil, err
		}
		rc, cf = f, f
	} else {
		name := objectPath(SetDir(s.m.Host, s.m.Source, s.m.ID), ref.Name)
		var err error
		if rc, err = s.r.Backend.Get(s.ctx, name, off); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if !zst {
		return rc, cf, nil
	}
	zr, err := zstd.NewReader(bufio.NewReaderSize(rc, 128<<10), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return readCloser{zr, closerFunc(func() error { zr.Close(); return rc.Close() })}, cf, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// File is the content of one regular file of a set. ReadAt reads forward
// from where the last read stopped, or starts again from the nearest frame
// at or before the offset; a file read from its start to its end is checked
// against its hash in the table (a mismatch is an error from the last read).
type File struct {
	s    *SetFS
	e    *Entry
	hash string
	open func(off int64) (io.ReadCloser, int64, error)

	mu      sync.Mutex
	rc      io.ReadCloser
	pos     int64
	h       *blake3.Hasher // while everything from 0 to pos was read in order
	checked bool
}

// Entry returns the file's table entry.
func (f *File) Entry() *Entry { return f.e }

// Size returns the file's size.
func (f *File) Size() int64 { return f.e.Size }

// ErrContentMismatch is returned by a read that reached the end of a file
// whose content does not match its hash in the file table.
var ErrContentMismatch = errors.New("content does not match the file table")

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= f.e.Size {
		return 0, io.EOF
	}
	if f.rc == nil || off < f.pos || (off-f.pos > FrameSpan && len(f.e.Frames) > 0) {
		if err := f.reopen(off); err != nil {
			return 0, err
		}
	}
	if off > f.pos {
		if err := f.read(io.Discard, off-f.pos); err != nil {
			return 0, err
		}
	}
	n := int(min(int64(len(p)), f.e.Size-off))
	if err := f.readFull(p[:n]); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *File) reopen(off int64) error {
	f.closeReader()
	rc, start, err := f.open(off)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.e.Path, err)
	}
	f.rc, f.pos, f.h = rc, start, nil
	if start == 0 && f.hash != "" && !f.checked {
		f.h = blake3.New()
	}
	return nil
}

func (f *File) read(w io.Writer, n int64) error {
	if f.h != nil {
		w = io.MultiWriter(w, f.h)
	}
	k, err := io.CopyN(w, f.rc, n)
	f.pos += k
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		f.closeReader()
		return fmt.Errorf("read %s: %w", f.e.Path, err)
	}
	return f.check()
}

func (f *File) readFull(p []byte) error {
	k, err := io.ReadFull(f.rc, p)
	if f.h != nil {
		f.h.Write(p[:k])
	}
	f.pos += int64(k)
	if err != nil {
		f.closeReader()
		return fmt.Errorf("read %s: %w", f.e.Path, err)
	}
	return f.check()
}

// check compares the hash once the whole file was read in order.
func (f *File) check() error {
	if f.h == nil || f.pos != f.e.Size {
		return nil
	}
	sum := hex.EncodeToString(f.h.Sum(nil))
	f.h = nil
	if sum != f.hash {
		f.closeReader()
		return fmt.Errorf("read %s: %w", f.e.Path, ErrContentMismatch)
	}
	f.checked = true
	return nil
}

func (f *File) closeReader() {
	if f.rc != nil {
		f.rc.Close()
		f.rc, f.h = nil, nil
	}
}

// Close releases the file's reader.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeReader()
	return nil
}
