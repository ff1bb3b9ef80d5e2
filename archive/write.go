package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/rsyncdelta"
)

// BackupOptions configure one backup of one source.
type BackupOptions struct {
	SourcePath  string // the source's path on the live system
	Root        string // the tree to read: SourcePath or its snapshot
	Snapshot    string // snapshot name, for the manifest
	Exclude     []string
	CrossMounts bool
	VolumeSize  int64
	Compression Compression
	Uploads     int    // parallel uploads
	Tool        string // "backtory <version>"
	// Warn is told about each path that could not be archived exactly.
	Warn func(path, msg string)
	// Progress, if set, is called after each entry with the entries
	// recorded and the content bytes read so far: every file's of a full,
	// the new and changed files' of a differential (what Plan's
	// ChangedBytes bounds), never an unchanged file's.
	Progress func(entries int, read int64)
	// Base, if set, makes the set a differential against this full.
	Base *Base
	// Changes, if set on a differential, is what the snapshot provider says
	// changed since the full's snapshot: only those paths and their
	// directories are walked (changes.go). It is not used, and the whole
	// tree is walked, when the full was made with other excludes or the
	// tree does not agree with it; Info says why.
	Changes *ChangeList
	// Info, if set, is told one-line notices (why a change list was not used).
	Info func(msg string)
	// Layout, if set, is stored as the set's layout object (the machine's
	// disks, volumes and filesystems, for bare-metal recovery).
	Layout []byte
	// Started is the run's start, which names the set (default: now).
	Started time.Time
	// BeforeCommit, if set, is called after every object was uploaded and
	// before the manifest is: an error (an invalidated snapshot) fails the set.
	BeforeCommit func(context.Context) error
	// Resume, if set, makes a full resumable: an interrupted run leaves a
	// checkpoint and its uploaded volumes, and a run with Resume.From set
	// continues that set (see Resume). Differentials ignore it.
	Resume *Resume
}

