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
	"path"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/rsyncdelta"
)

// ErrNotEmpty is returned by Restore when the target holds files.
var ErrNotEmpty = errors.New("restore target is not empty (use --force to restore into it anyway)")

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	Target string   // directory to restore into; created if missing
	Paths  []string // paths inside the source to restore; empty means all
	Force  bool     // restore into a non-empty target, replacing files
	// DryRun reads and checks everything but writes nothing (verify --deep).
	DryRun bool
	// Warn is told about metadata that could not be restored.
	Warn func(path, msg string)
	// Progress, if set, is called after each entry with the entries
	// restored and the content bytes written (or checked) so far.
	Progress func(entries int, bytes int64)
	// Notice is told, once, what the caller should know about the set as
	// a whole (that an unsealed set is not authenticated).
	Notice func(msg string)
}

// RestoreStats counts what a restore did.
type RestoreStats struct {
	Entries int
	Bytes   int64
}

// Restore restores set m into opt.Target: a full alone, or a differential
// from its full and itself, never another set. Every object is checked
// against its manifest before it is decrypted, and every file's content
// against its hash.
func (r *Repository) Restore(ctx context.Context, m *Manifest, opt RestoreOptions) (RestoreStats, error) {
	return r.restore(ctx, m, opt, nil)
}

// fullOf returns the manifest of differential m's full, checked to be the
// full m was taken against (nil when m is a full).
func (r *Repository) fullOf(ctx context.Context, m *Manifest) (*Manifest, error) {
	if m.Kind != KindDiff {
		return nil, nil
	}
	if m.Base == nil {
		return nil, fmt.Errorf("differential %s names no full", m.ID)
	}
	bm, hash, err := r.Manifest(ctx, m.Base.ID)
	if err != nil {
		return nil, fmt.Errorf("the full of differential %s: %w", m.ID, err)
	}
	if hash != m.Base.ManifestSHA256 || bm.Kind != KindFull {
		return nil, fmt.Errorf("differential %s was taken against another %s than the one on the remote (manifest hash differs): the full was replaced", m.ID, m.Base.ID)
	}
	return bm, nil
}

// restore is Restore telling opened, if not nil, the number of each of the
// set's own volumes it opens.
func (r *Repository) restore(ctx context.Context, m *Manifest, opt RestoreOptions, opened func(vol int)) (RestoreStats, error) {
	sel := newSelection(opt.Paths)
	x := &extractor{opt: opt, sel: sel, buf: make([]byte, 1<<20), root: -1, spool: r.SpoolDir, links: map[string]devIno{}}
	x.self = &cursor{r: r, m: m, opened: opened}
	bm, err := r.fullOf(ctx, m)
	if err != nil {
		return RestoreStats{}, err
	}
	if bm != nil {
		x.base = &cursor{r: r, m: bm}
	}
	defer x.self.close()
	if x.base != nil {
		defer x.base.close()
	}
	defer func() {
		if x.baseTableCloser != nil {
			x.baseTableCloser.Close()
		}
	}()
	if !opt.DryRun {
		if err := checkProc(); err != nil {
			return RestoreStats{}, err
		}
		fd, err := prepareTarget(opt.Target, opt.Force)
		if err != nil {
			return RestoreStats{}, err
		}
		x.root = fd
		defer unix.Close(fd)
		defer x.closeDirs()
	}
	plan, err := r.plan(ctx, m, sel)
	if err != nil {
		return RestoreStats{}, err
	}
	if len(opt.Paths) > 0 && plan.selected == 0 {
		return RestoreStats{}, fmt.Errorf("set %s has none of the paths %s", m.ID, strings.Join(opt.Paths, ", "))
	}
	x.plan = plan
	if !m.Sealed && opt.Notice != nil {
		opt.Notice(fmt.Sprintf("set %s is not sealed: its contents are not authenticated (anyone who can write the remote could have changed them)", m.ID))
	}
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return RestoreStats{}, err
	}
	defer tc.Close()
	for {
		e, err := table.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return RestoreStats{}, err
		}
		if err := ctx.Err(); err != nil {
			return RestoreStats{}, err
		}
		if err := x.entry(ctx, e); err != nil {
			return RestoreStats{}, err
		}
		if opt.Progress != nil {
			opt.Progress(x.entries, x.bytes)
		}
	}
	if err := x.popDirs(""); err != nil {
		return RestoreStats{}, err
	}
	if err := x.self.finish(); err != nil {
		return RestoreStats{}, err
	}
	return RestoreStats{Entries: x.entries, Bytes: x.bytes}, nil
}

