package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// walker visits a tree in ComparePaths order and describes each path as an
// Entry. It never follows symlinks and, unless crossMounts is set, does not
// descend into other filesystems (their mount points are kept as empty
// directories).
//
// It is confined by construction: each entry is opened relative to its
// parent's handle without following a symlink (openEntry), and read through
// that handle, so a local user who swaps a directory for a symlink, or a
// file for a FIFO, a device or a symlink, while the walk runs can make it
// skip the entry (with a warning naming it), never read outside the source
// or block. What is archived (type, owner, mode, size, times) comes from
// fstat of the open handle, checked against the lstat taken while listing.
type walker struct {
	root        string
	exclude     *Excluder
	crossMounts bool
	warn        func(path, msg string)
	// full, if set, makes the walk look only at the paths of a change list
	// and their directories, and take the rest from the full's table.
	full *fromFull

	rootDev uint64
	links   map[devIno]string // first path of each multiply-linked file
	users   map[int]string
	groups  map[int]string
}

type devIno struct{ dev, ino uint64 }

// visitFunc is called for each entry; f is the open file of a TypeFile
// entry (positioned at its start; the walker closes it), else nil.
type visitFunc func(e *Entry, f *os.File) error

func (w *walker) walk(fn visitFunc) error {
	// Opening the root first mounts it if it is an automount point (a ZFS
	// snapshot under .zfs/snapshot): its device must be the mounted one,
	// or the walk would stop at the first directory as at a mount point.
	fd, err := unix.Open(w.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR {
		return fmt.Errorf("source %s is not a directory", w.root)
	}
	if err != nil {
		return fmt.Errorf("source %s: %w", w.root, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("source %s: %w", w.root, err)
	}
	w.rootDev = st.Dev
	w.links = map[devIno]string{}
	w.users = map[int]string{}
	w.groups = map[int]string{}
	e, err := w.entry(".", handle{fd: fd, st: st})
	if err != nil {
		return err
	}
	if err := fn(e, nil); err != nil {
		return err
	}
	return w.dir(".", fd, fn)
}

// handle is an entry opened by the walk: a directory or regular file open
// for reading, anything else an O_PATH handle; st is fstat of fd.
type handle struct {
	fd     int
	st     unix.Stat_t
	parent int    // the parent directory's handle (-1 for the root)
	name   string // the entry's name in parent
}

func (w *walker) dir(rel string, dfd int, fn visitFunc) error {
	names, err := readNames(dfd)
	if err != nil {
		w.warn(rel, fmt.Sprintf("cannot read directory: %v", err))
		return nil
	}
	sort.Strings(names)
	if w.full != nil {
		w.full.listed[rel] = true
	}
	for _, name := range names {
		crel := name
		if rel != "." {
			crel = rel + "/" + name
		}
		if w.exclude.Match(crel) {
			continue
		}
		var lst unix.Stat_t
		err := unix.Fstatat(dfd, name, &lst, unix.AT_SYMLINK_NOFOLLOW)
		if w.full != nil && !w.full.walks(crel) {
			if err != nil {
				return errUntrusted{fmt.Sprintf("%s: %v", crel, err)}
			}
			if err := w.full.copy(w, crel, &lst, fn); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if err == unix.ENOENT {
				w.warn(crel, "vanished before it was read")
			} else {
				w.warn(crel, fmt.Sprintf("cannot stat: %v", err))
			}
			continue
		}
		if lst.Mode&unix.S_IFMT == unix.S_IFSOCK {
			continue // sockets cannot be archived and are recreated by their servers
		}
		h, err := openEntry(dfd, name, &lst)
		if err != nil {
			w.warn(crel, err.Error())
			continue
		}
		if err := w.visit(crel, h, &lst, fn); err != nil {
			return err
		}
	}
	return nil
}

// visit describes and hands on one opened entry, then walks into it if it
// is a directory; it closes the handle.
func (w *walker) visit(rel string, h handle, lst *unix.Stat_t, fn visitFunc) error {
	var f *os.File
	if h.st.Mode&unix.S_IFMT == unix.S_IFREG {
		f = os.NewFile(uintptr(h.fd), rel)
		defer f.Close()
	} else {
		defer unix.Close(h.fd)
	}
	e, err := w.entry(rel, h)
	if err != nil {
		w.warn(rel, err.Error())
		return nil
	}
	if w.full != nil {
		if err := walkedFile(e); err != nil {
			return err
		}
	}
	if h.st.Dev != lst.Dev || h.st.Ino != lst.Ino {
		e.Warning = "changed while read (another file took its name): archived as opened"
		w.warn(rel, e.Warning)
	}
	if err := fn(e, f); err != nil {
		return err
	}
	if e.Type == TypeDir && (w.crossMounts || h.st.Dev == w.rootDev) {
		return w.dir(rel, h.fd, fn)
	}
	return nil
}

// openEntry opens name in directory dfd without following it: a directory
// with O_DIRECTORY, a regular file for reading with O_NONBLOCK (cleared once
// fstat says it is still a regular file: a FIFO put in its place cannot
// block the open), anything else as an O_PATH handle.
func openEntry(dfd int, name string, lst *unix.Stat_t) (handle, error) {
	h := handle{parent: dfd, name: name}
	var err error
	noatime := false
	switch lst.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	case unix.S_IFREG:
		const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
		h.fd, err = unix.Openat(dfd, name, flags|unix.O_NOATIME, 0)
		noatime = err == nil
		if err == unix.EPERM {
			h.fd, err = unix.Openat(dfd, name, flags, 0)
		}
	default:
		h.fd, err = unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	switch {
	case err == unix.ENOENT:
		return h, errors.New("vanished before it was read")
	case err == unix.ELOOP || err == unix.ENOTDIR:
		return h, fmt.Errorf("changed while read: no longer a %s, not archived", typeName(lst.Mode))
	case err != nil:
		return h, fmt.Errorf("cannot open: %v", err)
	}
	if err := unix.Fstat(h.fd, &h.st); err != nil {
		unix.Close(h.fd)
		return h, fmt.Errorf("cannot stat: %v", err)
	}
	if h.st.Mode&unix.S_IFMT != lst.Mode&unix.S_IFMT {
		unix.Close(h.fd)
		return h, fmt.Errorf("changed while read: a %s when listed, a %s when opened, not archived", typeName(lst.Mode), typeName(h.st.Mode))
	}
	if h.st.Mode&unix.S_IFMT == unix.S_IFREG {
		// Reads block again (F_SETFL sets the status flags whole).
		fl := 0
		if noatime {
			fl = unix.O_NOATIME
		}
		if _, err := unix.FcntlInt(uintptr(h.fd), unix.F_SETFL, fl); err != nil {
			unix.Close(h.fd)
			return h, fmt.Errorf("cannot open: %v", err)
		}
	}
	return h, nil
}

// readNames lists directory dfd (read through a duplicate of the handle,
// which stays open for the entries' *at calls).
func readNames(dfd int) ([]string, error) {
	fd, err := unix.Dup(dfd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	return names, unwrapPath(err)
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("file of type %o", mode&unix.S_IFMT)
}

// entry describes one path from fstat of its open handle.
func (w *walker) entry(rel string, h handle) (*Entry, error) {
	st := &h.st
	e := &Entry{
		Path:  Name(rel),
		Mode:  st.Mode & 0o7777,
		UID:   int(st.Uid),
		GID:   int(st.Gid),
		User:  w.userName(int(st.Uid)),
		Group: w.groupName(int(st.Gid)),
		MTime: st.Mtim.Nano(),
		CTime: st.Ctim.Nano(),
		Inode: st.Ino,
	}
	// Extended attributes of the inode itself: through the handle of a
	// directory or a file, through /proc/self/fd for an O_PATH handle, and
	// a symlink's through its name in the parent's handle, not followed.
	xa := xattrSource{fd: h.fd}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = TypeFile
		e.Size = st.Size
		e.nlink = uint64(st.Nlink)
		if st.Nlink > 1 {
			k := devIno{st.Dev, st.Ino}
			if first, ok := w.links[k]; ok {
				e.Type = TypeHardlink
				e.Target = Name(first)
				e.Size = 0
			} else {
				w.links[k] = rel
			}
		}
		if e.Type == TypeFile && st.Size > 0 && st.Blocks*512 < st.Size {
			e.Sparse = true
		}
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFLNK:
		e.Type = TypeSymlink
		t, err := readlinkFD(h.fd)
		if err != nil {
			return nil, fmt.Errorf("read symlink: %w", err)
		}
		e.Target = Name(t)
		xa = xattrSource{fd: -1, path: procPath(h.parent) + "/" + h.name}
	case unix.S_IFIFO:
		e.Type = TypeFIFO
		xa = xattrSource{fd: -1, path: procPath(h.fd), follow: true}
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = TypeBlock
		}
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		xa = xattrSource{fd: -1, path: procPath(h.fd), follow: true}
	default:
		return nil, fmt.Errorf("unsupported file type %o", st.Mode&unix.S_IFMT)
	}
	if e.Type != TypeHardlink {
		x, err := readXattrs(xa)
		if err != nil {
			return nil, err
		}
		e.Xattrs = x
	}
	return e, nil
}

// readlinkFD reads the target of the symlink open as an O_PATH handle.
func readlinkFD(fd int) (string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func (w *walker) userName(id int) string {
	n, ok := w.users[id]
	if !ok {
		if u, err := user.LookupId(strconv.Itoa(id)); err == nil {
			n = u.Username
		}
		w.users[id] = n
	}
	return n
}

func (w *walker) groupName(id int) string {
	n, ok := w.groups[id]
	if !ok {
		if g, err := user.LookupGroupId(strconv.Itoa(id)); err == nil {
			n = g.Name
		}
		w.groups[id] = n
	}
	return n
}

// xattrSource is where readXattrs reads: an open file (fd >= 0), else a
// path, followed at its end or not.
type xattrSource struct {
	fd     int
	path   string
	follow bool
}

func (x xattrSource) list(buf []byte) (int, error) {
	switch {
	case x.fd >= 0:
		return unix.Flistxattr(x.fd, buf)
	case x.follow:
		return unix.Listxattr(x.path, buf)
	}
	return unix.Llistxattr(x.path, buf)
}

func (x xattrSource) get(name string, buf []byte) (int, error) {
	switch {
	case x.fd >= 0:
		return unix.Fgetxattr(x.fd, name, buf)
	case x.follow:
		return unix.Getxattr(x.path, name, buf)
	}
	return unix.Lgetxattr(x.path, name, buf)
}

// readXattrs returns all extended attributes of x, or nil if there are
// none or the filesystem has none.
func readXattrs(x xattrSource) (map[string][]byte, error) {
	buf := make([]byte, 1024)
	var n int
	var err error
	for {
		n, err = x.list(buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		break
	}
	if err == unix.ENOTSUP || n == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	out := map[string][]byte{}
	for _, name := range splitNul(buf[:n]) {
		v, err := getXattr(x, name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read xattr %s: %w", name, err)
		}
		out[name] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func getXattr(x xattrSource, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := x.get(name, buf)
		if err == unix.ERANGE {
			sz, err := x.get(name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), buf[:n]...), nil
	}
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}

// unwrapPath drops the path from a *fs.PathError: callers name the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
