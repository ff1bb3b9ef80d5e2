package archive

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/rsyncdelta"
)

// Reserved names inside a differential's volumes. The file table, not
// these names, drives our own restore; they let stock tools bring a full
// forward (docs/format.md has the procedure).
const (
	reservedDir  = ".backtory"
	deltaPrefix  = ".backtory/delta/"
	metaPrefix   = ".backtory/meta/"
	deletedEntry = ".backtory/deleted"
)

// Base is the full a differential is taken against: its manifest, and its
// file table and signatures opened as streams.
type Base struct {
	Manifest     *Manifest
	ManifestHash string
	files        *TableReader
	sigs         *sigsReader
	openSigs     func() (io.ReadCloser, error) // a new stream of the signatures, for moved files
	reopen       func() (*Base, error)         // the same base on new streams
	closers      []io.Closer
}

// Close releases the base's streams.
func (b *Base) Close() error {
	for _, c := range b.closers {
		c.Close()
	}
	return nil
}

// differ merge-joins the walk with the full's file table: both come in
// ComparePaths order, so memory stays flat in the number of files.
type differ struct {
	s        *setWriter
	base     *Base
	next     *Entry // the next base entry not yet joined; nil at the end
	sigOwed  bool   // next's signature has not been read
	deleted  *os.File
	ndeleted int
	moves    *moveIndex // the full's big files, for renames and moves; read at the first new big file
	moved    *os.File   // pairs of new and old paths of the files stored as moved
	nmoved   int
	relinked map[string]bool // hardlink groups whose data this set stores anew
	// Directories of the walk above the current path, and those unchanged
	// ones whose entries must be repeated at the end so that stock tar
	// restores their mtime after replacing a file in them.
	ancestors []*Entry
	touched   []*Entry
	repeated  map[*Entry]bool // the entries in touched
}

func newDiffer(s *setWriter) (*differ, error) {
	f, err := os.CreateTemp(s.r.SpoolDir, "deleted-*")
	if err != nil {
		return nil, err
	}
	d := &differ{s: s, base: s.opt.Base, deleted: f, relinked: map[string]bool{}, repeated: map[*Entry]bool{}}
	if d.moved, err = os.CreateTemp(s.r.SpoolDir, "moved-*"); err != nil {
		d.close()
		return nil, err
	}
	if err := d.advance(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *differ) close() {
	if d.deleted != nil {
		d.deleted.Close()
		os.Remove(d.deleted.Name())
		d.deleted = nil
	}
	if d.moved != nil {
		d.moved.Close()
		os.Remove(d.moved.Name())
		d.moved = nil
	}
}

// advance moves to the next base entry, skipping the current one's
// signature if nobody read it.
func (d *differ) advance() error {
	if d.sigOwed {
		if err := d.base.sigs.skip(d.next.Size); err != nil {
			return err
		}
	}
	e, err := d.base.files.Next()
	if err == io.EOF {
		d.next, d.sigOwed = nil, false
		return nil
	}
	if err != nil {
		return fmt.Errorf("file table of %s: %w", d.base.Manifest.ID, err)
	}
	d.next, d.sigOwed = e, e.Type == TypeFile
	return nil
}

// signature reads the signature of d.next.
func (d *differ) signature() (*rsyncdelta.Signature, error) {
	d.sigOwed = false
	sig, err := d.base.sigs.next()
	if err != nil {
		return nil, fmt.Errorf("signature of %s in %s: %w", d.next.Path, d.base.Manifest.ID, err)
	}
	return sig, nil
}

// add joins one walked entry with the base.
func (d *differ) add(w *Entry, fh *lazyFile) error {
	p := string(w.Path)
	if p == reservedDir || strings.HasPrefix(p, reservedDir+"/") {
		return fmt.Errorf("the source has a top-level %s, which differentials reserve: exclude or rename it", reservedDir)
	}
	for d.next != nil && ComparePaths(string(d.next.Path), p) < 0 {
		if err := d.deleteNext(); err != nil {
			return err
		}
	}
	for n := len(d.ancestors); n > 0 && !strings.HasPrefix(p, string(d.ancestors[n-1].Path)+"/") && d.ancestors[n-1].Path != "."; n-- {
		d.ancestors = d.ancestors[:n-1]
	}
	if w.Type == TypeDir {
		defer func() { d.ancestors = append(d.ancestors, w) }()
	}
	if d.next == nil || string(d.next.Path) != p {
		w.Change = ChangeNew
		b, err := d.moveBase(w)
		if err != nil {
			return err
		}
		if b != nil {
			if ok, err := d.storeMoved(w, b, fh); ok || err != nil {
				return err
			}
			w.Change = ChangeNew
		}
		return d.s.add(w, fh)
	}
	f := d.next
	defer func() {
		if d.next == f {
			d.advance()
		}
	}()
	if f.Type != w.Type {
		// A type change: stock tools must remove the old one first.
		if err := d.markDeleted(p); err != nil {
			return err
		}
		w.Change = ChangeWhole
		return d.s.add(w, fh)
	}
	switch w.Type {
	case TypeFile:
		return d.file(w, f, fh)
	case TypeHardlink:
		if w.Target == f.Target && !d.relinked[string(w.Target)] {
			return d.unchanged(w, f)
		}
	default:
		if sameMeta(w, f) && w.Target == f.Target && w.Major == f.Major && w.Minor == f.Minor {
			return d.unchanged(w, f)
		}
	}
	w.Change = ChangeWhole
	if w.Type == TypeHardlink {
		d.touchParent()
	}
	return d.s.add(w, fh)
}

// finish records the base entries after the last walked one as deleted
// and writes the list of deleted paths.
func (d *differ) finish() error {
	for d.next != nil {
		if err := d.deleteNext(); err != nil {
			return err
		}
	}
	if d.s.vol == nil {
		if err := d.s.openVolume(); err != nil {
			return err
		}
	}
	for _, dir := range d.touched {
		if err := d.s.tw.WriteHeader(tarHeader(dir)); err != nil {
			return err
		}
	}
	size, err := d.deleted.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: deletedEntry, Typeflag: tar.TypeReg, Mode: 0o600, Size: size,
		ModTime: d.s.m.Started, Format: tar.FormatPAX}
	if err := d.s.tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := d.deleted.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(d.s.tw, d.deleted, d.s.buf); err != nil {
		return fmt.Errorf("write %s: %w", deletedEntry, err)
	}
	if d.nmoved > 0 {
		if err := d.writeMovedList(); err != nil {
			return err
		}
	}
	d.close()
	return nil
}

