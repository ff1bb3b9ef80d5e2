package archive_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backtory/backtory/archive"
)

// TestDiffAgainstReplacedFull: a differential names its full by id and by
// the hash of the full's manifest; a different full under the same id is
// refused.
func TestDiffAgainstReplacedFull(t *testing.T) {
	r := newTestRepo(t, nil)
	full := r.backup("")
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed\n"), 0o644)
	diff := r.backup(full.ID)
	if _, err := r.restore(diff.ID); err != nil {
		t.Fatalf("restore before tampering: %v", err)
	}
	// Replace the full by another full with the same id (same start time).
	if err := r.repo().DeleteSet(context.Background(), full.ID); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(r.src, "etc/other"), []byte("x\n"), 0o644)
	clock := r.clock
	r.clock = full.Started.Add(-24 * 60 * 60 * 1e9)
	again := r.backup("")
	r.clock = clock
	if again.ID != full.ID {
		t.Fatalf("could not recreate %s (got %s)", full.ID, again.ID)
	}
	_, err := r.restore(diff.ID)
	if err == nil || !strings.Contains(err.Error(), "was taken against another") {
		t.Fatalf("restore of a differential whose full was replaced: %v", err)
	}
}

// TestInterruptedBackupLeavesNoSet: a backup cancelled half-way leaves no
// set that a listing shows, and no objects (it removes what it uploaded).
func TestInterruptedBackupLeavesNoSet(t *testing.T) {
	r := newTestRepo(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	opt := archive.BackupOptions{SourcePath: r.src, Root: r.src,
		VolumeSize: 1 << 20, Compression: archive.Compression{Kind: "zstd", Level: 1},
		Progress: func(entries int, _ int64) {
			if entries == 20 {
				cancel()
			}
		}}
	if _, err := r.repo().Backup(ctx, opt); err == nil {
		t.Fatal("a cancelled backup succeeded")
	}
	ids, err := r.repo().SetIDs(context.Background())
	if err != nil || len(ids) != 0 {
		t.Fatalf("sets after a cancelled backup: %v, %v", ids, err)
	}
	var files []string
	filepath.Walk(r.remote, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("a cancelled backup left objects: %v", files)
	}
	if spool, _ := os.ReadDir(r.spool); len(spool) != 0 {
		t.Errorf("a cancelled backup left spool files: %d", len(spool))
	}
}

// TestLostSigsCacheIsRebuilt: the local copy of a full's signatures is a
// cache; a differential works without it, and a damaged copy is replaced.
func TestLostSigsCacheIsRebuilt(t *testing.T) {
	r := newTestRepo(t, nil)
	full := r.backup("")
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed once\n"), 0o644)
	r.backup(full.ID) // fills the cache
	cached, _ := filepath.Glob(filepath.Join(r.cache, "h", "s", full.ID+".*"))
	if len(cached) != 1 {
		t.Fatalf("cache holds %v", cached)
	}
	os.WriteFile(cached[0], []byte("damaged"), 0o600)
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed twice\n"), 0o644)
	d2 := r.backup(full.ID)
	os.RemoveAll(r.cache)
	os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed thrice\n"), 0o644)
	want := copyTree(t, r.src)
	d3 := r.backup(full.ID)
	if d2.Stats.Changed == 0 || d3.Stats.Changed == 0 {
		t.Fatalf("differentials saw no change: %d, %d", d2.Stats.Changed, d3.Stats.Changed)
	}
	got, err := r.restore(d3.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, got, d3.ID)
}

// TestVanishedFileIsAWarning: a file that disappears during the walk is
// reported, and the set is complete without it.
func TestVanishedFileIsAWarning(t *testing.T) {
	r := newTestRepo(t, nil)
	var warned []string
	victim := filepath.Join(r.src, "etc/text.conf")
	// The walk lists etc/ before it archives etc/hosts; remove the victim
	// right after etc/hosts, so that the walk finds it listed but gone.
	var order []string
	filepath.Walk(r.src, func(p string, _ os.FileInfo, _ error) error {
		order = append(order, p)
		return nil
	})
	after := slices.Index(order, filepath.Join(r.src, "etc/hosts")) + 1 // entries archived by then
	opt := archive.BackupOptions{SourcePath: r.src, Root: r.src,
		VolumeSize: 1 << 20, Compression: archive.Compression{Kind: "zstd", Level: 1},
		Warn: func(p, msg string) { warned = append(warned, p+": "+msg) },
		Progress: func(n int, _ int64) {
			if n == after {
				os.Remove(victim)
			}
		}}
	m, err := r.repo().Backup(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats.Warnings != 1 || len(warned) != 1 || !strings.Contains(warned[0], "etc/text.conf: vanished") {
		t.Fatalf("warnings %d: %v", m.Stats.Warnings, warned)
	}
	if _, err := r.restore(m.ID); err != nil {
		t.Fatal(err)
	}
}
