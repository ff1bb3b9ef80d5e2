package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCronLikeRun runs the binary as cron does (no terminal, no stdin, a
// session of its own) with --quiet and --log-file, and a file that
// vanishes while the backup runs: the warning itself is in the output (what
// cron mails) and in the log file, the exit code is 3, and status and the
// metrics show the warning.
func TestCronLikeRun(t *testing.T) {
	bin := sigBuild(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	big := make([]byte, 96<<20) // read long enough for waitOpen to see it open
	rand.Read(big)
	os.WriteFile(filepath.Join(src, "a-big"), big, 0o644)
	victim := filepath.Join(src, "b-victim")
	os.WriteFile(victim, []byte("here at the start\n"), 0o644)
	metrics := filepath.Join(dir, "backtory.prom")
	cfg := writeConfig(t, dir, src, "metrics_file: "+metrics+"\n")
	logFile := filepath.Join(dir, "backtory.log")

	var out bytes.Buffer
	cmd := exec.Command(bin, "backup", "--config", cfg, "--quiet", "--log-file", logFile)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, &out, &out                     // stdin: /dev/null
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root", "SHELL=/bin/sh"} // cron's
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}                    // no controlling terminal
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The victim vanishes while a-big is read: once the run has a-big
	// open, it is frozen, the victim removed, the run thawed.
	go func() {
		time.Sleep(5 * time.Second)
		t.Logf("after 5s: %s", &out)
		exec.Command("sh", "-c", fmt.Sprintf("ls -l /proc/%d/fd; cat /proc/%d/stack; cat /proc/%d/status | head -3", cmd.Process.Pid, cmd.Process.Pid, cmd.Process.Pid)).Run()
	}()
	waitOpen(t, cmd.Process.Pid, filepath.Join(src, "a-big"), &out)
	cmd.Process.Signal(syscall.SIGSTOP)
	os.Remove(victim)
	cmd.Process.Signal(syscall.SIGCONT)
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code != exitWarnings {
		t.Fatalf("exit %d (%v), want %d:\n%s", code, err, exitWarnings, &out)
	}
	// What cron mails: the warning line, and the last line says it again.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	const warning = "b-victim: vanished before it was read"
	if len(lines) != 2 || !strings.Contains(lines[0], "warning: "+warning) ||
		lines[1] != "backtory: warning: backup done with 1 warning: "+warning {
		t.Errorf("the output cron mails:\n%s", &out)
	}
	// The log file: timestamped info lines too (--quiet is for stderr), the
	// summary, the warning, and the run's end.
	lf, _ := os.ReadFile(logFile)
	for _, re := range []string{
		`(?m)^\S+ backtory: warning: ` + regexp.QuoteMeta(warning) + ` source="root"$`,
		`(?m)^\S+ backtory: backup done source="root" set="full-\S+" kind="full" why="there is no full yet" files=1 changed=0 bytes=100663296 read=100663296 stored=\d+ seconds=[0-9.]+ warnings=1$`,
		`(?m)^\S+ backtory: warning: backup done with warnings err="backup done with 1 warning: ` + regexp.QuoteMeta(warning) + `"$`,
	} {
		if !regexp.MustCompile(re).Match(lf) {
			t.Errorf("the log file does not match %s:\n%s", re, lf)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(string(lf)), "\n") {
		ts, _, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("log line without an RFC 3339 timestamp: %q", l)
		}
	}
	// status and the metrics.
	if code, stdout, _ := backtoryOut(t, "status", "--config", cfg); code != 0 || !strings.HasPrefix(stdout, "root: warning ") {
		t.Errorf("status (exit %d): %s", code, stdout)
	}
	prom, _ := os.ReadFile(metrics)
	for _, want := range []string{`backtory_last_run_warnings{source="root"} 1`, `backtory_last_run_success{source="root"} 1`} {
		if !strings.Contains(string(prom), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, prom)
		}
	}
}

// waitOpen waits until process pid has a file open whose path starts with
// file (its /proc/PID/fd).
func waitOpen(t *testing.T, pid int, file string, out *bytes.Buffer) {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		ents, err := os.ReadDir(fds)
		if err != nil || bytes.Contains(stat, []byte(") Z ")) {
			t.Fatalf("the run ended before it opened %s: %v\n%s", file, err, out)
		}
		for _, e := range ents {
			if l, _ := os.Readlink(filepath.Join(fds, e.Name())); strings.HasPrefix(l, file) {
				return
			}
		}
	}
	t.Fatalf("waited a minute for the run to open %s", file)
}
