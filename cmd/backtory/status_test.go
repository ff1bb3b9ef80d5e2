package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/state"
)

func TestHumanAge(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 600*time.Millisecond, "1m"},
		{12*time.Minute + 30*time.Second, "12m30s"},
		{10 * time.Minute, "10m"},
		{3*time.Hour + 5*time.Minute, "3h5m"},
		{3 * time.Hour, "3h"},
		{3*time.Hour + 10*time.Minute, "3h10m"},
		{26 * time.Hour, "1d2h"},
		{48 * time.Hour, "2d"},
		{10*24*time.Hour + 20*time.Hour, "10d20h"},
	} {
		if got := humanAge(c.d); got != c.want {
			t.Errorf("humanAge(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestStatusRows(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ok := &state.Run{Source: "root", Outcome: "success", Started: now.Add(-3*time.Hour - time.Minute),
		Finished: now.Add(-3 * time.Hour), SetID: "full-20261123T085900Z", Kind: "full", Files: 12, Bytes: 2048, Stored: 1024}
	okRec := *ok
	okRec.LastSuccess = ok
	failed := state.Run{Source: "root", Outcome: "failure", Finished: now.Add(-10 * time.Minute),
		Error: "source root: remote: connection refused", LastSuccess: ok}
	failedNever := state.Run{Source: "data", Outcome: "failure", Finished: now.Add(-time.Minute), Error: "source data: boom"}
	never := state.Run{Source: "data"}
	at3h, at10m, at1m := showTime(ok.Finished), showTime(failed.Finished), showTime(failedNever.Finished)
	for _, c := range []struct {
		name    string
		rec     state.Run
		maxAge  time.Duration
		ok      bool
		line    string
		problem string
	}{
		{"success", okRec, 0, true,
			"root: success 3h ago (" + at3h + "), set full-20261123T085900Z (12 files, 2.0 KiB, stored 1.0 KiB)", ""},
		{"success within max age", okRec, 26 * time.Hour, true,
			"root: success 3h ago (" + at3h + "), set full-20261123T085900Z (12 files, 2.0 KiB, stored 1.0 KiB)", ""},
		{"success too old", okRec, 2 * time.Hour, false,
			"root: success 3h ago (" + at3h + "), set full-20261123T085900Z (12 files, 2.0 KiB, stored 1.0 KiB) [last successful backup 3h ago (full-20261123T085900Z), older than --max-age 2h]",
			"older than --max-age 2h"},
		{"failure after a recent success", failed, 26 * time.Hour, true,
			"root: failure 10m ago (" + at10m + "): source root: remote: connection refused; last success 3h ago (" + at3h + "), set full-20261123T085900Z", ""},
		{"failure after an old success", failed, time.Hour, false,
			"root: failure 10m ago (" + at10m + "): source root: remote: connection refused; last success 3h ago (" + at3h + "), set full-20261123T085900Z [last successful backup 3h ago (full-20261123T085900Z), older than --max-age 1h]",
			"last successful backup 3h ago"},
		{"failure, never a success", failedNever, 0, false,
			"data: failure 1m ago (" + at1m + "): source data: boom [never backed up successfully]", "never backed up successfully"},
		{"never run", never, 0, false, "data: never run [never backed up successfully]", "never backed up successfully"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := statusRows([]state.Run{c.rec}, now, c.maxAge)
			if len(rows) != 1 {
				t.Fatalf("%d rows", len(rows))
			}
			r := rows[0]
			if r.OK != c.ok {
				t.Errorf("ok = %v, want %v (problem %q)", r.OK, c.ok, r.Problem)
			}
			if got := statusLine(r, now); got != c.line {
				t.Errorf("line:\n got %q\nwant %q", got, c.line)
			}
			err := statusError(rows)
			if c.ok != (err == nil) {
				t.Errorf("statusError = %v", err)
			}
			if err != nil && (!strings.Contains(err.Error(), c.problem) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("statusError = %q, want one line with %q", err, c.problem)
			}
		})
	}
}

