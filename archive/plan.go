package archive

import (
	"context"
	"io"
	"os"
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

// Plan walks opt.Root like Backup, without reading file content or
// writing anything, and counts what a full (or, with opt.Base, a
// differential) would hold. Files whose ctime alone moved count as changed.
func Plan(ctx context.Context, opt BackupOptions) (PlanStats, error) {
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
	err = w.walk(func(e *Entry, _ *os.File) error {
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
			if err := advance(); err != nil {
				return err
			}
		}
		if next == nil || next.Path != e.Path {
			st.New++
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
			if e.Type == TypeFile {
				st.ChangedBytes += e.Size
			}
		}
		return nil
	})
	for err == nil && next != nil {
		st.Deleted++
		err = advance()
	}
	return st, err
}