// Backup writes a set of opt.Root and returns its manifest: a full, or,
// when opt.Base is set, a differential against that full. Volumes wait
// for upload in r.SpoolDir. A failed backup leaves no manifest, so no
// set; it removes what it uploaded.
func (r *Repository) Backup(ctx context.Context, opt BackupOptions) (*Manifest, error) {
	started := opt.Started
	if started.IsZero() {
		started = time.Now()
	}
	kind := KindFull
	if opt.Base != nil {
		kind = KindDiff
	}
	m := &Manifest{
		Format:      FormatVersion,
		ID:          NewSetID(kind, started),
		Kind:        kind,
		Host:        r.Host,
		Source:      r.Source,
		SourcePath:  opt.SourcePath,
		Snapshot:    opt.Snapshot,
		Started:     started.UTC(),
		Tool:        opt.Tool,
		Compression: opt.Compression.Kind,
		Sealed:      r.Sealer != nil,
	}
	m.ExcludeSHA256 = excludeHash(opt.Exclude, opt.CrossMounts)
	if opt.Base != nil {
		m.Base = &BaseRef{ID: opt.Base.Manifest.ID, ManifestSHA256: opt.Base.ManifestHash}
		m.Scan = ScanWalk
		if opt.Changes != nil && opt.Base.Manifest.ExcludeSHA256 != m.ExcludeSHA256 {
			info(opt, fmt.Sprintf("%s not used: the excludes changed since full %s; walking the tree", opt.Changes.Scan, opt.Base.Manifest.ID))
			opt.Changes = nil
		}
		if opt.Changes != nil {
			m.Scan = opt.Changes.Scan
		}
	} else {
		opt.Changes = nil
	}
	if opt.Base != nil {
		opt.Resume = nil
	}
	var from *Checkpoint
	if opt.Resume != nil {
		from = opt.Resume.From
	}
	if from != nil {
		m.ID, m.Started, m.Volumes, m.Stats = from.ID, from.Started, append([]ObjectRef(nil), from.Volumes...), from.Stats
	}
	dir := SetDir(r.Host, r.Source, m.ID)
	if from != nil {
		if err := r.dropAfter(ctx, dir, from.Volumes); err != nil {
			return nil, err
		}
	} else if infos, _ := r.Backend.List(ctx, dir); len(infos) > 0 {
		return nil, fmt.Errorf("set %s already exists on the remote: wait a second and run again", dir)
	}
	s := &setWriter{ctx: ctx, r: r, opt: opt, m: m, buf: make([]byte, 1<<20)}
	if opt.Resume != nil {
		ck, err := openCheckpointer(opt.Resume)
		if err != nil {
			return nil, err
		}
		defer ck.close()
		s.ck = ck
		if from != nil {
			s.read = from.Stats.Bytes
		}
	}
	s.up = newUploader(ctx, r.Backend, dir, opt.Uploads)
	if s.ck != nil {
		s.up.uploaded = s.ck.done
	}
	err := s.run(ctx)
	if err != nil && isUntrusted(err) {
		// The tree does not agree with the change list: start again with
		// the walk, on a new stream of the full.
		info(opt, fmt.Sprintf("%s not used: %v; walking the tree", opt.Changes.Scan, err))
		s.abort()
		r.removeSet(dir)
		var base *Base
		if base, err = opt.Base.reopen(); err == nil {
			defer base.Close()
			opt.Base, opt.Changes, m.Scan = base, nil, ScanWalk
			m.Stats, m.Volumes, m.Format = Stats{}, nil, FormatVersion
			s = &setWriter{ctx: ctx, r: r, opt: opt, m: m, up: newUploader(ctx, r.Backend, dir, opt.Uploads), buf: make([]byte, 1<<20)}
			err = s.run(ctx)
		}
	}
	invalid := false // the snapshot read was invalidated: nothing can be kept
	if err == nil && opt.BeforeCommit != nil {
		err = opt.BeforeCommit(ctx)
		invalid = err != nil
	}
	if err == nil {
		m.Finished = time.Now().UTC()
		err = r.putManifest(ctx, m)
	}
	if err != nil {
		s.abort()
		if s.ck != nil && !invalid && s.ck.savedVolumes() > 0 {
			// Kept for the next run to resume: the checkpoint and the
			// volumes it holds; what came after them goes.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			r.dropAfter(cctx, dir, m.Volumes[:s.ck.savedVolumes()])
			cancel()
			return nil, err
		}
		r.removeSet(dir)
		if s.ck != nil {
			os.RemoveAll(opt.Resume.Dir)
		}
		return nil, err
	}
	if s.ck != nil {
		s.ck.close()
		os.RemoveAll(opt.Resume.Dir)
	}
	return m, nil
}

