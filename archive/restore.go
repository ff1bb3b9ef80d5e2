package archive

import (
	"archive/tar"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	Target string   // directory to restore into; created if missing
	Paths  []string // paths inside the source to restore; empty means all
	Force  bool     // restore into a non-empty target, replacing files
	// DryRun reads and checks everything but writes nothing (verify --deep).
	DryRun bool
	// Warn is told about metadata that could not be restored.
	Warn func(path, msg string)
}

// RestoreStats counts what a restore did.
type RestoreStats struct {
	Entries int
	Bytes   int64
}

// Restore restores set m into opt.Target. Every volume is checked against
// the manifest before it is decrypted; every file's content against its
// hash.
func (r *Reader) Restore(ctx context.Context, m *Manifest, opt RestoreOptions) (RestoreStats, error) {
	var st RestoreStats
	sel, err := newSelection(opt.Paths)
	if err != nil {
		return st, err
	}
	if !opt.DryRun {
		if err := prepareTarget(opt.Target, opt.Force); err != nil {
			return st, err
		}
	}
	plan, err := r.plan(ctx, m, sel)
	if err != nil {
		return st, err
	}
	if len(opt.Paths) > 0 && plan.selected == 0 {
		return st, fmt.Errorf("set %s has none of the paths %s", m.ID, strings.Join(opt.Paths, ", "))
	}
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return st, err
	}
	defer tc.Close()
	x := &extractor{opt: opt, sel: sel, plan: plan, buf: make([]byte, 1<<20), root: opt.Target}
	defer x.closeVolume()
	for {
		e, err := table.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if e.Volume != x.volNum {
			if err := x.closeVolume(); err != nil {
				return st, err
			}
			if plan.volumes[e.Volume] {
				if e.Volume < 1 || e.Volume > len(m.Volumes) {
					return st, fmt.Errorf("file table of %s: %q is in volume %d, which the set does not have", m.ID, e.Path, e.Volume)
				}
				if err := x.openVolume(ctx, r, m, e.Volume); err != nil {
					return st, err
				}
			}
			x.volNum = e.Volume
		}
		if !plan.volumes[e.Volume] {
			continue
		}
		if err := x.entry(e); err != nil {
			return st, err
		}
	}
	if err := x.closeVolume(); err != nil {
		return st, err
	}
	if err := x.popDirs(""); err != nil {
		return st, err
	}
	return RestoreStats{Entries: x.entries, Bytes: x.bytes}, nil
}

// selection decides which paths a restore writes.
type selection struct{ paths []string }

func newSelection(paths []string) (*selection, error) {
	s := &selection{}
	for _, p := range paths {
		c := path.Clean("/" + p)[1:]
		if c == "" {
			c = "."
		}
		s.paths = append(s.paths, c)
	}
	return s, nil
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
	volumes  map[int]bool      // volumes holding something to restore
	redirect map[string]string // unselected first name of a hardlink group -> where it was restored
	selected int
}

func (r *Reader) plan(ctx context.Context, m *Manifest, sel *selection) (*restorePlan, error) {
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	p := &restorePlan{volumes: map[int]bool{}, redirect: map[string]string{}}
	for {
		e, err := table.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		s, a := sel.wants(string(e.Path))
		if !s && !a {
			continue
		}
		if s {
			p.selected++
		}
		p.volumes[e.Volume] = true
		if s && e.Type == TypeHardlink {
			if s2, _ := sel.wants(string(e.Target)); !s2 {
				if _, ok := p.redirect[string(e.Target)]; !ok {
					p.redirect[string(e.Target)] = string(e.Path)
				}
			}
		}
	}
	// The data of redirected hardlink groups is in the first name's volume:
	// a second pass is not needed because the first name precedes its links
	// and the plan only adds volumes.
	if len(p.redirect) > 0 {
		table, tc2, err := r.Files(ctx, m)
		if err != nil {
			return nil, err
		}
		defer tc2.Close()
		for {
			e, err := table.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if _, ok := p.redirect[string(e.Path)]; ok {
				p.volumes[e.Volume] = true
			}
		}
	}
	return p, nil
}

