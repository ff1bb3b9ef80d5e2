package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/archive/seal"
)

// TestInitSource: init --source PATH names the source after the path and
// writes the excludes that fall inside it; the config it writes works, and
// key list shows its keys with the host in their user id.
func TestInitSource(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, name, exclude string
	}{
		{"/", "root", `exclude: ["/proc/**", "/sys/**", "/dev/**", "/run/**", "/tmp/**", "/var/tmp/**", "/var/cache/**"]`},
		{"/var", "var", `exclude: ["/tmp/**", "/cache/**"]`},
		{"/srv/www/", "srv-www", "exclude: []"},
		{"/srv/my data", "srv-my_data", "exclude: []"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "backtory.yaml")
			mustRun(t, "init", "--config", cfg, "--source", c.path, "--host", "web1",
				"--remote", "file://"+dir+"/remote", "--state-dir", dir+"/state")
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "  - name: "+c.name+"\n") || !strings.Contains(string(b), c.exclude+"\n") {
				t.Errorf("config of --source %s:\n%s", c.path, b)
			}
		})
	}
	code, _, stderr := backtoryOut(t, "init", "--config", filepath.Join(t.TempDir(), "c.yaml"), "--source", "srv")
	if code != exitUsage || !strings.Contains(stderr, "give the absolute path") {
		t.Errorf("init --source srv: exit %d, %s", code, stderr)
	}

	// key list: every key of the config with its fingerprints and user id.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "backtory.yaml")
	mustRun(t, "init", "--config", cfg, "--source", dir, "--host", "web1", "--remote", "file://"+dir+"/remote", "--state-dir", dir+"/state")
	k, err := seal.ReadKeyFile(filepath.Join(dir, "keys", "host.pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "backtory web1 <root@" + host + ">"; k.UserID() != want {
		t.Errorf("the host key's user id is %q, want %q", k.UserID(), want)
	}
	code, stdout, stderr := backtoryOut(t, "key", "list", "--config", cfg)
	if code != exitOK {
		t.Fatalf("key list: exit %d, %s", code, stderr)
	}
	for _, want := range []string{
		"recipient " + filepath.Join(dir, "keys", "host.pub.asc") + " (public)\n  primary " + k.Fingerprint() + " backtory web1 <root@" + host + ">\n  subkey  ",
		"signing_key " + filepath.Join(dir, "keys", "host.sec.asc") + " (secret)\n  primary " + k.Fingerprint(),
		" encrypt\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("key list lacks %q:\n%s", want, stdout)
		}
	}
}
