package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLivePaths: ls and restore take a path as it is on the live system
// or inside the source; with several sources a live path picks its
// source; a path the set lacks is an error naming the nearest parent.
func TestLivePaths(t *testing.T) {
	dir := t.TempDir()
	etc := sampleTree(t, 0) // holds etc/hosts, etc/text.conf, ...
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(filepath.Join(other, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "www", "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + dir + "/state\nsources:\n" +
		"  - name: root\n    path: " + etc + "\n" +
		"  - name: web\n    path: " + other + "\n" +
		"remote:\n  url: file://" + dir + "/remote\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", cfg)

	ls := func(args ...string) (int, string, string) {
		return backtoryOut(t, append([]string{"ls", "--config", cfg}, args...)...)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a live path picks its source", []string{etc + "/etc/hosts"}, " etc/hosts\n"},
		{"the other source's live path", []string{other + "/www"}, " www/index.html\n"},
		{"a path inside the named source", []string{"--source", "root", "etc/hosts"}, " etc/hosts\n"},
		{"an absolute path inside the source", []string{"--source", "root", "/etc/hosts"}, " etc/hosts\n"},
		{"a live path with --source", []string{"--source", "web", other + "/www/index.html"}, " www/index.html\n"},
		{"the source's own path", []string{other}, " www/index.html\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := ls(c.args...)
			if code != exitOK || !strings.Contains(stdout, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, c.want)
			}
		})
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a missing path", []string{etc + "/etc/nosuch/file"},
			`has no "` + etc + `/etc/nosuch/file" (the nearest parent in the set is ` + etc + `/etc): paths are live paths under ` + etc + ` or relative to it`},
		{"several sources and a relative path", []string{"etc/hosts"}, `"etc/hosts" is in no source's path`},
		{"several sources, no path", nil, "say which with --source"},
		{"paths of two sources", []string{etc + "/etc", other + "/www"}, "give the paths of one source at a time"},
		{"--set with --at", []string{"--set", "full-20260101T000000Z", "--at", "2026-01-01", other}, "--set and --at exclude each other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := ls(c.args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, c.want)
			}
		})
	}

	// recovery-script covers every source; with several, the layout comes
	// from the source at / or the first.
	script := filepath.Join(dir, "recover.sh")
	mustRun(t, "recovery-script", "--config", cfg, "-o", script)
	if b, err := os.ReadFile(script); err != nil || !strings.Contains(string(b), other) || !strings.Contains(string(b), etc) {
		t.Errorf("recover.sh of several sources: %v; it lacks a source's path", err)
	}

	// restore takes the same paths, and refuses a missing one before
	// writing anything.
	to := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", to, etc+"/etc/hosts")
	if _, err := os.Stat(filepath.Join(to, "etc", "hosts")); err != nil {
		t.Errorf("restore of a live path: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	code, stderr := backtory(t, "restore", "--config", cfg, "--to", empty, etc+"/etc/hosts", etc+"/nope")
	if code != exitUsage || !strings.Contains(stderr, `has no "`+etc+`/nope"`) {
		t.Errorf("restore of a missing path: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Error("a refused restore created its target")
	}
}
