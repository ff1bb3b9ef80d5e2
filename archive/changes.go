package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// Differentials from a change list. When the snapshot provider says which
// paths changed since the full's snapshot (zfs diff), the walk stats only
// those paths and their parent directories, and takes every other entry
// from the full's file table. The differential is the same as the walk's:
// entries taken from the full compare as unchanged in the merge-join, and
// deleted paths are simply not listed by their (walked) directory.

// Scans: how a differential found what changed, in its manifest.
const (
	ScanWalk = "walk"
)

// ChangeList is a provider's answer: the paths (relative to the tree read,
// "/"-separated) that may differ from the full: new, modified, deleted,
// and both names of a rename. A path added as a subtree (a new or renamed
// directory) is walked with everything below it.
type ChangeList struct {
	Scan     string          // how it was made, for the manifest: "zfs diff"
	changed  map[string]bool // the listed paths
	subtrees map[string]bool // the listed paths walked whole
	dirs     map[string]bool // their ancestors, walked to find them
}

// NewChangeList starts an empty change list made by scan.
func NewChangeList(scan string) *ChangeList {
	return &ChangeList{Scan: scan, changed: map[string]bool{}, subtrees: map[string]bool{}, dirs: map[string]bool{}}
}

// Add lists path p, relative to the tree's root, and with subtree what
// lies below it.
func (c *ChangeList) Add(p string, subtree bool) error {
	if p == "." {
		return nil
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("change list: %w", err)
	}
	c.changed[p] = true
	if subtree {
		c.subtrees[p] = true
	}
	for d := parentOf(p); d != "."; d = parentOf(d) {
		if c.dirs[d] {
			break
		}
		c.dirs[d] = true
	}
	return nil
}

// Len is the number of listed paths.
func (c *ChangeList) Len() int { return len(c.changed) }

// walks says whether the walk must look at path p itself.
func (c *ChangeList) walks(p string) bool {
	if c.changed[p] || c.dirs[p] {
		return true
	}
	for q := parentOf(p); q != "."; q = parentOf(q) {
		if c.subtrees[q] {
			return true
		}
	}
	return false
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// covers says whether p or a directory above it is listed.
func (c *ChangeList) covers(p string) bool {
	for ; p != "."; p = parentOf(p) {
		if c.changed[p] {
			return true
		}
	}
	return false
}

// errUntrusted means the change list does not agree with the tree; the
// differential is made again with the walk.
type errUntrusted struct{ why string }

func (e errUntrusted) Error() string { return "the change list cannot be trusted: " + e.why }

func isUntrusted(err error) bool {
	var u errUntrusted
	return errors.As(err, &u)
}

// fromFull feeds the walker the full's entries of the paths it does not
// walk, from a stream of the full's table of its own.
type fromFull struct {
	list   *ChangeList
	table  *TableReader
	next   *Entry          // the next entry of the table, nil at its end
	listed map[string]bool // directories the walk listed
}

func newFromFull(list *ChangeList, table *TableReader) (*fromFull, error) {
	f := &fromFull{list: list, table: table, listed: map[string]bool{".": true}}
	return f, f.advance()
}

func (f *fromFull) advance() error {
	e, err := f.table.Next()
	if err == io.EOF {
		f.next = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("file table of the full: %w", err)
	}
	f.next = e
	return nil
}

func (f *fromFull) walks(p string) bool { return f.list.walks(p) }

// seek moves the table to p, checking that what it passes was walked or
// listed as changed.
func (f *fromFull) seek(p string) error {
	for f.next != nil && ComparePaths(string(f.next.Path), p) < 0 {
		q := string(f.next.Path)
		if !f.listed[parentOf(q)] && !f.list.covers(q) && !f.walks(q) {
			return errUntrusted{fmt.Sprintf("%s is gone, but not listed", q)}
		}
		if err := f.advance(); err != nil {
			return err
		}
	}
	return nil
}

// copy hands on the full's entries of p and everything below it, as the
// walk would describe them unchanged.
// lst, the lstat of p taken while listing its directory, must have the
// full's inode and ctime: a cheap check of the change list where the walk
// lists a directory anyway.
func (f *fromFull) copy(w *walker, p string, lst *unix.Stat_t, fn visitFunc) error {
	if err := f.seek(p); err != nil {
		return err
	}
	if f.next == nil || string(f.next.Path) != p {
		return errUntrusted{fmt.Sprintf("%s is not in the full, but not listed", p)}
	}
	if f.next.Inode != lst.Ino || f.next.CTime != lst.Ctim.Nano() {
		return errUntrusted{fmt.Sprintf("%s changed, but is not listed", p)}
	}
	for f.next != nil && (string(f.next.Path) == p || strings.HasPrefix(string(f.next.Path), p+"/")) {
		e := *f.next
		if e.Type == TypeHardlink && f.list.covers(string(e.Target)) {
			return errUntrusted{fmt.Sprintf("%s is another name of %s, which changed", e.Path, e.Target)}
		}
		// Only what the walk would have found.
		e.Hash, e.Volume, e.Change, e.BaseVolume, e.BasePath, e.Warning = "", 0, "", 0, "", ""
		e.Frame, e.Skip, e.Frames = 0, 0, nil
		e.User, e.Group = w.userName(e.UID), w.groupName(e.GID)
		if err := fn(&e, nil); err != nil {
			return err
		}
		if err := f.advance(); err != nil {
			return err
		}
	}
	return nil
}

// excludeHash identifies what a set's walk leaves out, so that a change
// list is used only against a full made with the same rules.
func excludeHash(exclude []string, crossMounts bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "cross_mounts=%v\n", crossMounts)
	for _, x := range exclude {
		fmt.Fprintf(h, "%q\n", x)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// walkedFile checks a file the walk visits when the rest of the tree comes
// from the full: one with several names may have names the walk skips.
func walkedFile(e *Entry) error {
	if e.Type == TypeFile && e.nlink > 1 {
		return errUntrusted{fmt.Sprintf("%s, which changed, has several names", e.Path)}
	}
	return nil
}
