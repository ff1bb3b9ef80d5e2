package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCleanLeftovers: the spool directories of dead runs, files spooled
// directly under spool/ and old temporaries go; a live run's spool, fresh
// temporaries and real state stay.
func TestCleanLeftovers(t *testing.T) {
	d := New(filepath.Join(t.TempDir(), "state"))
	write := func(p string, n int, age time.Duration) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		os.Chtimes(p, old, old)
		return p
	}
	live, release, err := d.Spool()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	liveFile := write(filepath.Join(live, "spool-1"), 100, 0)
	dead := filepath.Join(d.Root(), "spool", "run-dead")
	write(filepath.Join(dead, spoolLock), 0, 0) // nobody holds it
	write(filepath.Join(dead, "spool-2"), 1000, 0)
	write(filepath.Join(dead, "fetch-3"), 10, 0)
	write(filepath.Join(d.Root(), "spool", "delta-4"), 1, 0) // an older version's layout
	oldTemp := write(filepath.Join(filepath.Dir(d.Path("h", "root", "full-x", "sigs")), ".fetch-5"), 0, time.Hour)
	write(filepath.Join(d.Root(), "runs", "h", ".root.json.tmp123"), 7, time.Hour)
	fresh := write(filepath.Join(d.Root(), "seen", "h", ".root.tmp456"), 3, 0)
	keep := write(d.Path("h", "root", "full-x", "sigs"), 50, time.Hour)

	dry, err := d.CleanLeftovers(time.Now(), true)
	if err != nil || dry.Files != 5 || dry.Bytes != 1018 {
		t.Errorf("dry run: %+v, %v; want 5 files, 1018 bytes", dry, err)
	}
	if _, err := os.Stat(dead); err != nil {
		t.Errorf("a dry run removed: %v", err)
	}
	got, err := d.CleanLeftovers(time.Now(), false)
	if err != nil || got.Files != 5 || got.Bytes != 1018 {
		t.Errorf("CleanLeftovers = %+v, %v; want 5 files, 1018 bytes", got, err)
	}
	for _, p := range []string{liveFile, fresh, keep} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("removed what it must keep: %v", err)
		}
	}
	for _, p := range []string{dead, oldTemp, filepath.Join(d.Root(), "spool", "delta-4")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if again, err := d.CleanLeftovers(time.Now(), false); err != nil || again.Files != 0 {
		t.Errorf("a second clean: %+v, %v", again, err)
	}
}

// TestSpoolSurvivesConcurrentCleaning: a spool being made while another
// process cleans leftovers is never taken for a killed run's (the lock
// file appears only once it is locked).
func TestSpoolSurvivesConcurrentCleaning(t *testing.T) {
	d := &Dir{root: t.TempDir()}
	stop := make(chan struct{})
	cleaned := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				cleaned <- nil
				return
			default:
			}
			if _, err := d.CleanLeftovers(time.Now(), false); err != nil {
				cleaned <- err
				return
			}
		}
	}()
	for i := 0; i < 300; i++ {
		dir, release, err := d.Spool()
		if err != nil {
			close(stop)
			t.Fatalf("spool %d: %v", i, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "fetch-1"), []byte("x"), 0o600); err != nil {
			close(stop)
			t.Fatalf("spool %d was removed under its run: %v", i, err)
		}
		release()
	}
	close(stop)
	if err := <-cleaned; err != nil {
		t.Fatal(err)
	}
}
