package main

import (
	"bytes"
	"io"
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
	capture := func(f **os.File) (restore func() string) {
		r, w, _ := os.Pipe()
		old := *f
		*f = w
		done := make(chan string)
		go func() {
			b, _ := io.ReadAll(r)
			done <- string(b)
		}()
		return func() string {
			w.Close()
			*f = old
			return <-done
		}
	}
	endOut := capture(&os.Stdout)
	endErr := capture(&os.Stderr)
	code := run(args)
	return code, endOut(), endErr()
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
// with the CLI, restores it, and compares entry by entry.
func TestRoundTripEveryKindOfFile(t *testing.T) {
	big := int64(0)
	if !testing.Short() {
		big = 4<<30 + 12345 // past 4 GiB, sparse
	}
	src := sampleTree(t, big)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg)
	out := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	mustRun(t, "verify", "--config", cfg, "--deep")

	// Restoring a part: one directory and a hardlink whose first name is elsewhere.
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
	if b, _ := os.ReadFile(filepath.Join(part, "links/z/c")); string(b) != "linked content\n" {
		t.Errorf("partial restore of a hardlink: got %q", b)
	}
}

// TestStockToolsRestoreVolumes extracts the volumes with zstd and tar alone
// (GNU tar and bsdtar) and compares the trees.
func TestStockToolsRestoreVolumes(t *testing.T) {
	needTool(t, "zstd")
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg)
	vols, _ := filepath.Glob(filepath.Join(dir, "remote/testhost/root/full-*/vol-*.tar.zst"))
	if len(vols) < 2 {
		t.Fatalf("want several volumes, got %d", len(vols))
	}
	for _, tool := range []struct{ name, extract string }{
		{"tar", "tar --xattrs --xattrs-include=* --acls --numeric-owner -xpf - -C"},
		{"bsdtar", "LC_ALL=C.UTF-8 bsdtar --xattrs --acls --numeric-owner -xpf - -C"},
	} {
		t.Run(tool.name, func(t *testing.T) {
			needTool(t, tool.name)
			out := filepath.Join(t.TempDir(), "out")
			os.Mkdir(out, 0o755)
			for _, v := range vols {
				cmd := exec.Command("sh", "-c", "zstd -dc < \"$1\" | "+tool.extract+" \"$2\"", "sh", v, out)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s: %v\n%s", v, err, stderr.String())
				}
			}
			// Stock tools restore content, links, modes and owners; they do
			// not restore sparseness from our plain entries, and the root's
			// and directories' mtimes depend on extraction order.
			diffs, err := treecmp.Diff(src, out, treecmp.Options{IgnoreRootMeta: true, IgnoreDirMTime: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				if strings.Contains(d, "sparse") {
					continue
				}
				t.Error(d)
			}
		})
	}
}

// needTool skips (or under BACKTORY_TEST_STRICT fails) when a tool is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("BACKTORY_TEST_STRICT") != "" {
			t.Fatalf("%s is not installed (test/deps/*.sh installs it)", name)
		}
		t.Skipf("%s is not installed", name)
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
