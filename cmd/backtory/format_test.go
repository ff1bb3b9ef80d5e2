package main

// Sets across versions: a set of a newer format is refused with one clear
// line, and the sets in testdata/format1 (a sealed full and differential
// written by the format-1 code, kept as fixtures) restore exactly.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
)

func TestNewerFormatSetRefused(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg, "--full")
	manifests, _ := filepath.Glob(filepath.Join(dir, "remote", "testhost", "root", "full-*", "manifest.json"))
	if len(manifests) != 1 {
		t.Fatalf("want one manifest, got %v", manifests)
	}
	b, err := os.ReadFile(manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	cur, next := fmt.Sprintf(`"format": %d,`, archive.FormatVersion), fmt.Sprintf(`"format": %d,`, archive.FormatVersion+1)
	newer := bytes.Replace(b, []byte(cur), []byte(next), 1)
	if bytes.Equal(newer, b) {
		t.Fatalf("no %s in the manifest: %.200s", cur, b)
	}
	if err := os.WriteFile(manifests[0], newer, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"list"},
		{"restore", "--to", filepath.Join(dir, "restored")},
		{"verify"},
	} {
		code, _, stderr := backtoryOut(t, append(args, "--config", cfg, "--quiet")...)
		if code != exitFailed {
			t.Errorf("%s of a set of a newer format: exit %d, want %d\n%s", args[0], code, exitFailed, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		want := fmt.Sprintf("format %d is not supported by this version (want 1..%d): upgrade backtory", archive.FormatVersion+1, archive.FormatVersion)
		if !strings.Contains(last, want) {
			t.Errorf("%s of a set of a newer format: the message is not clear:\n%s", args[0], stderr)
		}
	}
}

// format1 is the fixture: a sealed full, then a differential after a
// change, of a small tree, written by `BACKTORY_WRITE_FIXTURE=1 go test
// -run TestFormat1Fixture` with the format-1 code. Never regenerate it to
// make the test pass: it stands for the sets already on users' remotes.
const format1 = "testdata/format1"

// fixtureTree writes the fixture's source tree in its first (diff false)
// or second state, with fixed times.
func fixtureTree(t *testing.T, src string, diff bool) {
	t.Helper()
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	files := map[string]string{
		"etc/hostname":   "fixture\n",
		"etc/app.conf":   strings.Repeat("setting = value\n", 200),
		"srv/data.bin":   strings.Repeat("0123456789abcdef", 4096),
		"srv/old.txt":    "deleted in the differential\n",
		"home/a/notes":   "notes\n",
		"home/a/.hidden": "hidden\n",
	}
	if diff {
		files["etc/app.conf"] = strings.Repeat("setting = value\n", 100) + "changed = yes\n" + strings.Repeat("setting = value\n", 99)
		files["srv/new.txt"] = "added in the differential\n"
		delete(files, "srv/old.txt")
	}
	os.RemoveAll(src)
	for p, c := range files {
		writeTestFile(t, filepath.Join(src, p), []byte(c), 0o644)
	}
	if err := os.Symlink("../etc/hostname", filepath.Join(src, "srv/link")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "home/a/notes"), 0o600)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			os.Chtimes(p, when, when)
		}
		return nil
	})
}

// describeTree lists a tree: path, type, mode, mtime, size, content hash,
// link target, sorted.
func describeTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %s %d %x", fi.ModTime().UTC().Format(time.RFC3339), fi.Size(), sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// fixtureConfig writes a config that reads the fixture's remote (a copy)
// with its keys.
func fixtureConfig(t *testing.T, dir, fixture string) string {
	t.Helper()
	if out, err := exec.Command("cp", "-a", fixture+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	os.Chmod(filepath.Join(dir, "keys", "host.sec.asc"), 0o600)
	return writeConfig(t, dir, filepath.Join(dir, "src"), "encryption:\n  recipients: ["+filepath.Join(dir, "keys", "host.pub.asc")+"]\n"+
		"  signing_key: "+filepath.Join(dir, "keys", "host.sec.asc")+"\n")
}

func TestFormat1Fixture(t *testing.T) {
	if os.Getenv("BACKTORY_WRITE_FIXTURE") == "1" {
		writeFormat1Fixture(t)
	}
	dir := t.TempDir()
	cfg := fixtureConfig(t, dir, format1)
	sets, _ := filepath.Glob(filepath.Join(dir, "remote", "testhost", "root", "*-*"))
	if len(sets) != 2 {
		t.Fatalf("the fixture has %d sets, want a full and a differential: %v", len(sets), sets)
	}
	for _, set := range sets {
		id := filepath.Base(set)
		kind := strings.SplitN(id, "-", 2)[0]
		want, err := os.ReadFile(filepath.Join(format1, kind+".tree"))
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dir, "restored-"+kind)
		mustRun(t, "restore", "--config", cfg, "--set", id, "--to", to)
		if got := describeTree(t, to); got != string(want) {
			t.Errorf("the format-1 %s restores differently:\ngot\n%s\nwant\n%s", kind, got, want)
		}
	}
	mustRun(t, "verify", "--config", cfg, "--deep")
}

// writeFormat1Fixture writes testdata/format1 with the current code.
func writeFormat1Fixture(t *testing.T) {
	os.RemoveAll(format1)
	dir, err := filepath.Abs(format1)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "key", "generate", "--name", "fixture", "--email", "fixture@example.org",
		"--public", filepath.Join(dir, "keys", "host.pub.asc"), "--secret", filepath.Join(dir, "keys", "host.sec.asc"))
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	cfg := writeConfig(t, tmp, src, "encryption:\n  recipients: ["+filepath.Join(dir, "keys", "host.pub.asc")+"]\n"+
		"  signing_key: "+filepath.Join(dir, "keys", "host.sec.asc")+"\n")
	for _, kind := range []string{"full", "diff"} {
		fixtureTree(t, src, kind == "diff")
		mustRun(t, "backup", "--config", cfg, "--"+kind)
		writeTestFile(t, filepath.Join(dir, kind+".tree"), []byte(describeTree(t, src)), 0o644)
		time.Sleep(1100 * time.Millisecond) // set ids have a one-second resolution
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(tmp, "remote"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	// The recovery script and binary published beside the sets are not
	// part of the format, and the binary is big.
	extras, _ := filepath.Glob(filepath.Join(dir, "remote", "testhost", "root", "*"))
	for _, p := range extras {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			os.Remove(p)
		}
	}
}
