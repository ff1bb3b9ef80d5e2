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
	"sync/atomic"
	"unsafe"

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
// fstat of the open handle, checked against the lstat taken while listing;
// a regular file is opened only when it is read (lazyFile), and described
// by that lstat until then.
type walker struct {
	root        string
	exclude     *Excluder
	crossMounts bool
	warn        func(path, msg string)
	// after, if set, resumes an interrupted walk: the root and every path
	// up to after (in ComparePaths order) were archived, so they are not
	// handed on; the multiply-linked files among them are noted in links.
	after Name
	// full, if set, makes the walk look only at the paths of a change list
	// and their directories, and take the rest from the full's table.
	full *fromFull

	rootDev uint64
	links   map[devIno]string // first path of each multiply-linked file
	users   map[int]string
	groups  map[int]string

	eager    bool          // open every regular file when listed (no listxattrat)
	xattrBuf []byte        // readXattrs's list buffer
	slots    chan struct{} // a token per running prefetch job
}

type devIno struct{ dev, ino uint64 }

// visitFunc is called for each entry; f is the file of a TypeFile entry,
// listed but not opened (the walker closes it if fn opened it), else nil.
type visitFunc func(e *Entry, f *lazyFile) error

func (w *walker) walk(fn visitFunc) error { return w.walkWith(false, fn) }

// walkWith walks, opening every regular file when it is listed if eager
// is set (or the kernel has no listxattrat).
func (w *walker) walkWith(eager bool, fn visitFunc) error {
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
	w.eager = eager
	if _, err := listxattrat(fd, ".", nil); err == unix.ENOSYS || err == unix.EPERM { // EPERM: a seccomp filter that does not know it
		w.eager = true
	}
	w.links = map[devIno]string{}
	w.users = map[int]string{}
	w.groups = map[int]string{}
	if w.after != "" {
		return w.dir(".", fd, fn)
	}
	e, err := w.entry(".", handle{fd: fd, st: st})
	if err != nil {
		return err
	}
	if err := fn(e, nil); err != nil {
		return err
	}
	return w.dir(".", fd, fn)
}

// skipped says whether rel was archived before the walk resumed, and if it
// is a directory whether some of what it holds was not (rel is after, or
// lies above it).
func (w *walker) skipped(rel string) (done, partly bool) {
	if w.after == "" {
		return false, false
	}
	a := string(w.after)
	if ComparePaths(rel, a) > 0 {
		return false, false
	}
	return true, rel == a || (len(a) > len(rel) && a[:len(rel)] == rel && a[len(rel)] == '/')
}

