// Package fusefs presents the sets of a remote as a read-only FUSE file
// system: <source>/<set time>/... (and a "latest" symlink per source),
// with a level of hosts above when it covers every host. Each set's tree
// is read through archive.SetFS when it is first entered; files show their
// true type, mode, owner, times, link count, xattrs and device numbers,
// and sparse files answer SEEK_DATA/SEEK_HOLE.
package fusefs

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
)

// Source is one host's source on the remote.
type Source struct {
	Host, Name string
	Repo       *archive.Repository
}

// Options say what to mount.
type Options struct {
	Sources []Source
	// AllHosts puts a directory per host above the sources.
	AllHosts bool
	// Cache holds the opened sealed volumes; may be nil when no set is sealed.
	Cache *archive.VolumeCache
	// Log, if set, is told about failures the kernel only sees as EIO.
	Log func(msg string)
	// Debug logs every FUSE request.
	Debug bool
}

// SetDirName is the directory name of a set: its start time in UTC.
func SetDirName(id string) string {
	_, t, ok := archive.ParseSetID(id)
	if !ok {
		return id
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// Mount mounts the sets at dir and returns the server; Unmount (or
// `fusermount -u dir`) ends it, after which Wait returns. ctx bounds every
// read of the remote.
func Mount(ctx context.Context, dir string, opt Options) (*fuse.Server, error) {
	m := &mounted{ctx: ctx, opt: opt}
	var root fs.InodeEmbedder
	if opt.AllHosts {
		hosts := map[string][]Source{}
		for _, s := range opt.Sources {
			hosts[s.Host] = append(hosts[s.Host], s)
		}
		root = &staticDir{build: func(ctx context.Context, n *fs.Inode) {
			for h, srcs := range hosts {
				d := &staticDir{build: m.sourcesBuilder(srcs)}
				n.AddChild(h, n.NewPersistentInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR}), false)
			}
		}}
	} else {
		root = &staticDir{build: m.sourcesBuilder(opt.Sources)}
	}
	timeout := time.Minute
	server, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:     "backtory",
			Name:       "backtory",
			AllowOther: os.Geteuid() == 0,
			Options:    []string{"ro", "default_permissions"},
			Debug:      opt.Debug,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return server, nil
}

// mounted is what every node of one mount shares.
type mounted struct {
	ctx    context.Context
	opt    Options
	blocks sync.Map // host, source, set id and path of a sparse file -> its allocated 512-byte blocks
}

// sparseBlocks returns the 512-byte blocks a restore of sparse file e
// allocates (its 4 KiB blocks that are not all zeros), reading it once.
func (m *mounted) sparseBlocks(s *archive.SetFS, e *archive.Entry) uint64 {
	sm := s.Manifest()
	key := sm.Host + "\x00" + sm.Source + "\x00" + sm.ID + "\x00" + string(e.Path)
	if v, ok := m.blocks.Load(key); ok {
		return v.(uint64)
	}
	f, err := s.Open(string(e.Path))
	if err != nil {
		return uint64(e.Size+511) / 512
	}
	defer f.Close()
	var n uint64
	buf := make([]byte, 1<<20)
	for off := int64(0); off < e.Size; off += int64(len(buf)) {
		k, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			m.log("read %s of %s: %v", e.Path, s.Manifest().ID, err)
			return uint64(e.Size+511) / 512
		}
		for b := 0; b < k; b += 4096 {
			if !isZero(buf[b:min(b+4096, k)]) {
				n += 8
			}
		}
	}
	m.blocks.Store(key, n)
	return n
}

func (m *mounted) log(format string, a ...any) {
	if m.opt.Log != nil {
		m.opt.Log(fmt.Sprintf(format, a...))
	}
}

func (m *mounted) sourcesBuilder(srcs []Source) func(context.Context, *fs.Inode) {
	return func(ctx context.Context, n *fs.Inode) {
		for _, s := range srcs {
			n.AddChild(s.Name, n.NewPersistentInode(ctx, &sourceDir{m: m, src: s}, fs.StableAttr{Mode: syscall.S_IFDIR}), false)
		}
	}
}

// staticDir is a directory whose children are made once, when mounted.
type staticDir struct {
	fs.Inode
	build func(context.Context, *fs.Inode)
}

