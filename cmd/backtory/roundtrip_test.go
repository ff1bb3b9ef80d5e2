package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/treecmp"
)

// backtory runs the CLI in-process and returns its exit code and stderr;
// its stdout goes to the test log.
func backtory(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, stdout, stderr := backtoryOut(t, args...)
	if stdout != "" {
		t.Logf("backtory %s:\n%s", args[0], stdout)
	}
	return code, stderr
}

// backtoryOut runs the CLI in-process and returns its exit code, stdout
// and stderr.
func backtoryOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out := backtory(t, args...)
	if code != 0 {
		t.Fatalf("backtory %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// writeConfig writes a config for one source at src with a local remote.
func writeConfig(t *testing.T, dir, src, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + src + "\n" +
		"remote:\n  url: file://" + filepath.Join(dir, "remote") + "\n" +
		"volume_size: 1MiB\n" + extra
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func sampleTree(t *testing.T, big int64) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.BuildSample(src, treecmp.SampleOptions{BigSparse: big}); err != nil {
		t.Fatal(err)
	}
	return src
}

func assertSameTree(t *testing.T, a, b string, skip ...string) {
	t.Helper()
	diffs, err := treecmp.Diff(a, b, treecmp.Options{IgnoreRootMeta: false, SkipPrefixes: skip})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

// TestRoundTripEveryKindOfFile backs up a tree holding every kind of file
// with the CLI, restores it whole and in part, and verifies it: the CLI's
// wiring (archive's tests check the round trip itself, big sparse files and
// partial restores included).
func TestRoundTripEveryKindOfFile(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg)
	out := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	mustRun(t, "verify", "--config", cfg, "--deep")

	// Restoring a part: the paths are the arguments.
	part := filepath.Join(dir, "part")
	mustRun(t, "restore", "--config", cfg, "--to", part, "etc", "/links/z/c")
	for _, p := range []string{"etc/hosts", "etc/text.conf", "links/z/c"} {
		if _, err := os.Lstat(filepath.Join(part, p)); err != nil {
			t.Errorf("partial restore: %v", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(part, "data")); err == nil {
		t.Error("partial restore wrote a path that was not asked for")
	}
}

// copyDir saves a tree with cp -a.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	return dst
}