// skim notes the multiply-linked files of an archived subtree in w.links,
// as the interrupted walk did, reading nothing but directories.
func (w *walker) skim(rel string, dfd int, name string, lst *unix.Stat_t, partly bool, fn visitFunc) error {
	switch lst.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if k := (devIno{lst.Dev, lst.Ino}); lst.Nlink > 1 && w.links[k] == "" {
			w.links[k] = rel
		}
		return nil
	case unix.S_IFDIR:
	default:
		return nil
	}
	if !w.crossMounts && lst.Dev != w.rootDev {
		return nil
	}
	h, err := openEntry(dfd, name, lst)
	if err != nil {
		return nil // warned when it was archived
	}
	defer unix.Close(h.fd)
	if partly {
		return w.dir(rel, h.fd, fn) // what it holds after w.after is walked
	}
	names, err := readNames(h.fd)
	if err != nil {
		return nil
	}
	sort.Strings(names)
	for _, n := range names {
		crel := rel + "/" + n
		if rel == "." {
			crel = n
		}
		if w.exclude.Match(crel) {
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(h.fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		if err := w.skim(crel, h.fd, n, &st, false, fn); err != nil {
			return err
		}
	}
	return nil
}

// handle is an entry opened by the walk: a directory or regular file open
// for reading, anything else an O_PATH handle; st is fstat of fd. A
// regular file not opened has fd -1 and its lstat as st.
type handle struct {
	fd     int
	st     unix.Stat_t
	parent int    // the parent directory's handle (-1 for the root)
	name   string // the entry's name in parent
}

func (w *walker) dir(rel string, dfd int, fn visitFunc) error {
	return w.visitListing(rel, dfd, w.list(rel, dfd), fn)
}

// listing is a directory's entries, sorted, without the excluded ones and
// the sockets, each with its lstat (st nil: not taken yet, in a directory
// too large to hold them all).
type listing struct {
	items []listed
	err   error // the directory could not be read
}

type listed struct {
	name string
	st   *unix.Stat_t
	err  error // lstat failed
}

// maxStatted bounds the entries of a directory listed with their lstat;
// a larger directory is listed by names and each entry is lstat'ed when
// it is visited, so memory stays that of its names.
const maxStatted = 8192

// list lists directory dfd (at rel). It only reads, so it may run on a
// worker of the pool while the walk visits earlier entries.
func (w *walker) list(rel string, dfd int) listing {
	names, err := readNames(dfd)
	if err != nil {
		return listing{err: err}
	}
	sort.Strings(names)
	items := make([]listed, 0, len(names))
	var sts []unix.Stat_t
	if len(names) <= maxStatted {
		sts = make([]unix.Stat_t, len(names))
	}
	for i, name := range names {
		if w.exclude.Match(childPath(rel, name)) {
			continue
		}
		it := listed{name: name}
		if sts != nil {
			it.st = &sts[i]
			if it.err = unix.Fstatat(dfd, name, it.st, unix.AT_SYMLINK_NOFOLLOW); it.err == nil && it.st.Mode&unix.S_IFMT == unix.S_IFSOCK {
				continue // sockets cannot be archived and are recreated by their servers
			}
		}
		items = append(items, it)
	}
	return listing{items: items}
}

// walks says whether the walk looks at rel: always, but for a change
// list's walk, which looks only at its paths and their directories.
func (w *walker) walks(rel string) bool { return w.full == nil || w.full.walks(rel) }

func childPath(rel, name string) string {
	if rel == "." {
		return name
	}
	return rel + "/" + name
}

// visitListing visits the entries of directory dfd (at rel) in order.
// The directories among them are opened and listed ahead, on the walk's
// pool, a few at a time; each is visited from its prefetched listing.
func (w *walker) visitListing(rel string, dfd int, l listing, fn visitFunc) error {
	if l.err != nil {
		w.warn(rel, fmt.Sprintf("cannot read directory: %v", l.err))
		return nil
	}
	if w.full != nil {
		w.full.listed[rel] = true
	}
	ahead := w.prefetcher(rel, dfd, l.items)
	defer ahead.drain()
	for i := range l.items {
		it := &l.items[i]
		crel := childPath(rel, it.name)
		if it.st == nil {
			var st unix.Stat_t
			it.st, it.err = &st, unix.Fstatat(dfd, it.name, &st, unix.AT_SYMLINK_NOFOLLOW)
			if it.err == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
				continue
			}
		}
		if !w.walks(crel) {
			// Not in the change list: the full's entries, checked
			// against this lstat (the prefetch never opened it).
			if it.err != nil {
				return errUntrusted{fmt.Sprintf("%s: %v", crel, it.err)}
			}
			if err := w.full.copy(w, crel, it.st, fn); err != nil {
				return err
			}
			continue
		}
		if it.err != nil {
			if it.err == unix.ENOENT {
				w.warn(crel, "vanished before it was read")
			} else {
				w.warn(crel, fmt.Sprintf("cannot stat: %v", it.err))
			}
			continue
		}
		if done, partly := w.skipped(crel); done {
			// Archived before an interrupted walk: its hardlinks noted,
			// its directory's prefetch (if any) released.
			if it.st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if j := ahead.take(i); j != nil {
					<-j.done
					if j.err == nil {
						unix.Close(j.h.fd)
					}
				}
			}
			if err := w.skim(crel, dfd, it.name, it.st, partly, fn); err != nil {
				return err
			}
			continue
		}
		switch it.st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			// Described from the listing; opened only if it must be read
			// (most files of a differential are not).
			if err := w.visitFile(crel, dfd, it.name, it.st, fn); err != nil {
				return err
			}
			continue
		case unix.S_IFDIR:
			if err := w.visitDir(crel, ahead.take(i), it.st, fn); err != nil {
				return err
			}
			continue
		}
		h, err := openEntry(dfd, it.name, it.st)
		if err != nil {
			w.warn(crel, err.Error())
			continue
		}
		if err := w.visit(crel, h, it.st, fn); err != nil {
			return err
		}
	}
	return nil
}

