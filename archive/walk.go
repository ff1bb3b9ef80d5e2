package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// walker visits a tree in ComparePaths order and describes each path as an
// Entry. It never follows symlinks and, unless crossMounts is set, does not
// descend into other filesystems (their mount points are kept as empty
// directories).
type walker struct {
	root        string
	exclude     *Excluder
	crossMounts bool
	warn        func(path, msg string)

	rootDev uint64
	links   map[devIno]string // first path of each multiply-linked file
	users   map[int]string
	groups  map[int]string
}

type devIno struct{ dev, ino uint64 }

// visit is called for each entry; abs is its path on disk.
type visitFunc func(e *Entry, abs string) error

func (w *walker) walk(fn visitFunc) error {
	// Opening the root first mounts it if it is an automount point (a ZFS
	// snapshot under .zfs/snapshot): its device must be the mounted one,
	// or the walk would stop at the first directory as at a mount point.
	if f, err := os.Open(w.root); err == nil {
		f.Close()
	}
	var st unix.Stat_t
	if err := unix.Lstat(w.root, &st); err != nil {
		return fmt.Errorf("source %s: %w", w.root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("source %s is not a directory", w.root)
	}
	w.rootDev = st.Dev
	w.links = map[devIno]string{}
	w.users = map[int]string{}
	w.groups = map[int]string{}
	e, err := w.entry(".", w.root, &st)
	if err != nil {
		return err
	}
	if err := fn(e, w.root); err != nil {
		return err
	}
	return w.dir(".", w.root, fn)
}

func (w *walker) dir(rel, abs string, fn visitFunc) error {
	f, err := os.Open(abs)
	if err != nil {
		w.warn(rel, fmt.Sprintf("cannot read directory: %v", unwrapPath(err)))
		return nil
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		w.warn(rel, fmt.Sprintf("cannot read directory: %v", unwrapPath(err)))
		return nil
	}
	sort.Strings(names)
	for _, name := range names {
		crel := name
		if rel != "." {
			crel = rel + "/" + name
		}
		if w.exclude.Match(crel) {
			continue
		}
		cabs := filepath.Join(abs, name)
		var st unix.Stat_t
		if err := unix.Lstat(cabs, &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				w.warn(crel, "vanished before it was read")
			} else {
				w.warn(crel, fmt.Sprintf("cannot stat: %v", err))
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			continue // sockets cannot be archived and are recreated by their servers
		}
		e, err := w.entry(crel, cabs, &st)
		if err != nil {
			w.warn(crel, err.Error())
			continue
		}
		if err := fn(e, cabs); err != nil {
			return err
		}
		if e.Type == TypeDir && (w.crossMounts || st.Dev == w.rootDev) {
			if err := w.dir(crel, cabs, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry describes one path from its lstat result.
func (w *walker) entry(rel, abs string, st *unix.Stat_t) (*Entry, error) {
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
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = TypeFile
		e.Size = st.Size
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
		t, err := os.Readlink(abs)
		if err != nil {
			return nil, fmt.Errorf("read symlink: %w", unwrapPath(err))
		}
		e.Target = Name(t)
	case unix.S_IFIFO:
		e.Type = TypeFIFO
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = TypeBlock
		}
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	default:
		return nil, fmt.Errorf("unsupported file type %o", st.Mode&unix.S_IFMT)
	}
	if e.Type != TypeHardlink {
		x, err := readXattrs(abs)
		if err != nil {
			return nil, err
		}
		e.Xattrs = x
	}
	return e, nil
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

// readXattrs returns all extended attributes of path (not following a
// symlink), or nil if there are none or the filesystem has none.
func readXattrs(path string) (map[string][]byte, error) {
	buf := make([]byte, 1024)
	var n int
	var err error
	for {
		n, err = unix.Llistxattr(path, buf)
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
		v, err := getXattr(path, name)
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

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if err == unix.ERANGE {
			sz, err := unix.Lgetxattr(path, name, nil)
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
