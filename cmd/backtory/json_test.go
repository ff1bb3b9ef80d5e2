package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// decodeLines reads one JSON object per line of out into a T each, strict:
// a field docs/json.md does not name is an error.
func decodeLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		res = append(res, v)
	}
	return res
}

// TestJSONResults runs backup, restore, verify and prune with --json and
// reads their results back: one object per source, numbers as numbers.
func TestJSONResults(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("x"), 100000), 0o644)
	cfg := writeConfig(t, dir, src, "policy:\n  keep_fulls: 1\n")

	code, out, stderr := backtoryOut(t, "backup", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	b := decodeLines[backupJSON](t, out)
	if len(b) != 1 || b[0].Source != "root" || b[0].Outcome != "success" || b[0].Kind != "full" ||
		b[0].Files != 2 || b[0].Bytes != 100020 || b[0].ReadBytes != 100020 || b[0].StoredBytes <= 0 || b[0].Set == "" {
		t.Errorf("backup --json: %+v", b)
	}
	// A number is a JSON number, not a string.
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	if _, ok := raw["files"].(float64); !ok {
		t.Errorf("files is %T in %s", raw["files"], out)
	}

	os.WriteFile(filepath.Join(src, "etc", "hosts"), []byte("127.0.0.1 localhost changed\n"), 0o644)
	_, out, _ = backtoryOut(t, "backup", "--config", cfg, "--json", "--diff")
	if d := decodeLines[backupJSON](t, out); len(d) != 1 || d[0].Kind != "diff" || d[0].Changed < 1 || d[0].ReadBytes != 28 || d[0].Bytes != 100028 {
		t.Errorf("a differential's --json: %+v", d)
	}

	code, out, stderr = backtoryOut(t, "restore", "--config", cfg, "--json", "--to", filepath.Join(dir, "r"))
	r := decodeLines[restoreJSON](t, out)
	if code != 0 || len(r) != 1 || r[0].Entries < 3 || r[0].Bytes != 100028 || r[0].Target != filepath.Join(dir, "r") {
		t.Errorf("restore --json (exit %d, %s): %+v", code, stderr, r)
	}

	code, out, stderr = backtoryOut(t, "verify", "--config", cfg, "--json", "--deep")
	v := decodeLines[verifyJSON](t, out)
	if code != 0 || len(v) != 1 || v[0].Checked != 2 || len(v[0].Damaged) != 0 || !v[0].Deep {
		t.Errorf("verify --json (exit %d, %s): %+v", code, stderr, v)
	}

	time.Sleep(time.Second) // set ids are to the second
	if code, _, stderr := backtoryOut(t, "backup", "--config", cfg, "--json", "--full"); code != 0 {
		t.Fatalf("a second full: exit %d: %s", code, stderr)
	}
	code, out, stderr = backtoryOut(t, "prune", "--config", cfg, "--json", "--dry-run")
	p := decodeLines[pruneJSON](t, out)
	if code != 0 || len(p) != 1 || p[0].Sets != 3 || len(p[0].Deleted)+len(p[0].Kept) != 3 || len(p[0].Deleted) != 2 || !p[0].DryRun {
		t.Errorf("prune --json (exit %d, %s): %+v", code, stderr, p)
	}
}

// TestJSONLog: --log-format json writes one object a line, numbers as
// numbers, to stderr and to the log file.
func TestJSONLog(t *testing.T) {
	dir := t.TempDir()
	src := sampleTree(t, 0)
	cfg := writeConfig(t, dir, src, "")
	logFile := filepath.Join(dir, "log.json")
	code, _, stderr := backtoryOut(t, "backup", "--config", cfg, "--log-format", "json", "--log-file", logFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lf, _ := os.ReadFile(logFile)
	for name, text := range map[string]string{"stderr": stderr, "log file": string(lf)} {
		var done map[string]any
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: line %q: %v", name, l, err)
			}
			if m["msg"] == "backup done" {
				done = m
			}
		}
		for _, k := range []string{"files", "changed", "bytes", "read", "stored", "seconds", "warnings"} {
			if _, ok := done[k].(float64); !ok {
				t.Errorf("%s: %s is %T in %v", name, k, done[k], done)
			}
		}
		if done["kind"] != "full" || done["why"] == "" || done["time"] == nil {
			t.Errorf("%s: summary %v", name, done)
		}
	}
}