// visitDir visits a directory opened (and listed, unless it is on another
// filesystem) by a prefetch job, then closes it.
func (w *walker) visitDir(rel string, j *dirJob, lst *unix.Stat_t, fn visitFunc) error {
	<-j.done
	if j.err != nil {
		w.warn(rel, j.err.Error())
		return nil
	}
	defer unix.Close(j.h.fd)
	e, err := w.entry(rel, j.h)
	if err != nil {
		w.warn(rel, err.Error())
		return nil
	}
	if j.h.st.Dev != lst.Dev || j.h.st.Ino != lst.Ino {
		e.Warning = "changed while read (another file took its name): archived as opened"
		w.warn(rel, e.Warning)
	}
	if err := fn(e, nil); err != nil {
		return err
	}
	if !j.descend {
		return nil
	}
	return w.visitListing(rel, j.h.fd, j.list, fn)
}

// dirJob opens a directory of a listing and lists it.
type dirJob struct {
	h       handle
	descend bool // on the source's filesystem (or crossMounts): list is set
	list    listing
	err     error // the directory could not be opened: not archived
	done    chan struct{}
}

func (w *walker) runDirJob(j *dirJob, rel string, dfd int, name string, lst *unix.Stat_t) {
	defer close(j.done)
	j.h, j.err = openEntry(dfd, name, lst)
	if j.err != nil {
		return
	}
	j.descend = w.crossMounts || j.h.st.Dev == w.rootDev
	if j.descend {
		j.list = w.list(rel, j.h.fd)
	}
}

// walkAhead is how many directories the walk holds opened and listed (or
// being listed, each on a goroutine of its own) ahead of the one it
// visits: it bounds the memory, the open files and the goroutines.
const walkAhead = 4

// prefetch opens and lists the subdirectories of one listing ahead of the
// walk, in their order, at most walkAhead at once for the whole walk (a
// slot is taken when a job starts and given back when the walk takes
// its result): the next siblings first, a subdirectory's own children
// when slots are free.
type prefetch struct {
	w     *walker
	rel   string
	dfd   int
	items []listed
	jobs  map[int]*dirJob // started, not yet taken
	next  int             // the next item to consider starting
}

func (w *walker) prefetcher(rel string, dfd int, items []listed) *prefetch {
	if w.slots == nil {
		w.slots = make(chan struct{}, walkAhead)
	}
	p := &prefetch{w: w, rel: rel, dfd: dfd, items: items, jobs: map[int]*dirJob{}}
	p.fill()
	return p
}

// fill starts jobs for the next subdirectories while slots are free.
func (p *prefetch) fill() {
	for ; p.next < len(p.items); p.next++ {
		it := &p.items[p.next]
		if it.st == nil || it.err != nil || it.st.Mode&unix.S_IFMT != unix.S_IFDIR ||
			p.w.full != nil && !p.w.full.walks(childPath(p.rel, it.name)) {
			continue
		}
		select {
		case p.w.slots <- struct{}{}:
		default:
			return
		}
		j := &dirJob{done: make(chan struct{})}
		p.jobs[p.next] = j
		crel := childPath(p.rel, it.name)
		go p.w.runDirJob(j, crel, p.dfd, it.name, it.st)
	}
}

// take returns the job of item i: the prefetched one, or one run now.
func (p *prefetch) take(i int) *dirJob {
	j, ok := p.jobs[i]
	if ok {
		delete(p.jobs, i)
		<-p.w.slots
	} else {
		j = &dirJob{done: make(chan struct{})}
		it := &p.items[i]
		p.w.runDirJob(j, childPath(p.rel, it.name), p.dfd, it.name, it.st)
		if p.next <= i {
			p.next = i + 1
		}
	}
	p.fill()
	return j
}

// drain waits for the jobs not taken (the walk stopped early) and closes
// their directories: dfd must outlive them.
func (p *prefetch) drain() {
	for _, j := range p.jobs {
		<-j.done
		if j.err == nil {
			unix.Close(j.h.fd)
		}
		<-p.w.slots
	}
	p.jobs = nil
}