// dropAfter removes from an unfinished set's directory what a run uploaded
// after its checkpoint's volumes (volumes, temporaries, the table).
func (r *Repository) dropAfter(ctx context.Context, dir string, volumes []ObjectRef) error {
	keep := map[string]bool{}
	for _, v := range volumes {
		keep[v.Name] = true
	}
	infos, err := r.Backend.List(ctx, dir)
	if err != nil && !remote.IsNotExist(err) {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, i := range infos {
		if keep[i.Name] {
			continue
		}
		if err := r.Backend.Delete(ctx, objectPath(dir, i.Name)); err != nil && !remote.IsNotExist(err) {
			return fmt.Errorf("delete %s: %w", objectPath(dir, i.Name), err)
		}
	}
	return nil
}

func info(opt BackupOptions, msg string) {
	if opt.Info != nil {
		opt.Info(msg)
	}
}

// setWriter writes the volumes, the file table and (for a full) the
// block signatures of one set.
type setWriter struct {
	ctx   context.Context // stops reading a file half-way on cancel
	r     *Repository
	opt   BackupOptions
	m     *Manifest
	up    *uploader
	buf   []byte
	vol   *objectWriter
	tw    *tar.Writer
	table *objectWriter
	tab   *TableWriter
	sigs  *objectWriter // a full's block signatures
	key   []byte        // a full's MAC key
	diff  *differ       // a differential's comparison with its full
	read  int64         // content bytes read, for Progress
	ck    *checkpointer // a resumable full's local table and signatures
	sigsW io.Writer     // where a full's signatures go: s.sigs, or the checkpoint's file
	// lastPath is the last path written to the table; linksConfirmed
	// says a resumed walk's hardlinks were checked (startCheckpoints).
	lastPath       Name
	linksConfirmed bool
}

func (s *setWriter) run(ctx context.Context) error {
	zst, sealed := s.opt.Compression.Kind == "zstd", s.r.Sealer != nil
	var err error
	s.table, err = s.newObject(FilesName(zst, sealed))
	if err != nil {
		return err
	}
	s.tab = NewTableWriter(s.table)
	if s.opt.Base == nil {
		if s.ck != nil {
			// The header and signatures go to the checkpoint's file first
			// (startCheckpoints), and into the object at the end.
			if s.sigs, err = s.newObject(SigsName(zst, sealed)); err != nil {
				return err
			}
			if s.key, err = newSigsKey(); err != nil {
				return err
			}
		} else if s.sigs, s.key, err = newSigsWriter(s.r.SpoolDir, SigsName(zst, sealed), s.opt.Compression, s.r.Sealer); err != nil {
			return err
		}
		s.sigsW = s.sigs
	} else {
		if s.diff, err = newDiffer(s); err != nil {
			return err
		}
	}
	x, err := NewExcluder(s.opt.Exclude)
	if err != nil {
		return err
	}
	w := &walker{root: s.opt.Root, exclude: x, crossMounts: s.opt.CrossMounts, warn: s.warn}
	if s.opt.Changes != nil {
		table, tc, err := s.r.Files(ctx, s.opt.Base.Manifest)
		if err != nil {
			return err
		}
		defer tc.Close()
		if w.full, err = newFromFull(s.opt.Changes, table); err != nil {
			return err
		}
	}
	if s.ck != nil {
		if err := s.startCheckpoints(w); err != nil {
			return err
		}
	}
	err = w.walk(func(e *Entry, f *lazyFile) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.after != "" && !s.linksConfirmed {
			// Every path before this one was skipped, and the walk
			// noted the first names of their hardlinks.
			s.linksConfirmed = true
			if err := s.ck.confirmLinks(w.links); err != nil {
				return err
			}
		}
		if s.diff != nil {
			return s.diff.add(e, f)
		}
		return s.add(e, f)
	})
	if err == nil && s.diff != nil {
		err = s.diff.finish()
	}
	if err == nil {
		err = s.closeVolume()
	}
	if err == nil {
		err = s.tab.Flush()
	}
	if err == nil && s.ck != nil {
		err = s.ck.finish(s.table, s.sigs)
	}
	if err != nil {
		return err
	}
	files, err := s.finishObject(&s.table)
	if err != nil {
		return err
	}
	s.m.Files = files
	if s.sigs != nil {
		sigs, err := s.finishObject(&s.sigs)
		if err != nil {
			return err
		}
		s.m.Sigs = &sigs
	}
	if s.opt.Layout != nil {
		lw, err := s.newObject(LayoutName(zst, sealed))
		if err != nil {
			return err
		}
		if _, err := lw.Write(s.opt.Layout); err != nil {
			lw.abort()
			return err
		}
		ref, err := s.finishObject(&lw)
		if err != nil {
			return err
		}
		s.m.Layout = &ref
	}
	return s.up.wait()
}

// newObject starts spooling an object of the set.
func (s *setWriter) newObject(name string) (*objectWriter, error) {
	return newObjectWriter(s.r.SpoolDir, name, s.opt.Compression, s.r.Sealer)
}

// finishObject closes a spooled object and queues it for upload.
func (s *setWriter) finishObject(o **objectWriter) (ObjectRef, error) {
	obj, err := (*o).Close()
	*o = nil
	if err != nil {
		return ObjectRef{}, err
	}
	s.m.Stats.StoredBytes += obj.ref.Size
	return obj.ref, s.up.add(obj)
}

func (s *setWriter) warn(path, msg string) {
	s.m.Stats.Warnings++
	if s.opt.Warn != nil {
		s.opt.Warn(path, msg)
	}
}

