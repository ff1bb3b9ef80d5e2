package archive

import (
	"context"
	"io"
)

// PlanStats is what a backup would write, as far as metadata tells.
type PlanStats struct {
	Entries      int   // paths in the tree
	Files        int   // regular files
	Bytes        int64 // their content
	New          int   // paths not in the full
	Changed      int   // paths whose content or metadata differ from the full
	ChangedBytes int64 // content of new and changed files: an upper bound of what is read
	Deleted      int   // paths of the full that are gone
}

// A PlanChange is how a path of the tree differs from the full, as Plan
// tells it from the metadata alone.
type PlanChange string

// The kinds of PlanChange.
const (
	PlanNew      PlanChange = "new"      // not in the full
	PlanDeleted  PlanChange = "deleted"  // in the full, gone from the tree
	PlanType     PlanChange = "type"     // another kind of file at that path
	PlanContent  PlanChange = "content"  // a file's size, mtime or inode moved: it is read again
	PlanTarget   PlanChange = "target"   // a link's target or a device's numbers
	PlanMetadata PlanChange = "metadata" // mode, owner, xattrs or ctime only
)

// Plan walks opt.Root like Backup, without reading file content or
// writing anything, and counts what a full (or, with opt.Base, a
// differential) would hold. Files whose ctime alone moved count as
// changed. changed, when not nil, is told each path of a differential
// that differs from the full, in the order of the walk.
func Plan(ctx context.Context, opt BackupOptions, changed func(path string, c PlanChange)) (PlanStats, error) {
	if changed == nil {
		changed = func(string, PlanChange) {}
	}
	var st PlanStats
	x, err := NewExcluder(opt.Exclude)
	if err != nil {
		return st, err
	}
	var next *Entry
	advance := func() error {
		if opt.Base == nil {
			return nil
		}
		e, err := opt.Base.files.Next()
		if err == io.EOF {
			next = nil
			return nil
		}
		next = e
		return err
	}
	if err := advance(); err != nil {
		return st, err
	}
	w := &walker{root: opt.Root, exclude: x, crossMounts: opt.CrossMounts, warn: func(string, string) {}}
	err = w.walk(func(e *Entry, _ *lazyFile) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		st.Entries++
		if e.Type == TypeFile {
			st.Files++
			st.Bytes += e.Size
		}
		if opt.Base == nil {
			return nil
		}
		for next != nil && ComparePaths(string(next.Path), string(e.Path)) < 0 {
			st.Deleted++
			changed(string(next.Path), PlanDeleted)
			if err := advance(); err != nil {
				return err
			}
		}
		if next == nil || next.Path != e.Path {
			st.New++
			changed(string(e.Path), PlanNew)
			if e.Type == TypeFile {
				st.ChangedBytes += e.Size
			}
			return nil
		}
		f := next
		if err := advance(); err != nil {
			return err
		}
		same := f.Type == e.Type && sameMeta(e, f) && f.Target == e.Target && f.Major == e.Major && f.Minor == e.Minor
		if e.Type == TypeFile {
			same = same && f.Size == e.Size && f.CTime == e.CTime && f.Inode == e.Inode
		}
		if !same {
			st.Changed++
			changed(string(e.Path), changeOf(f, e))
			if e.Type == TypeFile {
				st.ChangedBytes += e.Size
			}
		}
		return nil
	})
	for err == nil && next != nil {
		st.Deleted++
		changed(string(next.Path), PlanDeleted)
		err = advance()
	}
	return st, err
}

// changeOf says how e differs from the full's entry f of the same path.
func changeOf(f, e *Entry) PlanChange {
	switch {
	case f.Type != e.Type:
		return PlanType
	case e.Type == TypeFile && (f.Size != e.Size || f.MTime != e.MTime || f.Inode != e.Inode):
		return PlanContent
	case f.Target != e.Target || f.Major != e.Major || f.Minor != e.Minor:
		return PlanTarget
	}
	return PlanMetadata
}
