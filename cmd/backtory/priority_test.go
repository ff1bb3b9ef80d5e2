package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// TestNiceAndIONiceFromConfig runs a backup with the built binary (it
// cannot be undone in the test process) whose config sets nice and
// ionice: its pre_backup hook, a child of one of its threads, must run
// with both.
func TestNiceAndIONiceFromConfig(t *testing.T) {
	testenv.NeedTool(t, "ionice")
	testenv.NeedRoot(t, "a config with hooks must be owned by root")
	bin := buildStatic(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTestFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	out := filepath.Join(dir, "prio")
	hook := `sed 's/.*) //' /proc/$$/stat | cut -d' ' -f17 > ` + out + `; ionice -p $$ >> ` + out
	cfg := writeConfig(t, dir, src, "nice: 7\nionice: best-effort:6\nhooks:\n  pre_backup: [\""+hook+"\"]\n")
	if b, err := exec.Command(bin, "backup", "--quiet", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("backup: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "7\nbest-effort: prio 6\n"; string(got) != want {
		t.Fatalf("the hook ran with nice and ionice %q, want %q", got, want)
	}
	// Without the settings the hook runs as the test does.
	cfg = writeConfig(t, dir, src, "hooks:\n  pre_backup: [\""+hook+"\"]\n")
	if b, err := exec.Command(bin, "backup", "--quiet", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("backup: %v\n%s", err, b)
	}
	if got, _ := os.ReadFile(out); strings.HasPrefix(string(got), "7\n") {
		t.Fatalf("without nice: in the config the hook ran with %q", got)
	}
}
