package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// TestHelp: --help, -h and help CMD print that command's help to stdout
// and exit 0; no command at all is a usage error.
func TestHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "usage: backtory COMMAND"},
		{[]string{"help"}, "usage: backtory COMMAND"},
		{[]string{"backup", "--help"}, "usage: backtory backup [flags]"},
		{[]string{"backup", "-h"}, "--dry-run"},
		{[]string{"help", "backup"}, "usage: backtory backup [flags]"},
		{[]string{"help", "ls"}, "usage: backtory ls [flags] [PATH...]"},
		{[]string{"help", "key"}, "backtory key generate"},
		{[]string{"help", "key", "generate"}, "usage: backtory key generate [flags]"},
		{[]string{"help", "delta"}, "backtory delta patch"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := backtoryOut(t, c.args...)
			if code != exitOK || !strings.Contains(stdout, c.want) || stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q on stdout", code, stdout, stderr, c.want)
			}
		})
	}
	if code, stdout, stderr := backtoryOut(t); code != exitUsage || stdout != "" || !strings.Contains(stderr, "usage:") {
		t.Errorf("no command: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := backtoryOut(t, "help", "bakcup"); code != exitUsage || !strings.Contains(stderr, `unknown command "bakcup"`) {
		t.Errorf("help of an unknown command: exit %d, %q", code, stderr)
	}
}

// TestExtraArguments: a command that takes no arguments refuses them
// (exit 2) before reading the config.
func TestExtraArguments(t *testing.T) {
	for _, args := range [][]string{
		{"list", "extra"}, {"verify", "full-x"}, {"prune", "now"}, {"init", "/"},
		{"version", "x"}, {"backup", "--config", "/nonexistent", "x"},
	} {
		code, _, stderr := backtoryOut(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "takes no arguments") {
			t.Errorf("backtory %s: exit %d, %q", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestVersionOfAPlainBuild: a plain `go build` in a git checkout (no
// -ldflags) reports the commit it was built from, not "dev". The test
// copies the module into a fresh repository: Go stamps no VCS data in a
// git worktree.
func TestVersionOfAPlainBuild(t *testing.T) {
	git := testenv.NeedTool(t, "git")
	repo := t.TempDir()
	sh := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = repo
		cmd.Env = append(cmd.Environ(), "GOFLAGS=-buildvcs=true", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sh("sh", "-c", "tar -C "+root+" --exclude=.git --exclude=./backtory --exclude=./cmd/backtory/backtory --exclude=./build -cf - . | tar -xf -")
	sh(git, "init", "-q")
	sh(git, "add", ".")
	sh(git, "commit", "-qm", "test")
	rev := sh(git, "rev-parse", "HEAD")[:12]
	sh("go", "build", "-o", "bt", "./cmd/backtory")
	got := sh("./bt", "--version")
	if !strings.HasPrefix(got, "backtory ") || !strings.Contains(got, rev) || strings.Contains(got, "dirty") {
		t.Errorf("--version: %q; want the revision %s", got, rev)
	}
}