// selection decides which paths a restore writes.
type selection struct{ paths []string }

func newSelection(paths []string) *selection {
	s := &selection{}
	for _, p := range paths {
		c := path.Clean("/" + p)[1:]
		if c == "" {
			c = "."
		}
		s.paths = append(s.paths, c)
	}
	return s
}

// wants reports whether p is selected, or is a directory above a selected path.
func (s *selection) wants(p string) (selected, ancestor bool) {
	if len(s.paths) == 0 {
		return true, false
	}
	for _, q := range s.paths {
		if q == "." || p == q || strings.HasPrefix(p, q+"/") {
			return true, false
		}
		if p == "." || strings.HasPrefix(q, p+"/") {
			ancestor = true
		}
	}
	return false, ancestor
}

// restorePlan is what a first pass over the file table learns.
type restorePlan struct {
	redirect    map[string]string   // unselected first name of a hardlink group -> where it was restored
	linkTargets map[string]struct{} // first names of the hardlink groups to restore
	selected    int
}

func (r *Repository) plan(ctx context.Context, m *Manifest, sel *selection) (*restorePlan, error) {
	p := &restorePlan{redirect: map[string]string{}, linkTargets: map[string]struct{}{}}
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	for {
		e, err := table.Next()
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		if s, _ := sel.wants(string(e.Path)); !s {
			continue
		}
		p.selected++
		if e.Type == TypeHardlink {
			p.linkTargets[string(e.Target)] = struct{}{}
			if s2, _ := sel.wants(string(e.Target)); !s2 {
				if _, ok := p.redirect[string(e.Target)]; !ok {
					p.redirect[string(e.Target)] = string(e.Path)
				}
			}
		}
	}
}

// prepareTarget creates the target, checks that it is empty (unless force)
// and returns a handle on it.
func prepareTarget(dir string, force bool) (int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return -1, fmt.Errorf("restore target: %w", err)
	}
	fd, err := openTarget(dir)
	if err != nil {
		return -1, err
	}
	nfd, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("restore target: %w", err)
	}
	f := os.NewFile(uintptr(nfd), dir)
	names, _ := f.Readdirnames(1)
	f.Close()
	if len(names) > 0 && !force {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", dir, ErrNotEmpty)
	}
	return fd, nil
}

// cursor reads the volumes of one set forward: seek finds an entry by its
// volume and name, skipping what lies before it.
type cursor struct {
	r      *Repository
	m      *Manifest
	volNum int
	vol    *objectReader
	tr     *tar.Reader
	opened func(vol int) // if not nil, told of each volume opened
}

// seek positions the cursor at the tar entry name in volume n and returns
// its header; the entry's data is read from c.tr.
func (c *cursor) seek(ctx context.Context, n int, name string) (*tar.Header, error) {
	if n < 1 || n > len(c.m.Volumes) {
		return nil, fmt.Errorf("set %s: the file table names volume %d, which the set does not have", c.m.ID, n)
	}
	if n < c.volNum {
		return nil, fmt.Errorf("set %s: the file table goes back to volume %d after %d", c.m.ID, n, c.volNum)
	}
	if n != c.volNum {
		c.close()
		rc, err := c.r.open(ctx, c.m, c.m.Volumes[n-1])
		if err != nil {
			return nil, err
		}
		c.vol, c.tr, c.volNum = rc.(*objectReader), tar.NewReader(rc), n
		if c.opened != nil {
			c.opened(n)
		}
	}
	for {
		h, err := c.tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s of %s: has no entry %q, which the file table lists", c.vol.name, c.m.ID, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", c.vol.name, c.m.ID, err)
		}
		if h.Name == name {
			return h, nil
		}
	}
}

