package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestKilledRunsLeaveNothingBehind: runs killed with SIGKILL while
// spooling leave their spool in state_dir; the next backup removes it and
// says so (the spool never grows with the kills), and so does prune
// (--dry-run only counts).
func TestKilledRunsLeaveNothingBehind(t *testing.T) {
	bin := sigBuild(t)
	e := sigEnv(t, bin, "")
	sigSparse(t, filepath.Join(e.src, "big"), 4<<30) // long enough to be killed while spooling
	spool := filepath.Join(e.dir, "state", "spool")
	spooled := func() bool {
		m, _ := filepath.Glob(filepath.Join(spool, "run-*", "spool-*"))
		return len(m) > 0
	}
	kill := func(n int) {
		for range n {
			p := e.start(t, "backup")
			sigWaitUntil(t, p, "a volume is spooled", spooled)
			p.signal(t, syscall.SIGKILL)
			p.wait(t)
		}
		// Each run removed the spool of the one killed before it.
		if m, _ := filepath.Glob(filepath.Join(spool, "run-*")); len(m) != 1 {
			t.Fatalf("%d killed runs left %d spool directories, want the last one's", n, len(m))
		}
	}
	kill(3)
	os.Remove(filepath.Join(e.src, "big"))
	code, _, stderr := backtoryOut(t, "backup", "--config", e.cfg, "-v")
	if code != exitOK || !strings.Contains(stderr, "removed the leftovers of interrupted runs from state_dir") {
		t.Errorf("backup after killed runs: exit %d, %s", code, stderr)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("the spool after a backup: %v", dirNames(ents))
	}

	sigSparse(t, filepath.Join(e.src, "big"), 4<<30)
	kill(1)
	_, stdout, _ := backtoryOut(t, "prune", "--config", e.cfg, "--dry-run")
	if !strings.Contains(stdout, "would delete ") || !strings.Contains(stdout, "files (") {
		t.Errorf("prune --dry-run: %q", stdout)
	}
	if m, _ := filepath.Glob(filepath.Join(spool, "run-*")); len(m) != 1 {
		t.Errorf("prune --dry-run removed the leftovers")
	}
	_, stdout, _ = backtoryOut(t, "prune", "--config", e.cfg)
	if !strings.Contains(stdout, "deleted ") || !strings.Contains(stdout, "that interrupted runs left in "+filepath.Join(e.dir, "state")) {
		t.Errorf("prune: %q", stdout)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("the spool after prune: %v", dirNames(ents))
	}
}