// prepareTarget creates the target, or checks that it is empty.
func prepareTarget(dir string, force bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore target: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("restore target: %w", err)
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	if len(names) > 0 && !force {
		return fmt.Errorf("%s: %w", dir, ErrNotEmpty)
	}
	return nil
}

// extractor writes entries from volumes into the target.
type extractor struct {
	opt     RestoreOptions
	sel     *selection
	plan    *restorePlan
	root    string
	buf     []byte
	volNum  int
	vol     *objectReader
	tr      *tar.Reader
	dirs    []*Entry          // directories whose metadata is applied when left
	staged  map[string]string // hardlink data waiting for its first selected name
	entries int
	bytes   int64
}

func (x *extractor) openVolume(ctx context.Context, r *Reader, m *Manifest, n int) error {
	rc, err := r.open(ctx, m, m.Volumes[n-1])
	if err != nil {
		return err
	}
	x.vol = rc.(*objectReader)
	x.tr = tar.NewReader(x.vol)
	return nil
}

// closeVolume checks that the volume ended cleanly and was verified.
func (x *extractor) closeVolume() error {
	if x.vol == nil {
		return nil
	}
	v := x.vol
	x.vol, x.tr = nil, nil
	defer v.Close()
	return v.finish()
}

// entry restores one file table entry, reading its tar entry.
func (x *extractor) entry(e *Entry) error {
	p := string(e.Path)
	h, err := x.tr.Next()
	if err != nil {
		if err == io.EOF {
			return fmt.Errorf("%s: ends before %q, which the file table lists", x.vol.name, p)
		}
		return fmt.Errorf("%s: %w", x.vol.name, err)
	}
	if h.Name != tarName(e.Path, e.Type == TypeDir) {
		return fmt.Errorf("%s: holds %q where the file table lists %q", x.vol.name, h.Name, p)
	}
	s, a := x.sel.wants(p)
	if !s && !a {
		if _, ok := x.plan.redirect[p]; ok && e.Type == TypeFile && !x.opt.DryRun {
			return x.stage(e)
		}
		return nil
	}
	if a && e.Type != TypeDir {
		return nil
	}
	if err := x.popDirs(p); err != nil {
		return err
	}
	if p != "." && !x.opt.DryRun {
		parent := path.Dir(p)
		if n := len(x.dirs); n == 0 || string(x.dirs[n-1].Path) != parent {
			return fmt.Errorf("%s: %q comes without its parent directory: the archive is malformed", x.vol.name, p)
		}
	}
	x.entries++
	dest := p
	abs := filepath.Join(x.root, dest)
	if x.opt.DryRun {
		if e.Type == TypeFile {
			return x.content(e, io.Discard)
		}
		return nil
	}
	switch e.Type {
	case TypeDir:
		if dest != "." {
			if err := os.Mkdir(abs, 0o700); err != nil {
				if fi, serr := os.Lstat(abs); serr != nil || !fi.IsDir() || !x.opt.Force {
					return fmt.Errorf("restore %s: %w", p, err)
				}
			}
		}
		x.dirs = append(x.dirs, &Entry{Path: Name(dest), Type: e.Type, Mode: e.Mode, UID: e.UID, GID: e.GID, MTime: e.MTime, Xattrs: e.Xattrs})
		return nil
	case TypeFile:
		return x.file(e, abs)
	case TypeHardlink:
		target := string(e.Target)
		if staged, ok := x.staged[target]; ok {
			// The group's first name is not restored: its data moves here.
			delete(x.staged, target)
			x.replace(abs)
			if err := os.Rename(staged, abs); err != nil {
				return fmt.Errorf("restore %s: %w", p, err)
			}
			x.plan.redirect[target] = dest
			return nil
		}
		if to, ok := x.plan.redirect[target]; ok {
			target = to
		}
		x.replace(abs)
		if err := os.Link(filepath.Join(x.root, target), abs); err != nil {
			return fmt.Errorf("restore hardlink %s: %w", p, err)
		}
		return nil
	case TypeSymlink:
		x.replace(abs)
		if err := os.Symlink(string(e.Target), abs); err != nil {
			return fmt.Errorf("restore symlink %s: %w", p, err)
		}
	case TypeFIFO, TypeChar, TypeBlock:
		mode := uint32(unix.S_IFIFO)
		if e.Type == TypeChar {
			mode = unix.S_IFCHR
		} else if e.Type == TypeBlock {
			mode = unix.S_IFBLK
		}
		x.replace(abs)
		if err := unix.Mknod(abs, mode|0o600, int(unix.Mkdev(e.Major, e.Minor))); err != nil {
			return fmt.Errorf("restore %s %s: %w", e.Type, p, err)
		}
	}
	x.meta(abs, e)
	return nil
}