// add archives one entry into the current volume; f is the file of a
// TypeFile entry, opened here. A file that cannot be opened (it vanished
// or changed type since it was listed) is skipped with a warning.
func (s *setWriter) add(e *Entry, lf *lazyFile) error {
	var f *os.File
	if e.Type == TypeFile {
		var err error
		if f, err = lf.Open(e); err != nil {
			s.warn(string(e.Path), err.Error())
			return nil
		}
	}
	if s.vol == nil {
		if err := s.openVolume(); err != nil {
			return err
		}
	}
	if e.Type == TypeFile {
		ok, err := s.addFile(e, f)
		if err != nil || !ok {
			return err
		}
	} else if err := s.tw.WriteHeader(tarHeader(e)); err != nil {
		return fmt.Errorf("archive %s: %w", e.Path, err)
	}
	return s.record(e, true)
}

// record writes e to the file table; inVolume says that the current
// volume holds an entry for it. A full volume is closed here.
func (s *setWriter) record(e *Entry, inVolume bool) error {
	if inVolume {
		e.Volume = len(s.m.Volumes) + 1
	}
	if s.diff != nil {
		// Change detection compares with the full only: a differential's
		// table needs no ctime or inode.
		e.CTime, e.Inode = 0, 0
	}
	if err := s.tab.Write(e); err != nil {
		return err
	}
	s.lastPath = e.Path
	s.m.Stats.Entries++
	if e.Change != "" && e.Change != ChangeUnchanged {
		s.m.Stats.Changed++
	}
	if e.Type == TypeFile && e.Change != ChangeUnchanged {
		s.read += e.Size
	}
	if s.opt.Progress != nil {
		s.opt.Progress(s.m.Stats.Entries, s.read)
	}
	if inVolume && s.vol.stored() >= s.opt.VolumeSize {
		return s.closeVolume()
	}
	return nil
}

// addFile archives a regular file from its open handle (the walk opened
// it), reading it once from its start.
func (s *setWriter) addFile(e *Entry, f *os.File) (bool, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("read %s: %w", e.Path, err)
	}
	var before unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return false, fmt.Errorf("stat %s: %w", e.Path, err)
	}
	// The open file is what we archive: describe it, not the earlier lstat.
	e.Size, e.MTime, e.CTime, e.Inode = before.Size, before.Mtim.Nano(), before.Ctim.Nano(), before.Ino
	if err := s.mark(e); err != nil {
		return false, fmt.Errorf("archive %s: %w", e.Path, err)
	}
	if notCached(int(f.Fd()), e.Size) {
		defer dropCache(int(f.Fd()))
	}
	if err := s.tw.WriteHeader(tarHeader(e)); err != nil {
		return false, fmt.Errorf("archive %s: %w", e.Path, err)
	}
	h := blake3.New()
	tw := &frameSplitter{s: s, e: e}
	dst := io.MultiWriter(tw, h)
	var sw *rsyncdelta.SignatureWriter
	if s.sigs != nil {
		var err error
		if sw, err = rsyncdelta.NewSignatureWriter(s.sigsW, s.key, rsyncdelta.BlockLen(e.Size), e.Size); err != nil {
			return false, fmt.Errorf("signature of %s: %w", e.Path, err)
		}
		dst = io.MultiWriter(tw, h, sw)
	}
	n, rerr := io.CopyBuffer(dst, io.LimitReader(ctxReader{s.ctx, f}, e.Size), s.buf)
	if err := s.ctx.Err(); err != nil {
		return false, err
	}
	if n < e.Size {
		// Shrunk or unreadable: pad so that the tar stream stays valid.
		if werr := s.writeZeros(dst, e.Size-n); werr != nil {
			return false, werr
		}
		if rerr != nil && !isWriteErr(rerr) {
			e.Warning = fmt.Sprintf("read error after %d bytes: %v", n, unwrapPath(rerr))
		} else {
			e.Warning = fmt.Sprintf("shrank while being read (%d of %d bytes)", n, e.Size)
		}
	}
	if rerr != nil && isWriteErr(rerr) {
		return false, fmt.Errorf("archive %s: %w", e.Path, rerr)
	}
	if sw != nil {
		if err := sw.Close(); err != nil {
			return false, fmt.Errorf("signature of %s: %w", e.Path, err)
		}
	}
	var after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &after); err == nil && e.Warning == "" &&
		(after.Size != before.Size || after.Mtim != before.Mtim || after.Ctim != before.Ctim) {
		e.Warning = "changed while being read"
	}
	if e.Warning != "" {
		s.warn(string(e.Path), e.Warning)
	}
	e.Hash = hex.EncodeToString(h.Sum(nil))
	s.m.Stats.Files++
	s.m.Stats.Bytes += e.Size
	return true, nil
}

