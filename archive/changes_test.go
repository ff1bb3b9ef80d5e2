package archive_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/treecmp"
)

// inodeTimes records each path's inode and ctime, as a snapshot's object
// generations would: the oracle of what changed, as zfs diff reports it.
func inodeTimes(t *testing.T, root string) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = [2]int64{int64(st.Ino), st.Ctim.Nano()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// changeList lists what differs between two inodeTimes: new, gone, or an
// inode whose ctime moved.
func changeList(t *testing.T, before, after map[string][2]int64, skip string) *archive.ChangeList {
	t.Helper()
	c := archive.NewChangeList("test list")
	for p, a := range after {
		if b, ok := before[p]; (!ok || b != a) && p != skip {
			if err := c.Add(p, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok && p != skip {
			c.Add(p, false)
		}
	}
	return c
}

// setContent is what a set holds, without its id: the file table and
// every volume's tar headers and data, decoded.
func setContent(t *testing.T, r *testRepo, m *archive.Manifest) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	table, tc, err := r.repo().Files(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for {
		e, err := table.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%+v\n", *e)
	}
	for i := range m.Volumes {
		rc, err := r.repo().OpenVolume(ctx, m, i+1)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			if h.Name == ".backtory/deleted" || h.Name == ".backtory/moves" {
				h.ModTime = time.Time{} // the run's start
			}
			fmt.Fprintf(&b, "%s %d %v %d %x\n", h.Name, h.Size, h.ModTime, h.Mode, data)
		}
		rc.Close()
	}
	st := m.Stats
	st.StoredBytes = 0 // the run's start is in the sets, compressed
	fmt.Fprintf(&b, "%+v\n", st)
	return b.String()
}

// TestChangeListMatchesWalk takes each differential twice, from a change
// list and by walking the tree: both sets hold the same, and restore the
// tree. A change list that misses a path, a file with several names among
// the changes, and changed excludes make the differential walk the tree.
func TestChangeListMatchesWalk(t *testing.T) {
	r := newSampleRepo(t, nil, treecmp.SampleOptions{})
	os.MkdirAll(filepath.Join(r.src, "new"), 0o755)
	full := r.backup("")
	before := inodeTimes(t, r.src)
	rng := rand.New(rand.NewSource(19))
	for day := 0; day < 4; day++ {
		mutate(t, r.src, rng, day)
		after := inodeTimes(t, r.src)
		for _, c := range []struct {
			name     string
			skip     string // a path left out of the list
			exclude  []string
			wantScan string
		}{
			{name: "full list", wantScan: "test list"},
			{name: "missing path", skip: "etc/hosts", wantScan: "walk"},
			{name: "other excludes", exclude: []string{"nothing-here"}, wantScan: "walk"},
		} {
			if day == 3 {
				c.wantScan = "walk" // a changed file has several names
			}
			if day == 0 && c.skip != "" {
				c.wantScan = "test list" // etc/hosts did not change yet
			}
			var infos []string
			walked := r.backupWith(full.ID, nil, nil, nil)
			listed := r.backupWith(full.ID, changeList(t, before, after, c.skip), c.exclude, func(msg string) { infos = append(infos, msg) })
			if walked.Scan != "walk" || listed.Scan != c.wantScan {
				t.Errorf("day %d, %s: scans %q and %q, want walk and %q (%q)", day, c.name, walked.Scan, listed.Scan, c.wantScan, infos)
			}
			if (c.wantScan == "walk") != (len(infos) == 1) {
				t.Errorf("day %d, %s: notices %q", day, c.name, infos)
			}
			if c.exclude != nil {
				continue // another set's content
			}
			if a, b := setContent(t, r, walked), setContent(t, r, listed); a != b {
				t.Errorf("day %d, %s: the differentials differ:\n%s", day, c.name, firstDiff(a, b))
			}
		}
		got, err := r.restore(r.lastID)
		if err != nil {
			t.Fatal(err)
		}
		sameTree(t, r.src, got, fmt.Sprintf("day %d", day))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range al {
		if i >= len(bl) || al[i] != bl[i] {
			if i < len(bl) {
				return "walk: " + al[i] + "\nlist: " + bl[i]
			}
			return "walk: " + al[i]
		}
	}
	return "the list's set is longer"
}