// stage writes the data of a hardlink group's first name, which is not
// selected, to a hidden file in the target; its first selected link takes it.
func (x *extractor) stage(e *Entry) error {
	abs := filepath.Join(x.root, fmt.Sprintf(".backtory-restore-%d", len(x.staged)))
	if err := x.file(e, abs); err != nil {
		return err
	}
	if x.staged == nil {
		x.staged = map[string]string{}
	}
	x.staged[string(e.Path)] = abs
	return nil
}

// replace removes an existing non-directory at abs (only with --force it
// can exist).
func (x *extractor) replace(abs string) {
	if x.opt.Force {
		if fi, err := os.Lstat(abs); err == nil && !fi.IsDir() {
			os.Remove(abs)
		}
	}
}

// file writes a regular file's content and metadata.
func (x *extractor) file(e *Entry, abs string) error {
	x.replace(abs)
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	var w io.Writer = f
	if e.Sparse {
		w = &sparseWriter{f: f}
	}
	err = x.content(e, w)
	if err == nil && e.Sparse {
		err = f.Truncate(e.Size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(abs)
		return err
	}
	x.meta(abs, e)
	return nil
}

// content copies the current tar entry to w and checks its hash.
func (x *extractor) content(e *Entry, w io.Writer) error {
	h := blake3.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), x.tr, x.buf)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if n != e.Size || hex.EncodeToString(h.Sum(nil)) != e.Hash {
		return fmt.Errorf("restore %s: content does not match the file table (%d bytes)", e.Path, n)
	}
	x.bytes += n
	return nil
}

// popDirs applies the metadata of every directory on the stack that is
// not an ancestor of p ("" pops all).
func (x *extractor) popDirs(p string) error {
	for len(x.dirs) > 0 {
		top := x.dirs[len(x.dirs)-1]
		t := string(top.Path)
		if p != "" && (t == "." || strings.HasPrefix(p, t+"/")) {
			return nil
		}
		x.dirs = x.dirs[:len(x.dirs)-1]
		x.meta(filepath.Join(x.root, t), top)
	}
	return nil
}

// meta applies owner, mode, xattrs (with ACLs) and mtime, in that order:
// chown clears setuid bits, and an ACL sets the group mode bits.
func (x *extractor) meta(abs string, e *Entry) {
	warn := func(what string, err error) {
		if x.opt.Warn != nil {
			x.opt.Warn(string(e.Path), fmt.Sprintf("%s: %v", what, err))
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(abs, e.UID, e.GID); err != nil {
			warn("set owner", err)
		}
	}
	if e.Type != TypeSymlink {
		if err := unix.Fchmodat(unix.AT_FDCWD, abs, e.Mode, 0); err != nil {
			warn("set mode", err)
		}
	}
	for k, v := range e.Xattrs {
		if err := unix.Lsetxattr(abs, k, v, 0); err != nil {
			warn("set xattr "+k, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		warn("set mtime", err)
	}
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