var _ fs.NodeOnAdder = (*staticDir)(nil)
var _ fs.NodeGetattrer = (*staticDir)(nil)

func (d *staticDir) OnAdd(ctx context.Context) { d.build(ctx, &d.Inode) }

func (d *staticDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	return 0
}

// sourceDir lists a source's sets, by time, and "latest".
type sourceDir struct {
	fs.Inode
	m   *mounted
	src Source

	mu   sync.Mutex
	sets map[string]*archive.SetFS // opened sets, by id
}

var _ fs.NodeLookuper = (*sourceDir)(nil)
var _ fs.NodeReaddirer = (*sourceDir)(nil)
var _ fs.NodeGetattrer = (*sourceDir)(nil)

func (d *sourceDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	return 0
}

// names returns the set directory names, oldest first, and their ids.
func (d *sourceDir) names(ctx context.Context) ([]string, map[string]string, syscall.Errno) {
	ids, err := d.src.Repo.SetIDs(ctx)
	if err != nil {
		d.m.log("list the sets of %s/%s: %v", d.src.Host, d.src.Name, err)
		return nil, nil, syscall.EIO
	}
	byName := make(map[string]string, len(ids))
	var names []string
	for _, id := range ids {
		n := SetDirName(id)
		if _, dup := byName[n]; dup {
			n = id // a full and a differential of the same second
		}
		byName[n] = id
		names = append(names, n)
	}
	return names, byName, 0
}

func (d *sourceDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	names, _, errno := d.names(ctx)
	if errno != 0 {
		return nil, errno
	}
	list := make([]fuse.DirEntry, 0, len(names)+1)
	for _, n := range names {
		list = append(list, fuse.DirEntry{Name: n, Mode: syscall.S_IFDIR})
	}
	if len(names) > 0 {
		list = append(list, fuse.DirEntry{Name: "latest", Mode: syscall.S_IFLNK})
	}
	return fs.NewListDirStream(list), 0
}