// Frames (format 2, docs/format.md §4): a zstd frame starts at a file's
// tar header once the current frame holds frameMin bytes (smaller files
// share a frame, and the table says how much to skip), and at every
// FrameSpan of a file's content. frameMin is the encoder's window: with
// 256 KiB frames a full of /usr/include stored 51% more than one frame per
// volume, with 1 MiB 36%, with 4 MiB 6% (docs/design.md).
const (
	frameMin  = 4 << 20
	FrameSpan = 4 << 20
	maxSkip   = frameMin + 1<<20 // a frame never holds this much before an entry's header
)

// mark records where e's tar header will start in the current volume,
// ending the frame first when it is big enough.
func (s *setWriter) mark(e *Entry) error {
	if err := s.tw.Flush(); err != nil {
		return err
	}
	v := s.vol
	if v.plain.n.Load()-v.frameU >= frameMin {
		if err := v.endFrame(); err != nil {
			return err
		}
	}
	e.Frame, e.Skip, e.Frames = v.frameC, v.plain.n.Load()-v.frameU, nil
	return nil
}

// frameSplitter writes a file's content to the tar stream and ends a
// frame at every FrameSpan, recording where each starts.
type frameSplitter struct {
	s   *setWriter
	e   *Entry
	off int64
}

func (f *frameSplitter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n := len(p)
		if next := (f.off/FrameSpan + 1) * FrameSpan; f.off+int64(n) > next {
			n = int(next - f.off)
		}
		k, err := f.s.tw.Write(p[:n])
		total += k
		f.off += int64(k)
		if err != nil {
			return total, err
		}
		p = p[n:]
		if f.off%FrameSpan == 0 && f.off < f.e.Size {
			if err := f.s.vol.endFrame(); err != nil {
				return total, writeError{err}
			}
			f.e.Frames = append(f.e.Frames, f.s.vol.frameC)
		}
	}
	return total, nil
}

// isWriteErr tells a failure of the archive's writer from a read error.
func isWriteErr(err error) bool {
	var we writeError
	return errors.As(err, &we)
}

type writeError struct{ error }

