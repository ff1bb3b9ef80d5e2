package archive_test

import (
	"context"
	"os"
	"path/filepath"
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
	if err := archive.DeleteSet(context.Background(), r.b, "h", "s", full.ID); err != nil {
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
	opt := archive.BackupOptions{Host: "h", Source: "s", SourcePath: r.src, Root: r.src,
		VolumeSize: 1 << 20, Compression: archive.Compression{Kind: "zstd", Level: 1}, SpoolDir: r.spool,
		Progress: func(entries int, _ int64) {
			if entries == 20 {
				cancel()
			}
		}}
	if _, err := archive.Backup(ctx, r.b, opt); err == nil {
		t.Fatal("a cancelled backup succeeded")
	}
	ids, err := r.reader().SetIDs(context.Background())
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