// finish reads the rest of the current volume so that its seal is checked.
func (c *cursor) finish() error {
	if c.vol == nil {
		return nil
	}
	err := c.vol.finish()
	c.close()
	return err
}

func (c *cursor) close() {
	if c.vol != nil {
		c.vol.Close()
		c.vol, c.tr, c.volNum = nil, nil, 0
	}
}

// extractor creates the entries of a file table in the target. It holds
// an open handle on the target and on each directory it is inside of, and
// creates every entry relative to its parent's handle (confine.go).
type extractor struct {
	opt   RestoreOptions
	sel   *selection
	plan  *restorePlan
	root  int // the target's handle
	spool string
	buf   []byte
	self  *cursor // the set's own volumes
	base  *cursor // a differential's full
	// The full's table, read for the hashes of unchanged files.
	baseTable       *TableReader
	baseTableCloser io.Closer
	dirs            []openDir         // directories whose metadata is applied when left
	staged          map[string]string // hardlink data waiting for its first selected name, in the target's root
	links           map[string]devIno // restored first names of hardlink groups
	skip            string            // a directory someone else changed while restored: skipped with its subtree
	entries         int
	bytes           int64
	// memBasis is how large a patch basis may be to stay in memory
	// (WriteTar: no plaintext on disk below it); 0 spools every basis.
	memBasis int64
}

// openDir is a directory of the target being filled.
type openDir struct {
	e  *Entry
	fd int
}

