// Package state owns the host's state directory (state_dir): the lock of
// one run at a time, the record of each source's last runs, the newest set
// seen of each source, the spool of objects in transit and the cache of
// fulls' signatures. Every file it writes is written atomically.
//
//	lock                                  lock.go
//	runs/<host>/<source>.json             runs.go
//	seen/<host>/<source>                  seen.go
//	spool/<run>/                          leftovers.go (with what killed runs left)
//	cache/<host>/<source>/<set>.<object>  state.go
//	completion-sets                       completion.go (set ids and times for shell completion)
package state

import (
	"os"
	"path/filepath"
)

// Dir is a state directory.
type Dir struct {
	root string
}

// New returns the state directory at root (state_dir). It touches nothing
// on disk: each method creates what it writes to.
func New(root string) *Dir { return &Dir{root: root} }

// Root returns the directory's path.
func (d *Dir) Root() string { return d.root }

// Path returns where the cache keeps a copy of object of a set, such as a
// full's signatures.
func (d *Dir) Path(host, source, set, object string) string {
	return filepath.Join(d.root, "cache", host, source, set+"."+object)
}

// ResumeDir is where an interrupted full of host/source keeps its
// checkpoint (archive.Resume): resume/<host>/<source>.
func (d *Dir) ResumeDir(host, source string) string {
	return filepath.Join(d.root, "resume", host, source)
}

// RemoveCache drops every cached object of a set (of a deleted full).
func (d *Dir) RemoveCache(host, source, set string) {
	matches, _ := filepath.Glob(d.Path(host, source, set, "*"))
	for _, m := range matches {
		os.Remove(m)
	}
}
