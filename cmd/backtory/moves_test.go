package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenamesCLI: files renamed in their directory, moved to a new one,
// and renamed then edited cost a delta each in the next differential
// (the run summary's stored bytes), and the CLI restores the tree.
func TestRenamesCLI(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	os.MkdirAll(filepath.Join(src, "big"), 0o755)
	rng := rand.NewChaCha8([32]byte{19})
	for _, name := range []string{"a", "b", "c"} {
		data := make([]byte, 3<<20)
		rng.Read(data)
		if err := os.WriteFile(filepath.Join(src, "big", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "backup", "--config", cfg)
	os.Rename(filepath.Join(src, "big", "a"), filepath.Join(src, "big", "a.renamed"))
	os.MkdirAll(filepath.Join(src, "moved", "deeper"), 0o755)
	os.Rename(filepath.Join(src, "big", "b"), filepath.Join(src, "moved", "deeper", "b"))
	os.Rename(filepath.Join(src, "big", "c"), filepath.Join(src, "c.edited"))
	f, err := os.OpenFile(filepath.Join(src, "c.edited"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("edited"), 1<<20)
	f.Close()
	code, stdout, stderr := backtoryOut(t, "backup", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("differential: exit %d\n%s", code, stderr)
	}
	var res backupJSON
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, stdout)
	}
	if res.Kind != "diff" || res.Scan != "walk" || res.StoredBytes > 256<<10 {
		t.Errorf("the differential of three moved 3 MiB files: %+v, want a diff by walk under 256 KiB", res)
	}
	out := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	mustRun(t, "verify", "--config", cfg, "--deep")
}