func (d *sourceDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	names, byName, errno := d.names(ctx)
	if errno != 0 {
		return nil, errno
	}
	if name == "latest" && len(names) > 0 {
		l := &fs.MemSymlink{Data: []byte(names[len(names)-1])}
		out.Mode = syscall.S_IFLNK | 0o777
		out.Size = uint64(len(l.Data))
		return d.NewInode(ctx, l, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	}
	id, ok := byName[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	s, err := d.open(id)
	if err != nil {
		d.m.log("open set %s of %s/%s: %v", id, d.src.Host, d.src.Name, err)
		return nil, syscall.EIO
	}
	n := &node{m: d.m, s: s, p: "."}
	n.fill(&out.Attr)
	return d.NewInode(ctx, n, n.stable()), 0
}

// open returns set id's tree, reading its table the first time.
func (d *sourceDir) open(id string) (*archive.SetFS, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.sets[id]; ok {
		return s, nil
	}
	s, err := d.src.Repo.OpenSet(d.m.ctx, id, d.m.opt.Cache)
	if err != nil {
		return nil, err
	}
	if d.sets == nil {
		d.sets = map[string]*archive.SetFS{}
	}
	d.sets[id] = s
	return s, nil
}

// node is one path of a set.
type node struct {
	fs.Inode
	m *mounted
	s *archive.SetFS
	p string
}

var (
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeReaddirer   = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeReadlinker  = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeReader      = (*node)(nil)
	_ fs.NodeGetxattrer  = (*node)(nil)
	_ fs.NodeListxattrer = (*node)(nil)
	_ fs.NodeLseeker     = (*node)(nil)
	_ fs.NodeReleaser    = (*node)(nil)
)

func (n *node) child(name string) string {
	if n.p == "." {
		return name
	}
	return n.p + "/" + name
}

// entry returns the node's entry, a hardlink resolved to its file.
func (n *node) entry() *archive.Entry {
	e, _ := n.s.Lookup(n.p)
	return n.s.Resolve(e)
}

func typeBits(t string) uint32 {
	switch t {
	case archive.TypeDir:
		return syscall.S_IFDIR
	case archive.TypeSymlink:
		return syscall.S_IFLNK
	case archive.TypeFIFO:
		return syscall.S_IFIFO
	case archive.TypeChar:
		return syscall.S_IFCHR
	case archive.TypeBlock:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// stable is the node's inode: the names of a hardlink group share one, and
// no two sets (of any host and source) share any.
func (n *node) stable() fs.StableAttr {
	e := n.entry()
	h := fnv.New64a()
	m := n.s.Manifest()
	io.WriteString(h, m.Host+"\x00"+m.Source+"\x00"+m.ID+"\x00"+string(e.Path))
	return fs.StableAttr{Mode: typeBits(e.Type), Ino: h.Sum64() | 1<<63}
}

func (n *node) fill(a *fuse.Attr) {
	e := n.entry()
	a.Mode = typeBits(e.Type) | e.Mode
	a.Uid, a.Gid = uint32(e.UID), uint32(e.GID)
	a.Nlink = uint32(n.s.Links(n.p))
	t := time.Unix(0, e.MTime)
	a.SetTimes(&t, &t, &t)
	switch e.Type {
	case archive.TypeFile:
		a.Size = uint64(e.Size)
	case archive.TypeSymlink:
		a.Size = uint64(len(e.Target))
	case archive.TypeChar, archive.TypeBlock:
		a.Rdev = uint32(unix.Mkdev(e.Major, e.Minor))
	}
	a.Blocks = (a.Size + 511) / 512
	if e.Type == archive.TypeFile && e.Sparse {
		a.Blocks = n.m.sparseBlocks(n.s, e)
	}
	a.Blksize = 4096
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	return 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if _, ok := n.s.Lookup(p); !ok {
		return nil, syscall.ENOENT
	}
	c := &node{m: n.m, s: n.s, p: p}
	c.fill(&out.Attr)
	return n.NewInode(ctx, c, c.stable()), 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	names, err := n.s.ReadDir(n.p)
	if err != nil {
		return nil, syscall.ENOTDIR
	}
	list := make([]fuse.DirEntry, len(names))
	for i, name := range names {
		e, _ := n.s.Lookup(n.child(name))
		list[i] = fuse.DirEntry{Name: name, Mode: typeBits(n.s.Resolve(e).Type)}
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	e := n.entry()
	if e.Type != archive.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(e.Target), 0
}

// handle is an open file.
type handle struct{ f *archive.File }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC) != 0 {
		return nil, 0, syscall.EROFS
	}
	f, err := n.s.Open(n.p)
	if err != nil {
		n.m.log("open %s of %s: %v", n.p, n.s.Manifest().ID, err)
		return nil, 0, syscall.EIO
	}
	return &handle{f: f}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	k, err := h.f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		n.m.log("read %s of %s at %d: %v", n.p, n.s.Manifest().ID, off, err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *node) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		h.f.Close()
	}
	return 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE: a file that was not sparse is
// all data; a sparse one is read in 4 KiB blocks from off, all-zero
// blocks being holes (as our restore writes them).
func (n *node) Lseek(ctx context.Context, fh fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return 0, syscall.EBADF
	}
	e := h.f.Entry()
	size := uint64(e.Size)
	if off >= size {
		return 0, syscall.ENXIO
	}
	if !e.Sparse {
		if whence == unix.SEEK_DATA {
			return off, 0
		}
		return size, 0
	}
	const block = 4096
	buf := make([]byte, block)
	pos := off - off%block
	for pos < size {
		k, err := h.f.ReadAt(buf, int64(pos))
		if err != nil && err != io.EOF {
			n.m.log("seek in %s of %s: %v", n.p, n.s.Manifest().ID, err)
			return 0, syscall.EIO
		}
		zero := isZero(buf[:k])
		if (whence == unix.SEEK_DATA && !zero) || (whence == unix.SEEK_HOLE && zero) {
			return max(pos, off), 0
		}
		pos += block
	}
	if whence == unix.SEEK_HOLE {
		return size, 0
	}
	return 0, syscall.ENXIO
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, ok := n.entry().Xattrs[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	xs := n.entry().Xattrs
	names := make([]string, 0, len(xs))
	for k := range xs {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, k := range names {
		b = append(append(b, k...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}