func (s *setWriter) writeZeros(w io.Writer, n int64) error {
	clear(s.buf)
	for n > 0 {
		k := min(n, int64(len(s.buf)))
		if _, err := w.Write(s.buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (s *setWriter) openVolume() error {
	n := len(s.m.Volumes) + 1
	v, err := s.newObject(VolumeName(n, s.opt.Compression.Kind == "zstd", s.r.Sealer != nil))
	if err != nil {
		return err
	}
	s.vol = v
	s.tw = tar.NewWriter(tarSink{v})
	return nil
}

// tarSink marks write errors so that they are not taken for read errors.
type tarSink struct{ w io.Writer }

func (t tarSink) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = writeError{err}
	}
	return n, err
}

func (s *setWriter) closeVolume() error {
	if s.vol == nil {
		return nil
	}
	if err := s.tw.Close(); err != nil {
		return err
	}
	obj, err := s.vol.Close()
	s.vol = nil
	if err != nil {
		return err
	}
	s.m.Volumes = append(s.m.Volumes, obj.ref)
	s.m.Stats.StoredBytes += obj.ref.Size
	if s.ck != nil {
		if err := s.tab.Flush(); err != nil {
			return err
		}
		if err := s.ck.boundary(Checkpoint{Format: checkpointVer, ID: s.m.ID, Host: s.m.Host, Source: s.m.Source,
			Fingerprint: s.opt.Resume.Fingerprint, Snapshot: s.m.Snapshot, Started: s.m.Started,
			After: s.lastPath, Volumes: append([]ObjectRef(nil), s.m.Volumes...), Stats: s.m.Stats}); err != nil {
			return err
		}
	}
	return s.up.add(obj)
}

// startCheckpoints points the table and the signatures of a resumable full
// at the checkpoint's local files and, when resuming, the walk after the
// last archived path.
func (s *setWriter) startCheckpoints(w *walker) error {
	s.tab = NewTableWriter(s.ck.tabN)
	s.sigsW = s.ck.sigsW
	from := s.opt.Resume.From
	if from == nil {
		if _, err := io.WriteString(s.sigsW, sigsMagic); err != nil {
			return err
		}
		_, err := s.sigsW.Write(s.key)
		return err
	}
	key, err := s.ck.sigsKey()
	if err != nil {
		return err
	}
	s.key, s.lastPath, w.after = key, from.After, from.After
	// The first names of multiply-linked files archived before: the walk
	// notes them while it skips, the local table confirms them.
	return nil
}

// abort drops spooled data and stops uploads.
func (s *setWriter) abort() {
	if s.vol != nil {
		s.vol.abort()
	}
	if s.table != nil {
		s.table.abort()
	}
	if s.sigs != nil {
		s.sigs.abort()
	}
	if s.diff != nil {
		s.diff.close()
	}
	s.up.cancel()
	s.up.wait()
}

// removeSet deletes what a failed run uploaded to dir, best effort;
// prune removes anything left.
func (r *Repository) removeSet(dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infos, _ := r.Backend.List(ctx, dir)
	for _, i := range infos {
		r.Backend.Delete(ctx, objectPath(dir, i.Name))
	}
}

// putManifest uploads the manifest of m, which makes the set exist. It is
// created, never put over an existing one: a committed set is never
// overwritten (remote.Create: a conditional write where the store has one).
func (r *Repository) putManifest(ctx context.Context, m *Manifest) error {
	stored, err := encodeManifest(m, r.Sealer)
	if err != nil {
		return err
	}
	name := objectPath(SetDir(m.Host, m.Source, m.ID), ManifestName(r.Sealer != nil))
	if err := remote.Create(ctx, r.Backend, name, bytes.NewReader(stored)); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// tarName is the name of an entry inside a volume.
func tarName(p Name, isDir bool) string {
	if p == "." {
		return "./"
	}
	if isDir {
		return string(p) + "/"
	}
	return string(p)
}

// tarHeader returns the PAX header for e.
func tarHeader(e *Entry) *tar.Header {
	h := &tar.Header{
		Name:    tarName(e.Path, e.Type == TypeDir),
		Mode:    int64(e.Mode),
		Uid:     e.UID,
		Gid:     e.GID,
		Uname:   e.User,
		Gname:   e.Group,
		ModTime: time.Unix(0, e.MTime),
		Format:  tar.FormatPAX,
	}
	switch e.Type {
	case TypeFile:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	case TypeDir:
		h.Typeflag = tar.TypeDir
	case TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(e.Target)
	case TypeHardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, string(e.Target)
	case TypeFIFO:
		h.Typeflag = tar.TypeFifo
	case TypeChar, TypeBlock:
		h.Typeflag = tar.TypeChar
		if e.Type == TypeBlock {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(e.Major), int64(e.Minor)
	}
	if !utf8.ValidString(string(e.Path)) || !utf8.ValidString(string(e.Target)) {
		// PAX says names are UTF-8 unless told otherwise: tell bsdtar.
		h.PAXRecords = map[string]string{"hdrcharset": "BINARY"}
	}
	if len(e.Xattrs) > 0 {
		if h.PAXRecords == nil {
			h.PAXRecords = make(map[string]string, len(e.Xattrs))
		}
		for k, v := range e.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = string(v)
		}
		if t := aclText(e.Xattrs["system.posix_acl_access"]); t != "" {
			h.PAXRecords["SCHILY.acl.access"] = t
		}
		if t := aclText(e.Xattrs["system.posix_acl_default"]); t != "" {
			h.PAXRecords["SCHILY.acl.default"] = t
		}
	}
	return h
}

// ctxReader fails reads once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
