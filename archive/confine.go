package archive

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The restore writes through directory handles, never through joined path
// strings: every name below is one component, created or opened relative
// to an open directory with O_NOFOLLOW, so a symlink planted in the target
// (by the archive or by a local user while the restore runs) is never
// followed out of it.

// openTarget opens the restore target directory.
func openTarget(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("restore target %s: %w", dir, err)
	}
	return fd, nil
}

// openDirAt opens directory name in d, not following a symlink.
func openDirAt(d int, name string) (int, error) {
	return unix.Openat(d, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// mkdirAt creates directory name in d (mode 0700 until its metadata is
// applied) and opens it. An existing directory is kept when force is set;
// an existing entry of another type is removed first, without following it.
func mkdirAt(d int, name string, force bool) (int, error) {
	err := unix.Mkdirat(d, name, 0o700)
	if err == unix.EEXIST && force {
		var st unix.Stat_t
		if serr := unix.Fstatat(d, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err = unix.Unlinkat(d, name, 0); err == nil {
				err = unix.Mkdirat(d, name, 0o700)
			}
		} else {
			err = nil
		}
	}
	if err != nil {
		return -1, err
	}
	fd, err := openDirAt(d, name)
	if err != nil {
		return -1, fmt.Errorf("open the directory just made: %w", err)
	}
	return fd, nil
}

// clearAt removes whatever is at name in d (with force), a directory with
// all it holds, never following a symlink. Nothing there is not an error.
func clearAt(d int, name string) error {
	err := unix.Unlinkat(d, name, 0)
	if err == unix.EISDIR || err == unix.EPERM {
		return removeAllAt(d, name)
	}
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// removeAllAt removes directory name in d and everything below it.
func removeAllAt(d int, name string) error {
	fd, err := openDirAt(d, name)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if err := clearAt(fd, n); err != nil {
				return err
			}
		}
		if len(names) == 0 || err != nil {
			break
		}
		// Entries were removed: read the directory again from its start.
		if _, err := f.Seek(0, 0); err != nil {
			return err
		}
	}
	return unix.Unlinkat(d, name, unix.AT_REMOVEDIR)
}

// resolveAt opens path p (relative, checked by checkPath) below d without
// following any symlink on the way, as an O_PATH handle.
func resolveAt(d int, p string) (int, error) {
	cur := d
	comps := strings.Split(p, "/")
	for i, c := range comps {
		flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i < len(comps)-1 {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(cur, c, flags, 0)
		if cur != d {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

// procPath names the file behind fd: system calls that take only a path
// (setxattr, utimensat on an O_PATH handle, linkat of an open file) reach
// exactly that inode through it.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// checkPath rejects a path a restore must not act on: empty, absolute,
// with a NUL, or with an empty, "." or ".." component ("." alone is the
// root).
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") {
		return fmt.Errorf("bad path %q", p)
	}
	if p == "." {
		return nil
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("bad path %q", p)
		}
	}
	return nil
}

// errNoProc: the restore needs /proc to reach open handles by path.
var errNoProc = errors.New("restore needs /proc mounted (it sets metadata through /proc/self/fd)")

func checkProc() error {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/fd", &st); err != nil {
		return errNoProc
	}
	return nil
}