func (d *differ) deleteNext() error {
	if err := d.markDeleted(string(d.next.Path)); err != nil {
		return err
	}
	return d.advance()
}

func (d *differ) markDeleted(p string) error {
	d.ndeleted++
	_, err := d.deleted.WriteString(p + "\x00")
	return err
}

// unchanged records w with its data where the full has it. Its hash is
// left out: it is the full's, and the table stays small (a 32-byte hash is
// most of what an unchanged entry would cost after compression).
func (d *differ) unchanged(w, f *Entry) error {
	w.Change = ChangeUnchanged
	w.BaseVolume = f.Volume
	w.Sparse = f.Sparse || w.Sparse
	if w.Type == TypeFile {
		d.s.m.Stats.Files++
		d.s.m.Stats.Bytes += w.Size
	}
	return d.s.record(w, false)
}

// file joins a regular file with its version in the full; it opens the
// file only if it changed.
func (d *differ) file(w, f *Entry, lf *lazyFile) error {
	if w.Size == f.Size && w.MTime == f.MTime && w.CTime == f.CTime && w.Inode == f.Inode && sameMeta(w, f) {
		return d.unchanged(w, f)
	}
	fh, err := lf.Open(w)
	if err != nil {
		// Not archived: gone for stock tools too.
		d.s.warn(string(w.Path), err.Error())
		return d.markDeleted(string(w.Path))
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(fh.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", w.Path, err)
	}
	w.Size, w.MTime, w.CTime, w.Inode = st.Size, st.Mtim.Nano(), st.Ctim.Nano(), st.Ino
	if notCached(int(fh.Fd()), w.Size) {
		defer dropCache(int(fh.Fd()))
	}
	if w.Size == f.Size && w.MTime == f.MTime {
		// Only the ctime moved: check the content before trusting it.
		h := blake3.New()
		if _, err := io.CopyBuffer(h, io.LimitReader(fh, w.Size), d.s.buf); err == nil &&
			hex.EncodeToString(h.Sum(nil)) == f.Hash {
			w.Change = ChangeMeta
			w.BaseVolume = f.Volume
			w.Hash = f.Hash
			return d.writeMeta(w)
		}
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	sig, err := d.signature()
	if err != nil {
		return err
	}
	stored, err := d.writeDelta(w, sig, fh, deltaPrefix+string(w.Path))
	if err != nil {
		return err
	}
	if !stored {
		return d.storeWhole(w, lf)
	}
	w.Change, w.BaseVolume = ChangeDelta, f.Volume
	return d.record(w)
}

// record records a file stored as a delta or metadata in this set.
func (d *differ) record(w *Entry) error {
	d.s.m.Stats.Files++
	d.s.m.Stats.Bytes += w.Size
	d.relinked[string(w.Path)] = true
	return d.s.record(w, true)
}

// writeDelta spools the delta of fh's content against sig and, when it is
// smaller than the content, writes it to the current volume as the tar
// entry name with w's metadata, and sets w's size and hash. It reports
// false when the delta saves nothing or the file could not be read (with
// a warning): the caller stores the file whole.
func (d *differ) writeDelta(w *Entry, sig *rsyncdelta.Signature, fh *os.File, name string) (bool, error) {
	spool, err := os.CreateTemp(d.s.r.SpoolDir, "delta-*")
	if err != nil {
		return false, err
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	h := blake3.New()
	cr := &countReader{r: io.TeeReader(io.LimitReader(ctxReader{d.s.ctx, fh}, w.Size), h)}
	if _, err := rsyncdelta.Delta(sig, cr, spool); err != nil {
		if cerr := d.s.ctx.Err(); cerr != nil {
			return false, cerr
		}
		if isReadErr(err, cr) {
			d.s.warn(string(w.Path), fmt.Sprintf("read error: %v", unwrapPath(err)))
			return false, nil
		}
		return false, fmt.Errorf("delta of %s: %w", w.Path, err)
	}
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, err
	}
	if size >= cr.n {
		return false, nil // the delta saves nothing
	}
	if cr.n < w.Size {
		w.Warning = fmt.Sprintf("shrank while being read (%d of %d bytes)", cr.n, w.Size)
		d.s.warn(string(w.Path), w.Warning)
		w.Size = cr.n
	}
	w.Hash = hex.EncodeToString(h.Sum(nil))
	if d.s.vol == nil {
		if err := d.s.openVolume(); err != nil {
			return false, err
		}
	}
	hdr := tarHeader(w)
	hdr.Name, hdr.Size = name, size
	if err := d.s.mark(w); err != nil {
		return false, fmt.Errorf("archive %s: %w", w.Path, err)
	}
	if err := d.s.tw.WriteHeader(hdr); err != nil {
		return false, fmt.Errorf("archive %s: %w", w.Path, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if _, err := io.CopyBuffer(d.s.tw, spool, d.s.buf); err != nil {
		return false, fmt.Errorf("archive delta of %s: %w", w.Path, err)
	}
	d.touchAncestors()
	return true, nil
}

// storeWhole stores a changed file whole, reading it again.
func (d *differ) storeWhole(w *Entry, fh *lazyFile) error {
	w.Change = ChangeWhole
	d.relinked[string(w.Path)] = true
	d.touchParent()
	return d.s.add(w, fh)
}

// touchParent notes that stock tar replaces a file in the current
// directory, which changes its mtime: an unchanged directory's entry is
// then repeated at the end of the set.
func (d *differ) touchParent() {
	if n := len(d.ancestors); n > 0 {
		if p := d.ancestors[n-1]; p.Change == ChangeUnchanged {
			d.repeat(p)
		}
	}
}

// touchAncestors notes that a control entry (under .backtory/) is written
// inside the current directories: GNU tar sets the time of a directory
// once it meets an entry outside it, so a later entry inside would leave
// the directory with the time of the extraction. Their entries are
// repeated at the end of the set.
func (d *differ) touchAncestors() {
	for _, a := range d.ancestors {
		if a.Path != "." {
			d.repeat(a)
		}
	}
}

func (d *differ) repeat(dir *Entry) {
	if !d.repeated[dir] {
		d.repeated[dir] = true
		d.touched = append(d.touched, dir)
	}
}

// writeMeta writes a header-only entry that carries w's new metadata for
// stock tools.
func (d *differ) writeMeta(w *Entry) error {
	if d.s.vol == nil {
		if err := d.s.openVolume(); err != nil {
			return err
		}
	}
	hdr := tarHeader(w)
	hdr.Name, hdr.Size = metaPrefix+string(w.Path), 0
	if err := d.s.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", w.Path, err)
	}
	d.touchAncestors()
	d.s.m.Stats.Files++
	d.s.m.Stats.Bytes += w.Size
	return d.s.record(w, true)
}

// sameMeta compares what a restore sets besides content.
func sameMeta(a, b *Entry) bool {
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.MTime == b.MTime &&
		maps.EqualFunc(a.Xattrs, b.Xattrs, bytes.Equal)
}

type countReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// isReadErr tells whether err came from reading the file.
func isReadErr(err error, c *countReader) bool { return c.err != nil && errors.Is(err, c.err) }
