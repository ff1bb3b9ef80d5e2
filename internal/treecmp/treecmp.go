// Package treecmp compares two directory trees entry by entry — type,
// content, mode, owner, mtime, xattrs (with ACLs), symlink targets,
// device numbers, hardlink structure and sparseness — for tests of
// backup and restore.
package treecmp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Node is what treecmp knows of one path.
type Node struct {
	Path   string
	Type   uint32 // S_IFMT bits
	Mode   uint32 // 07777 bits
	UID    uint32
	GID    uint32
	MTime  int64
	Size   int64
	Blocks int64
	Hash   string
	Target string
	Rdev   uint64
	Xattrs string
	Link   string // the first path of its hardlink group, or ""
}

// Options relax the comparison.
type Options struct {
	IgnoreRootMeta bool // the roots' own mode/owner/mtime
	IgnoreDirMTime bool
	SkipPrefixes   []string // paths (relative) not compared
}

// Scan describes every path under root, sorted.
func Scan(root string) ([]Node, error) {
	var out []Node
	first := map[[2]uint64]string{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := Node{Path: rel, Type: st.Mode & unix.S_IFMT, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
			MTime: st.Mtim.Nano(), Blocks: st.Blocks}
		switch n.Type {
		case unix.S_IFREG:
			n.Size = st.Size
			k := [2]uint64{st.Dev, st.Ino}
			if st.Nlink > 1 {
				if f, ok := first[k]; ok {
					n.Link = f
				} else {
					first[k] = rel
				}
			}
			h, err := hashFile(p)
			if err != nil {
				return err
			}
			n.Hash = h
		case unix.S_IFLNK:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			n.Target = t
		case unix.S_IFCHR, unix.S_IFBLK:
			n.Rdev = st.Rdev
		}
		n.Xattrs = xattrs(p)
		out = append(out, n)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// Diff returns a line per difference between the trees a and b.
func Diff(a, b string, opt Options) ([]string, error) {
	na, err := Scan(a)
	if err != nil {
		return nil, err
	}
	nb, err := Scan(b)
	if err != nil {
		return nil, err
	}
	return Compare(na, nb, opt), nil
}

// Compare returns a line per difference between two scans.
func Compare(na, nb []Node, opt Options) []string {
	skip := func(p string) bool {
		for _, s := range opt.SkipPrefixes {
			if p == s || strings.HasPrefix(p, s+"/") {
				return true
			}
		}
		return false
	}
	ma := map[string]Node{}
	for _, n := range na {
		if !skip(n.Path) {
			ma[n.Path] = n
		}
	}
	var diffs []string
	seen := map[string]bool{}
	for _, y := range nb {
		if skip(y.Path) {
			continue
		}
		seen[y.Path] = true
		x, ok := ma[y.Path]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in the second tree", y.Path))
			continue
		}
		diffs = append(diffs, compareNode(x, y, opt)...)
	}
	for _, x := range na {
		if !skip(x.Path) && !seen[x.Path] {
			diffs = append(diffs, fmt.Sprintf("%s: only in the first tree", x.Path))
		}
	}
	return diffs
}

func compareNode(x, y Node, opt Options) []string {
	var d []string
	f := func(what string, a, b any) {
		if a != b {
			d = append(d, fmt.Sprintf("%s: %s %v != %v", x.Path, what, a, b))
		}
	}
	f("type", x.Type, y.Type)
	if x.Type != y.Type {
		return d
	}
	root := x.Path == "."
	if !(root && opt.IgnoreRootMeta) {
		if x.Type != unix.S_IFLNK {
			f("mode", fmt.Sprintf("%o", x.Mode), fmt.Sprintf("%o", y.Mode))
		}
		f("uid", x.UID, y.UID)
		f("gid", x.GID, y.GID)
		if !(x.Type == unix.S_IFDIR && opt.IgnoreDirMTime) {
			f("mtime", x.MTime, y.MTime)
		}
	}
	f("size", x.Size, y.Size)
	f("content", x.Hash, y.Hash)
	f("symlink target", x.Target, y.Target)
	f("device", x.Rdev, y.Rdev)
	f("xattrs", x.Xattrs, y.Xattrs)
	f("hardlink group", x.Link, y.Link)
	if x.Type == unix.S_IFREG && x.Blocks*512 < x.Size && y.Blocks > x.Blocks+8 {
		d = append(d, fmt.Sprintf("%s: sparse file restored dense (%d blocks, was %d)", x.Path, y.Blocks, x.Blocks))
	}
	return d
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func xattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s=%x;", name, v[:m])
	}
	return b.String()
}