// visitFile describes and hands on a regular file from its lstat, not
// opened; it closes the file if fn opened it.
func (w *walker) visitFile(rel string, dfd int, name string, lst *unix.Stat_t, fn visitFunc) error {
	lf := &lazyFile{w: w, rel: rel, dfd: dfd, name: name, lst: lst}
	defer lf.close()
	h := handle{fd: -1, st: *lst, parent: dfd, name: name}
	if w.eager {
		// Without listxattrat, xattrs through /proc cost more than the
		// open: open first, as the kernel has no cheaper way.
		var err error
		if h, err = openEntry(dfd, name, lst); err != nil {
			w.warn(rel, err.Error())
			return nil
		}
		lf.f = os.NewFile(uintptr(h.fd), rel)
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
	return fn(e, lf)
}

// lazyFile is a regular file the walk listed but has not opened.
type lazyFile struct {
	w    *walker
	rel  string
	dfd  int // its directory's handle, open while the file is visited
	name string
	lst  *unix.Stat_t
	f    *os.File
}

// Open opens the file (once; later calls return the same file) relative
// to its directory's handle, without following a symlink, for reading.
// Its error says why the file cannot be archived (it vanished or is no
// longer a regular file): the caller warns and skips it. If another file
// took its name since it was listed, e is described again from the open
// file, with a warning.
func (l *lazyFile) Open(e *Entry) (*os.File, error) {
	if l.f != nil {
		return l.f, nil
	}
	h, err := openEntry(l.dfd, l.name, l.lst)
	if err != nil {
		return nil, err
	}
	l.f = os.NewFile(uintptr(h.fd), l.rel)
	if h.st.Dev != l.lst.Dev || h.st.Ino != l.lst.Ino {
		ne, err := l.w.entry(l.rel, h)
		if err != nil {
			l.close()
			return nil, err
		}
		ne.Change = e.Change
		*e = *ne
		e.Warning = "changed while read (another file took its name): archived as opened"
		l.w.warn(l.rel, e.Warning)
	}
	return l.f, nil
}

func (l *lazyFile) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// visit describes and hands on one opened entry that is not a regular
// file, then walks into it if it is a directory; it closes the handle.
func (w *walker) visit(rel string, h handle, lst *unix.Stat_t, fn visitFunc) error {
	defer unix.Close(h.fd)
	e, err := w.entry(rel, h)
	if err != nil {
		w.warn(rel, err.Error())
		return nil
	}
	if h.st.Dev != lst.Dev || h.st.Ino != lst.Ino {
		e.Warning = "changed while read (another file took its name): archived as opened"
		w.warn(rel, e.Warning)
	}
	if err := fn(e, nil); err != nil {
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
		if h.fd < 0 {
			xa = xattrSource{fd: -1, dfd: h.parent, name: h.name}
		}
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
		x, err := readXattrs(xa, &w.xattrBuf)
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

// xattrSource is where readXattrs reads: an open file (fd >= 0), a name
// in an open directory (name set; not followed), else a path, followed at
// its end or not.
type xattrSource struct {
	fd     int
	dfd    int
	name   string
	path   string
	follow bool
}

// noListxattrat is set once listxattrat(2) (Linux 6.13) is found missing.
var noListxattrat atomic.Bool

func (x xattrSource) list(buf []byte) (int, error) {
	switch {
	case x.fd >= 0:
		return unix.Flistxattr(x.fd, buf)
	case x.name != "":
		if !noListxattrat.Load() {
			n, err := listxattrat(x.dfd, x.name, buf)
			if err != unix.ENOSYS {
				return n, err
			}
			noListxattrat.Store(true)
		}
		return unix.Llistxattr(procPath(x.dfd)+"/"+x.name, buf)
	case x.follow:
		return unix.Listxattr(x.path, buf)
	}
	return unix.Llistxattr(x.path, buf)
}

func (x xattrSource) get(name string, buf []byte) (int, error) {
	switch {
	case x.fd >= 0:
		return unix.Fgetxattr(x.fd, name, buf)
	case x.name != "":
		// Rare (most files have no xattrs): through /proc, not followed.
		return unix.Lgetxattr(procPath(x.dfd)+"/"+x.name, name, buf)
	case x.follow:
		return unix.Getxattr(x.path, name, buf)
	}
	return unix.Lgetxattr(x.path, name, buf)
}

// listxattrat lists the xattrs of name in directory dfd, not following a
// symlink: one syscall, without a path through /proc.
func listxattrat(dfd int, name string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	var b unsafe.Pointer
	if len(buf) > 0 {
		b = unsafe.Pointer(&buf[0])
	}
	n, _, e := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dfd), uintptr(unsafe.Pointer(p)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(b), uintptr(len(buf)), 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// readXattrs returns all extended attributes of x, or nil if there are
// none or the filesystem has none. *buf is the list's buffer, kept for
// the next call (most files have no xattrs: nothing is allocated for them).
func readXattrs(x xattrSource, buf *[]byte) (map[string][]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 1024)
	}
	var n int
	var err error
	for {
		n, err = x.list(*buf)
		if err == unix.ERANGE {
			*buf = make([]byte, len(*buf)*4)
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
	for _, name := range splitNul((*buf)[:n]) {
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