// entry restores one file table entry.
func (x *extractor) entry(ctx context.Context, e *Entry) error {
	p := string(e.Path)
	s, a := x.sel.wants(p)
	if !s && !a {
		if _, ok := x.plan.redirect[p]; ok && e.Type == TypeFile && !x.opt.DryRun {
			return x.stage(ctx, e)
		}
		return nil
	}
	if a && e.Type != TypeDir {
		return nil
	}
	if x.skip != "" && strings.HasPrefix(p, x.skip+"/") {
		return nil
	}
	if err := x.popDirs(p); err != nil {
		return err
	}
	if p == "." && e.Type != TypeDir {
		return fmt.Errorf("file table: the root is a %s, not a directory: the set is malformed", e.Type)
	}
	if p != "." && !x.opt.DryRun {
		if n := len(x.dirs); n == 0 || string(x.dirs[n-1].e.Path) != path.Dir(p) {
			return fmt.Errorf("file table: %q comes without its parent directory: the set is malformed", p)
		}
	}
	x.entries++
	if x.opt.DryRun {
		if e.Type == TypeFile {
			return x.content(ctx, e, io.Discard)
		}
		return nil
	}
	if p == "." {
		x.dirs = append(x.dirs, openDir{e: e, fd: -1})
		return nil
	}
	d, name := x.dirs[len(x.dirs)-1].fd, path.Base(p)
	if d < 0 {
		d = x.root
	}
	switch e.Type {
	case TypeDir:
		fd, err := mkdirAt(d, name, x.opt.Force)
		if interfered(err) {
			x.warn(p, fmt.Sprintf("changed while restored (%v): skipped with everything beneath it", err))
			x.skip = p
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
		x.dirs = append(x.dirs, openDir{e: e, fd: fd})
		return nil
	case TypeFile:
		return x.file(ctx, e, d, name)
	case TypeHardlink:
		return x.hardlink(e, d, name)
	}
	if err := x.replace(d, name); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	if e.Type == TypeSymlink {
		err := unix.Symlinkat(string(e.Target), d, name)
		if interfered(err) {
			x.warn(p, fmt.Sprintf("changed while restored (%v): skipped", err))
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore symlink %s: %w", p, err)
		}
		x.symlinkMeta(d, name, e)
		return nil
	}
	mode := uint32(unix.S_IFIFO)
	if e.Type == TypeChar {
		mode = unix.S_IFCHR
	} else if e.Type == TypeBlock {
		mode = unix.S_IFBLK
	}
	err := unix.Mknodat(d, name, mode|0o600, int(unix.Mkdev(e.Major, e.Minor)))
	if interfered(err) {
		x.warn(p, fmt.Sprintf("changed while restored (%v): skipped", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore %s %s: %w", e.Type, p, err)
	}
	fd, err := unix.Openat(d, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		x.warn(p, fmt.Sprintf("changed while restored (%v): metadata not set", err))
		return nil
	}
	defer unix.Close(fd)
	x.meta(fd, e)
	return nil
}

// hardlink gives a restored file another name. Its target must be the
// first name of the group, restored earlier in this run and still the same
// regular file; it is reached without following a symlink.
func (x *extractor) hardlink(e *Entry, d int, name string) error {
	p, target := string(e.Path), string(e.Target)
	if staged, ok := x.staged[target]; ok {
		// The group's first name is not restored: its data moves here.
		delete(x.staged, target)
		if err := x.replace(d, name); err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
		if err := unix.Renameat(x.root, staged, d, name); err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
		x.plan.redirect[target] = p
		return nil
	}
	id, ok := x.links[target]
	if !ok {
		return fmt.Errorf("restore hardlink %s: its target %q is not a file restored earlier in this run: the set is malformed", p, target)
	}
	if to, ok := x.plan.redirect[target]; ok {
		target = to
	}
	fd, err := resolveAt(x.root, target)
	if err != nil {
		return fmt.Errorf("restore hardlink %s: target %s: %w", p, target, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || (devIno{st.Dev, st.Ino}) != id {
		return fmt.Errorf("restore hardlink %s: target %s is no longer the file restored there", p, target)
	}
	if err := x.replace(d, name); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	if err := unix.Linkat(unix.AT_FDCWD, procPath(fd), d, name, unix.AT_SYMLINK_FOLLOW); err != nil {
		return fmt.Errorf("restore hardlink %s: %w", p, err)
	}
	return nil
}

// stage writes the data of a hardlink group's first name, which is not
// selected, to a hidden file in the target; its first selected link takes it.
func (x *extractor) stage(ctx context.Context, e *Entry) error {
	name := fmt.Sprintf(".backtory-restore-%d", len(x.staged))
	if err := x.file(ctx, e, x.root, name); err != nil {
		return err
	}
	if x.staged == nil {
		x.staged = map[string]string{}
	}
	x.staged[string(e.Path)] = name
	return nil
}

// replace removes an existing entry at name in d (only with --force it can
// exist), without following it; a directory goes with all it holds.
func (x *extractor) replace(d int, name string) error {
	if !x.opt.Force {
		return nil
	}
	return clearAt(d, name)
}

// file writes a regular file's content and metadata.
func (x *extractor) file(ctx context.Context, e *Entry, d int, name string) error {
	if err := x.replace(d, name); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	fd, err := unix.Openat(d, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if interfered(err) {
		x.warn(string(e.Path), fmt.Sprintf("changed while restored (%v): skipped", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	f := os.NewFile(uintptr(fd), string(e.Path))
	var w io.Writer = f
	if e.Sparse {
		w = &sparseWriter{f: f}
	}
	err = x.content(ctx, e, w)
	if err == nil && e.Sparse {
		err = f.Truncate(e.Size)
	}
	if err == nil {
		if _, ok := x.plan.linkTargets[string(e.Path)]; ok {
			var st unix.Stat_t
			if err = unix.Fstat(fd, &st); err == nil {
				x.links[string(e.Path)] = devIno{st.Dev, st.Ino}
			}
		}
	}
	if err == nil {
		x.meta(fd, e)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(d, name, 0)
		return err
	}
	return nil
}

// content writes e's content to w, from the set's own volumes, from the
// full's, or patched from both, and checks its hash.
func (x *extractor) content(ctx context.Context, e *Entry, w io.Writer) error {
	h := blake3.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	var err error
	switch e.Change {
	case "", ChangeWhole, ChangeNew:
		err = x.copyFrom(ctx, x.self, e.Volume, tarName(e.Path, false), cw)
	case ChangeUnchanged, ChangeMeta:
		err = x.copyFrom(ctx, x.base, e.BaseVolume, tarName(e.Path, false), cw)
	case ChangeDelta:
		err = x.patch(ctx, e, cw)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	want := e.Hash
	if want == "" && e.Change == ChangeUnchanged {
		if want, err = x.baseHash(ctx, e); err != nil {
			return fmt.Errorf("restore %s: %w", e.Path, err)
		}
	}
	if cw.n.Load() != e.Size || hex.EncodeToString(h.Sum(nil)) != want {
		return fmt.Errorf("restore %s: content does not match the file table (%d bytes)", e.Path, cw.n.Load())
	}
	x.bytes += cw.n.Load()
	return nil
}

// baseHash returns the content hash of an unchanged file from the full's
// table, which is read forward in step with the differential's.
func (x *extractor) baseHash(ctx context.Context, e *Entry) (string, error) {
	if x.baseTable == nil {
		table, tc, err := x.base.r.Files(ctx, x.base.m)
		if err != nil {
			return "", err
		}
		x.baseTable, x.baseTableCloser = table, tc
	}
	for {
		f, err := x.baseTable.Next()
		if err == io.EOF {
			return "", fmt.Errorf("not in the file table of %s, where the differential says it is", x.base.m.ID)
		}
		if err != nil {
			return "", err
		}
		if f.Path == e.Path {
			return f.Hash, nil
		}
	}
}

func (x *extractor) copyFrom(ctx context.Context, c *cursor, vol int, name string, w io.Writer) error {
	if c == nil {
		return fmt.Errorf("the file table points into a full, but this set is a full itself")
	}
	if _, err := c.seek(ctx, vol, name); err != nil {
		return err
	}
	_, err := io.CopyBuffer(w, c.tr, x.buf)
	return err
}

// patch applies the differential's delta to the full's version of e, or
// of the path it was moved from.
func (x *extractor) patch(ctx context.Context, e *Entry, w io.Writer) error {
	basis := &spillBuffer{limit: x.memBasis, dir: x.spool}
	defer basis.Close()
	base, name, delta := x.base, tarName(e.Path, false), deltaPrefix+string(e.Path)
	if e.BasePath != "" && x.base != nil {
		// A moved file's basis lies anywhere in the full, before or after
		// where the forward cursor is: a cursor of its own reads it.
		base = &cursor{r: x.base.r, m: x.base.m}
		defer base.close()
		name, delta = tarName(e.BasePath, false), movedPrefix+string(e.Path)
	}
	if err := x.copyFrom(ctx, base, e.BaseVolume, name, basis); err != nil {
		return err
	}
	if _, err := x.self.seek(ctx, e.Volume, delta); err != nil {
		return err
	}
	return rsyncdelta.Patch(basis, x.self.tr, w)
}

// spillBuffer holds a patch basis: in memory up to limit bytes, then in a
// temporary file in dir (removed by Close).
type spillBuffer struct {
	limit int64
	dir   string
	mem   []byte
	f     *os.File
}

func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.f == nil && int64(len(b.mem)+len(p)) <= b.limit {
		b.mem = append(b.mem, p...)
		return len(p), nil
	}
	if b.f == nil {
		f, err := os.CreateTemp(b.dir, "basis-*")
		if err != nil {
			return 0, err
		}
		b.f = f
		if _, err := f.Write(b.mem); err != nil {
			return 0, err
		}
		b.mem = nil
	}
	return b.f.Write(p)
}

func (b *spillBuffer) ReadAt(p []byte, off int64) (int, error) {
	if b.f != nil {
		return b.f.ReadAt(p, off)
	}
	return bytes.NewReader(b.mem).ReadAt(p, off)
}

func (b *spillBuffer) Close() error {
	if b.f == nil {
		return nil
	}
	b.f.Close()
	return os.Remove(b.f.Name())
}

// popDirs applies the metadata of every directory on the stack that is
// not an ancestor of p ("" pops all) and closes its handle.
func (x *extractor) popDirs(p string) error {
	for len(x.dirs) > 0 {
		top := x.dirs[len(x.dirs)-1]
		t := string(top.e.Path)
		if p != "" && (t == "." || strings.HasPrefix(p, t+"/")) {
			return nil
		}
		x.dirs = x.dirs[:len(x.dirs)-1]
		if x.opt.DryRun {
			continue
		}
		fd := top.fd
		if fd < 0 {
			fd = x.root
		}
		x.meta(fd, top.e)
		if top.fd >= 0 {
			unix.Close(top.fd)
		}
	}
	return nil
}

// closeDirs closes the handles of directories left open by a failed restore.
func (x *extractor) closeDirs() {
	for _, d := range x.dirs {
		if d.fd >= 0 {
			unix.Close(d.fd)
		}
	}
	x.dirs = nil
}

// isRoot says whether owners can be restored: asked once, not per file.
var isRoot = os.Geteuid() == 0

// meta applies owner, mode, xattrs (with ACLs) and mtime to the open file
// fd, in that order: chown clears setuid bits, and an ACL sets the group
// mode bits. The calls reach the inode through /proc/self/fd, which also
// works for O_PATH handles of FIFOs and devices.
func (x *extractor) meta(fd int, e *Entry) {
	warn := x.metaWarner(e)
	pp := procPath(fd)
	if isRoot {
		if err := unix.Fchownat(fd, "", e.UID, e.GID, unix.AT_EMPTY_PATH); err != nil {
			warn("set owner", err)
		}
	}
	if err := unix.Chmod(pp, e.Mode); err != nil {
		warn("set mode", err)
	}
	for k, v := range e.Xattrs {
		if err := unix.Setxattr(pp, k, v, 0); err != nil {
			warn("set xattr "+k, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, pp, ts, 0); err != nil {
		warn("set mtime", err)
	}
}

// symlinkMeta applies owner, xattrs and mtime to symlink name in d,
// not following it.
func (x *extractor) symlinkMeta(d int, name string, e *Entry) {
	warn := x.metaWarner(e)
	if isRoot {
		if err := unix.Fchownat(d, name, e.UID, e.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			warn("set owner", err)
		}
	}
	for k, v := range e.Xattrs {
		if err := unix.Lsetxattr(procPath(d)+"/"+name, k, v, 0); err != nil {
			warn("set xattr "+k, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	if err := unix.UtimesNanoAt(d, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		warn("set mtime", err)
	}
}

func (x *extractor) metaWarner(e *Entry) func(what string, err error) {
	return func(what string, err error) { x.warn(string(e.Path), fmt.Sprintf("%s: %v", what, err)) }
}

func (x *extractor) warn(p, msg string) {
	if x.opt.Warn != nil {
		x.opt.Warn(p, msg)
	}
}

// interfered says whether creating an entry failed because something else
// took its name meanwhile: the target was empty (or cleared with --force),
// so only another process can have put it there.
func interfered(err error) bool {
	return errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT)
}

// sparseWriter skips blocks of zeros, leaving holes; the caller truncates
// the file to its size at the end.
type sparseWriter struct {
	f   *os.File
	off int64
}

const sparseBlock = 4096

func (s *sparseWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), sparseBlock-int(s.off%sparseBlock))
		chunk := p[:n]
		if !allZero(chunk) {
			if _, err := s.f.WriteAt(chunk, s.off); err != nil {
				return total - len(p), err
			}
		}
		s.off += int64(n)
		p = p[n:]
	}
	return total, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
