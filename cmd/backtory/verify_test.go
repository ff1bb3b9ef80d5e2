package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
)

// TestVerifyReportsEveryDamagedSet: verify goes on past a damaged set,
// names each damaged one (a differential whose full is damaged too) and
// exits 1; -q prints nothing when every set is intact.
func TestVerifyReportsEveryDamagedSet(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	// Four sets, two of them in the same second as the one before: the
	// second waits its turn instead of failing.
	var sets []string // in the order written
	for _, flag := range []string{"--full", "--diff", "--full", "--diff"} {
		id, code, stderr := backupNewSet(t, dir, cfg, flag)
		if code != exitOK {
			t.Fatalf("backup %s: exit %d, %s", flag, code, stderr)
		}
		sets = append(sets, id)
	}
	if len(sets) != 4 {
		t.Fatalf("sets %v, want 4", sets)
	}
	code, stdout, stderr := backtoryOut(t, "verify", "--config", cfg, "-q")
	if code != exitOK || stdout != "" || stderr != "" {
		t.Errorf("verify -q of intact sets: exit %d, stdout %q, stderr %q; want silence", code, stdout, stderr)
	}
	if code, stdout, _ := backtoryOut(t, "verify", "--config", cfg); code != exitOK || stdout != "4 sets verified\n" {
		t.Errorf("verify: exit %d, %q", code, stdout)
	}

	full1, diff1, full2, diff2 := sets[0], sets[1], sets[2], sets[3]
	damage := func(set, object string) {
		p := filepath.Join(dir, "remote", "testhost", "root", set, object)
		if err := os.Truncate(p, 10); err != nil {
			t.Fatal(err)
		}
	}
	damage(full1, "vol-000001.tar.zst")
	damage(diff2, "files.jsonl.zst")
	code, stdout, stderr = backtoryOut(t, "verify", "--config", cfg, "-q")
	if code != exitFailed || stdout != "" {
		t.Errorf("verify of damaged sets: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	for _, want := range []string{full1 + "/vol-000001.tar.zst: does not match its manifest", "its full " + full1 + " is damaged",
		diff2 + "/files.jsonl.zst: does not match its manifest", "3 of 4 sets damaged: root/" + full1 + ", root/" + diff1 + ", root/" + diff2} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, full2) {
		t.Errorf("an intact set reported damaged:\n%s", stderr)
	}
}

// backupNewSet runs a backup with args and returns the id of the set it
// wrote, its exit code and stderr.
func backupNewSet(t *testing.T, dir, cfg string, args ...string) (string, int, string) {
	t.Helper()
	before := map[string]bool{}
	for _, id := range setDirs(t, dir) {
		before[id] = true
	}
	code, _, stderr := backtoryOut(t, append([]string{"backup", "--config", cfg}, args...)...)
	for _, id := range setDirs(t, dir) {
		if !before[id] {
			return id, code, stderr
		}
	}
	t.Fatalf("backup %v wrote no set: exit %d, %s", args, code, stderr)
	return "", 0, ""
}

// setDirs lists the set directories of source root of testhost.
func setDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "remote", "testhost", "root"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// TestRunsInTheSameSecond: a set id that is taken (by a run in the same
// second, or one interrupted there) makes the next run wait for a free
// second with a message, never fail.
func TestRunsInTheSameSecond(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	now := time.Now()
	for _, d := range []time.Duration{0, time.Second} {
		taken := filepath.Join(dir, "remote", "testhost", "root", archive.NewSetID(archive.KindFull, now.Add(d)))
		if err := os.MkdirAll(taken, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(taken, "vol-000001.tar.zst"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := backtoryOut(t, "backup", "--config", cfg, "--full", "-v")
	if code != exitOK || !strings.Contains(stderr, "waiting for the next second") {
		t.Fatalf("backup: exit %d, %q", code, stderr)
	}
	mustRun(t, "backup", "--config", cfg, "--full")
	mustRun(t, "backup", "--config", cfg, "--full")
	if code, stdout, _ := backtoryOut(t, "verify", "--config", cfg); code != exitOK || stdout != "3 sets verified\n" {
		t.Errorf("verify: exit %d, %q", code, stdout)
	}
}

// TestDifferentialChecksItsFull: a differential is never written against a
// full that lost an object (or, with --verify-base, whose object changed):
// the run writes a new full instead and warns why (exit 3).
func TestDifferentialChecksItsFull(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	newSet := func(args ...string) (string, int, string) { return backupNewSet(t, dir, cfg, args...) }
	vol := func(id string) string {
		return filepath.Join(dir, "remote", "testhost", "root", id, "vol-000001.tar.zst")
	}
	full1, _, _ := newSet()

	// A changed byte keeps the size: only --verify-base sees it.
	f, err := os.OpenFile(vol(full1), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, 100)
	f.Close()
	if id, code, stderr := newSet(); code != exitOK || !strings.HasPrefix(id, "diff-") {
		t.Errorf("backup over a full of the right sizes: %s, exit %d, %s", id, code, stderr)
	}
	id, code, stderr := newSet("--verify-base")
	if code != exitWarnings || !strings.HasPrefix(id, "full-") || !strings.Contains(stderr, "writing a full: the full "+full1+" is damaged on the remote") {
		t.Errorf("backup --verify-base over a changed full: %s, exit %d, %s", id, code, stderr)
	}

	// A lost volume is seen without --verify-base.
	if err := os.Remove(vol(id)); err != nil {
		t.Fatal(err)
	}
	id2, code, stderr := newSet()
	if code != exitWarnings || !strings.HasPrefix(id2, "full-") || !strings.Contains(stderr, "vol-000001.tar.zst is missing on the remote") {
		t.Errorf("backup over a full that lost a volume: %s, exit %d, %s", id2, code, stderr)
	}
	if id3, code, _ := newSet(); code != exitOK || !strings.HasPrefix(id3, "diff-") {
		t.Errorf("backup over the new full: %s, exit %d", id3, code)
	}
}
