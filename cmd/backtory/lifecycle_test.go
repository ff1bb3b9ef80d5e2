package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
)

// hookConfig writes a config whose hooks append "phase source status" lines
// to a log file.
func hookConfig(t *testing.T, dir, src, extra string) (cfg, log string) {
	t.Helper()
	log = filepath.Join(dir, "hooks.log")
	rec := func(tag string) string {
		return `"echo ` + tag + ` $BACKTORY_PHASE src=$BACKTORY_SOURCE set=$BACKTORY_SET_KIND status=$BACKTORY_STATUS >> ` + log + `"`
	}
	hooks := "hooks:\n" +
		"  pre_backup: [" + rec("global") + "]\n" +
		"  pre_snapshot: [" + rec("global") + "]\n" +
		"  post_snapshot: [" + rec("global") + "]\n" +
		"  post_backup: [" + rec("global") + "]\n" +
		"  on_failure: [" + rec("global") + "]\n" + extra
	cfg = writeConfig(t, dir, src, hooks)
	os.Chmod(cfg, 0o600)
	return cfg, log
}

func readLog(t *testing.T, p string) []string {
	t.Helper()
	b, _ := os.ReadFile(p)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestHooksAroundBackup(t *testing.T) {
	testenv.NeedRoot(t, "hooks need a root-owned config")
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg, log := hookConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg)
	want := []string{
		"global pre_backup src= set= status=",
		"global pre_snapshot src=root set=full status=",
		"global post_snapshot src=root set=full status=success",
		"global post_backup src= set= status=success",
	}
	if got := readLog(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hook log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A failing pre_backup hook aborts the run; post_backup and on_failure still run.
	os.Remove(log)
	cfg, log = hookConfig(t, dir, src, "")
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "  pre_backup: [", `  pre_backup: ["exit 7", `, 1)), 0o600)
	code, stderr := backtory(t, "backup", "--config", cfg)
	if code != exitFailed || !strings.Contains(stderr, "exit status 7") {
		t.Errorf("failing pre_backup: exit %d, stderr %q", code, stderr)
	}
	got := strings.Join(readLog(t, log), "\n")
	if strings.Contains(got, "pre_snapshot") || !strings.Contains(got, "global post_backup src= set= status=failure") || !strings.Contains(got, "global on_failure") {
		t.Errorf("after a failing pre_backup hook, the hook log is:\n%s", got)
	}

	// A failing hook with on_error: continue makes the run end with warnings (exit 3).
	os.Remove(log)
	time.Sleep(1100 * time.Millisecond) // a new set id
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "  post_backup: [", `  post_backup: [{run: "exit 5", on_error: continue}, `, 1)), 0o600)
	if code, stderr := backtory(t, "backup", "--config", cfg, "--full"); code != exitWarnings {
		t.Errorf("failing continue hook: exit %d, want %d; stderr %q", code, exitWarnings, stderr)
	}

	// A config with hooks that others may write is refused.
	os.Chmod(cfg, 0o666)
	if code, stderr := backtory(t, "backup", "--config", cfg); code != exitUsage || !strings.Contains(stderr, "chmod go-w") {
		t.Errorf("world-writable config with hooks: exit %d, stderr %q", code, stderr)
	}
}

func TestLockHeld(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	release, err := acquireLock(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	code, stderr := backtory(t, "backup", "--config", cfg)
	release()
	if code != exitLocked || !strings.Contains(stderr, "holds the lock") {
		t.Errorf("backup with the lock held: exit %d, stderr %q", code, stderr)
	}
	mustRun(t, "backup", "--config", cfg)
}

// TestSignalStopsCleanly sends SIGTERM to a backup in progress: it exits
// non-zero, leaves no set and no spool files, and runs its post hooks.
func TestSignalStopsCleanly(t *testing.T) {
	testenv.NeedRoot(t, "hooks need a root-owned config")
	bin := filepath.Join(t.TempDir(), "backtory")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	f, _ := os.Create(filepath.Join(src, "big"))
	f.Truncate(64 << 30) // sparse: long to read, nothing on disk
	f.Close()
	cfg, log := hookConfig(t, dir, src, "")
	cmd := exec.Command(bin, "backup", "--config", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "state/spool")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ents, _ := os.ReadDir(spool); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the backup never started writing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err == nil {
		t.Fatal("a backup stopped by SIGTERM exited 0")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "remote/*/*/*/manifest*")); len(m) > 0 {
		t.Errorf("a stopped backup left a set: %v", m)
	}
	if ents, _ := os.ReadDir(spool); len(ents) > 0 {
		t.Errorf("a stopped backup left %d spool files", len(ents))
	}
	if got := strings.Join(readLog(t, log), "\n"); !strings.Contains(got, "post_backup src= set= status=failure") || !strings.Contains(got, "on_failure") {
		t.Errorf("hooks after SIGTERM:\n%s", got)
	}
}
