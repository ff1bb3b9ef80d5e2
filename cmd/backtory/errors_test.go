package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: each bad input is one clear line on stderr and exit code 2.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o644)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	good := "host: h\nstate_dir: " + dir + "/state\nsources:\n  - name: s\n    path: " + src + "\nremote:\n  url: file://" + dir + "/remote\n"
	full := write("good.yaml", good)
	mustRun(t, "backup", "--config", full)
	notEmpty := filepath.Join(dir, "not-empty")
	os.Mkdir(notEmpty, 0o755)
	os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o644)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing config", []string{"backup", "--config", dir + "/nope.yaml"}, "no such file"},
		{"malformed YAML", []string{"backup", "--config", write("bad.yaml", "host: h\nsources: [\n")}, "bad.yaml:"},
		{"unknown key", []string{"backup", "--config", write("unknown.yaml", good+"colour: blue\n")}, "unknown.yaml:8: unknown key colour"},
		{"unknown nested key", []string{"backup", "--config", write("nested.yaml", strings.Replace(good, "    path:", "    pth: x\n    path:", 1))}, "nested.yaml:5: unknown key pth"},
		{"bad value", []string{"backup", "--config", write("size.yaml", good+"volume_size: lots\n")}, "size.yaml:8:"},
		{"bad compression", []string{"backup", "--config", write("comp.yaml", good+"compression: gzip\n")}, "comp.yaml:8: compression \"gzip\""},
		{"bad snapshot kind", []string{"backup", "--config", write("snap.yaml", strings.Replace(good, "    path:", "    snapshot: lvm2\n    path:", 1))}, "snap.yaml:5:"},
		{"relative source path", []string{"backup", "--config", write("rel.yaml", strings.Replace(good, "path: "+src, "path: src", 1))}, "rel.yaml:5: source s: path \"src\" must be an absolute path"},
		{"source path missing", []string{"backup", "--config", write("gone.yaml", strings.Replace(good, "path: "+src, "path: "+dir+"/gone", 1))}, "is not a directory that exists"},
		{"remote not writable", []string{"backup", "--config", write("ro.yaml", strings.Replace(good, "file://"+dir+"/remote", "file://"+aFile+"/remote", 1))}, "ro.yaml:7: remote directory"},
		{"unknown scheme", []string{"backup", "--config", write("scheme.yaml", strings.Replace(good, "file://", "gopher://", 1))}, "unsupported scheme"},
		{"sftp url without a host", []string{"backup", "--config", write("sftp.yaml", strings.Replace(good, "file://", "sftp://", 1))}, "the url needs a host"},
		{"unknown flag", []string{"backup", "--config", full, "--fulll"}, "unknown flag: --fulll"},
		{"unknown command", []string{"bakcup"}, "unknown command"},
		{"restore without --to", []string{"restore", "--config", full}, "--to DIR is required"},
		{"restore into a non-empty dir", []string{"restore", "--config", full, "--to", notEmpty}, "not empty (use --force"},
		{"bad time", []string{"restore", "--config", full, "--to", dir + "/r", "--at", "yesterday"}, "time \"yesterday\""},
		{"unknown set", []string{"restore", "--config", full, "--to", dir + "/r", "--set", "full-20000101T000000Z"}, "no set"},
		{"--full with --diff", []string{"backup", "--config", full, "--full", "--diff"}, "exclude each other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := backtory(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(notEmpty); len(entries) != 1 {
		t.Errorf("a refused restore changed the target: %d entries", len(entries))
	}
}
