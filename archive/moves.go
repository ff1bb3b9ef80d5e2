package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/backtory/backtory/rsyncdelta"
)

// Renames and moves. A file at a path the full does not have, whose inode
// or size matches a big file of the full, is stored as a delta against
// that file's signature (format 2): the entry names the old path in
// BasePath, the delta lies under movedPrefix, and the set's last volume
// lists the pairs in movedList for stock tools. Any basis is correct for a
// delta; a match only has to be likely, and a delta that saves nothing is
// dropped for the whole file.
const (
	movedPrefix = ".backtory/moved/"
	movedList   = ".backtory/moves"
)

// moveMinSize is the smallest file looked for among the full's files: a
// smaller one costs little stored whole, and every candidate is held in
// memory while the differential runs.
var moveMinSize int64 = 1 << 20

// moveBase is a file of the full that a new path may have come from.
type moveBase struct {
	path   Name
	size   int64
	volume int
	sigOff int64 // where its signature starts in the sigs object's plaintext
}

// moveIndex holds the full's files of at least moveMinSize by inode and
// by size (the first of each size).
type moveIndex struct {
	byInode map[uint64]*moveBase
	bySize  map[int64]*moveBase
}

// newMoveIndex reads the full's table once.
func newMoveIndex(ctx context.Context, r *Repository, m *Manifest) (*moveIndex, error) {
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	x := &moveIndex{byInode: map[uint64]*moveBase{}, bySize: map[int64]*moveBase{}}
	off := int64(len(sigsMagic) + rsyncdelta.KeySize)
	for {
		e, err := table.Next()
		if err == io.EOF {
			return x, nil
		}
		if err != nil {
			return nil, fmt.Errorf("file table of %s: %w", m.ID, err)
		}
		if e.Type != TypeFile {
			continue
		}
		if e.Size >= moveMinSize {
			b := &moveBase{path: e.Path, size: e.Size, volume: e.Volume, sigOff: off}
			if e.Inode != 0 {
				x.byInode[e.Inode] = b
			}
			if _, ok := x.bySize[e.Size]; !ok {
				x.bySize[e.Size] = b
			}
		}
		off += rsyncdelta.SignatureSize(e.Size, rsyncdelta.BlockLen(e.Size))
	}
}

// moveBase returns the full's file that w (a path the full does not have)
// may have been, or nil. A file with other names is left out: stock tar
// could not link them to a file that a later step creates. The index is
// read at the first new file big enough, so that a differential without
// one does not read the full's table a second time.
func (d *differ) moveBase(w *Entry) (*moveBase, error) {
	if w.Type != TypeFile || w.Size < moveMinSize || w.nlink > 1 {
		return nil, nil
	}
	if d.moves == nil {
		x, err := newMoveIndex(d.s.ctx, d.s.r, d.base.Manifest)
		if err != nil {
			return nil, err
		}
		d.moves = x
	}
	if b, ok := d.moves.byInode[w.Inode]; ok {
		return b, nil
	}
	return d.moves.bySize[w.Size], nil
}

// signatureAt reads the full's signature at plaintext offset off, from a
// new stream of the cached sigs object.
func (b *Base) signatureAt(off int64) (*rsyncdelta.Signature, error) {
	rc, err := b.openSigs()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, off); err != nil {
		return nil, fmt.Errorf("sigs of %s: %w", b.Manifest.ID, err)
	}
	sig, err := rsyncdelta.ReadSignature(rc, b.sigs.key)
	if err != nil {
		return nil, fmt.Errorf("sigs of %s: %w", b.Manifest.ID, err)
	}
	return sig, nil
}

// moved stores w, new in this set, as a delta against the full's file b.
// It reports false, with fh at its start again, when the delta would not
// be smaller than the file.
func (d *differ) storeMoved(w *Entry, b *moveBase, lf *lazyFile) (bool, error) {
	fh, err := lf.Open(w)
	if err != nil {
		return false, nil // stored whole, which says why it cannot be
	}
	sig, err := d.base.signatureAt(b.sigOff)
	if err != nil {
		return false, err
	}
	stored, err := d.writeDelta(w, sig, fh, movedPrefix+string(w.Path))
	if err != nil || !stored {
		return false, err
	}
	w.Change, w.BaseVolume, w.BasePath = ChangeDelta, b.volume, b.path
	if _, err := d.moved.WriteString(string(w.Path) + "\x00" + string(b.path) + "\x00"); err != nil {
		return false, err
	}
	d.nmoved++
	return true, d.record(w)
}

// writeMovedList writes the pairs of new and old paths at the end of the
// set, where stock tools find them before they delete the old paths.
func (d *differ) writeMovedList() error {
	size, err := d.moved.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: movedList, Typeflag: tar.TypeReg, Mode: 0o600, Size: size,
		ModTime: d.s.m.Started, Format: tar.FormatPAX}
	if err := d.s.tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := d.moved.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(d.s.tw, d.moved, d.s.buf); err != nil {
		return fmt.Errorf("write %s: %w", movedList, err)
	}
	return nil
}