// statusConfig writes a config with two sources and returns it with its
// parsed form.
func statusConfig(t *testing.T) (string, *Config) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, dir, src, "")
	raw, _ := os.ReadFile(path)
	body := strings.Replace(string(raw), "sources:\n", "sources:\n  - name: data\n    path: "+src+"\n", 1)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func TestStatusCommand(t *testing.T) {
	path, cfg := statusConfig(t)

	// Nothing ran yet: both sources are missing a backup.
	code, out, stderr := backtoryOut(t, "status", "--config", path)
	if code != exitFailed || !strings.Contains(stderr, "source data: never backed up successfully; source root: never") ||
		strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("status before any run: exit %d, stderr %q", code, stderr)
	}
	if out != "data: never run [never backed up successfully]\nroot: never run [never backed up successfully]\n" {
		t.Errorf("status before any run printed %q", out)
	}

	now := time.Now()
	for _, rec := range []state.Run{
		{Host: cfg.Host, Source: "root", Outcome: "success", Started: now.Add(-31 * time.Hour), Finished: now.Add(-30 * time.Hour), SetID: "full-a", Files: 3},
		{Host: cfg.Host, Source: "root", Outcome: "failure", Started: now.Add(-time.Hour), Finished: now.Add(-time.Hour), Error: "source root: boom"},
		{Host: cfg.Host, Source: "data", Outcome: "warning", Started: now.Add(-2 * time.Hour), Finished: now.Add(-2 * time.Hour), SetID: "diff-b", Warnings: 1},
	} {
		if err := state.New(cfg.StateDir).SaveRun(rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args   []string
		code   int
		stdout []string // substrings
		stderr string
	}{
		{nil, exitOK, []string{"data: warning 2h ago (" + showTime(now.Add(-2*time.Hour)) + "), set diff-b",
			"root: failure 1h ago (" + showTime(now.Add(-time.Hour)) + "): source root: boom; last success 1d6h ago (" + showTime(now.Add(-30*time.Hour)) + "), set full-a"}, ""},
		{[]string{"--max-age", "2d"}, exitOK, []string{"root: failure"}, ""},
		{[]string{"--max-age", "26h"}, exitFailed, []string{"[last successful backup 1d6h ago (full-a), older than --max-age 1d2h]"},
			"backtory: source root: last successful backup 1d6h ago (full-a), older than --max-age 1d2h"},
		{[]string{"--max-age", "26h", "--source", "data"}, exitOK, []string{"data: warning"}, ""},
		{[]string{"--max-age", "1h"}, exitFailed, nil, "source data: last successful backup 2h ago"},
		{[]string{"--max-age", "soon"}, exitUsage, nil, `--max-age "soon"`},
		{[]string{"--source", "nope"}, exitUsage, nil, "nope"},
		{[]string{"extra"}, exitUsage, nil, "no arguments"},
	} {
		args := append([]string{"status", "--config", path}, c.args...)
		code, out, stderr := backtoryOut(t, args...)
		if code != c.code || !strings.Contains(stderr, c.stderr) {
			t.Errorf("status %v: exit %d, stderr %q; want %d, %q", c.args, code, stderr, c.code, c.stderr)
		}
		for _, s := range c.stdout {
			if !strings.Contains(out, s) {
				t.Errorf("status %v: stdout %q lacks %q", c.args, out, s)
			}
		}
	}

	// Records that cannot be read are an error, not "never backed up".
	cfg2 := *cfg
	cfg2.StateDir = t.TempDir()
	os.WriteFile(filepath.Join(cfg2.StateDir, "runs"), nil, 0o600)
	raw, _ := os.ReadFile(path)
	path2 := filepath.Join(t.TempDir(), "backtory.yaml")
	os.WriteFile(path2, []byte(strings.Replace(string(raw), cfg.StateDir, cfg2.StateDir, 1)), 0o600)
	if code, _, stderr := backtoryOut(t, "status", "--config", path2); code != exitFailed || !strings.Contains(stderr, "read the run records: ") {
		t.Errorf("status with unreadable records: exit %d, stderr %q", code, stderr)
	}

	// --json: one object per source, the last run with its last success.
	code, out, _ = backtoryOut(t, "status", "--config", path, "--json", "--max-age", "26h")
	var rows []statusRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if code != exitFailed || len(rows) != 2 || rows[0].Source != "data" || !rows[0].OK || rows[1].OK ||
		rows[1].LastRun == nil || rows[1].LastRun.Outcome != "failure" || rows[1].LastRun.LastSuccess == nil ||
		rows[1].LastRun.LastSuccess.SetID != "full-a" || rows[1].LastSuccessAge == nil || *rows[1].LastSuccessAge < 30*3600-60 {
		t.Errorf("status --json: exit %d\n%s", code, out)
	}
}

// TestStatusAfterBackup runs a real backup and asks status about it.
func TestStatusAfterBackup(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg)
	code, out, stderr := backtoryOut(t, "status", "--config", cfg, "--max-age", "1h")
	if code != exitOK || !strings.HasPrefix(out, "root: success ") || !strings.Contains(out, "set full-") {
		t.Errorf("status after a backup: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
