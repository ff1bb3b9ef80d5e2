package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// frame is one drawing of the progress line.
type frame struct {
	files, filesTotal int
	bytes, bytesTotal float64 // in bytes, from the human form
	total             string  // the bytes total as shown
	percent           int     // -1: not shown
	eta               bool
}

var frameRE = regexp.MustCompile(`^(\d+)(?:/(\d+))? files  ([\d.]+ [KMGTPE]?i?B)(?:/([\d.]+ [KMGTPE]?i?B))?(?:  (\d+)%)?(?:  [\d.]+ [KMGTPE]?i?B/s)?(  ETA \S+)?$`)

// parseFrames reads the progress frames out of what the terminal got:
// each is "\r" LINE "\x1b[K"; log lines in between are skipped.
func parseFrames(t *testing.T, out string) []frame {
	t.Helper()
	var fs []frame
	for _, part := range strings.Split(out, "\r") {
		line, ok := strings.CutSuffix(part, "\x1b[K")
		if !ok || line == "" {
			continue
		}
		m := frameRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("a frame that does not parse: %q", line)
			continue
		}
		f := frame{percent: -1, eta: m[6] != "", total: m[4]}
		f.files, _ = strconv.Atoi(m[1])
		f.filesTotal, _ = strconv.Atoi(m[2])
		f.bytes, f.bytesTotal = humanToBytes(m[3]), humanToBytes(m[4])
		if m[5] != "" {
			f.percent, _ = strconv.Atoi(m[5])
		}
		fs = append(fs, f)
	}
	return fs
}

func humanToBytes(s string) float64 {
	if s == "" {
		return 0
	}
	num, unit, _ := strings.Cut(s, " ")
	v, _ := strconv.ParseFloat(num, 64)
	if i := strings.IndexByte("KMGTPE", unit[0]); i >= 0 {
		for range i + 1 {
			v *= 1024
		}
	}
	return v
}

// checkFrames checks one source's frames: never more done than the total,
// never over 100%, monotonic, and an ETA once the run took a second. The
// total may be missing from the first frames only: it is estimated while
// the work starts.
func checkFrames(t *testing.T, what string, fs []frame, least int, needETA bool) {
	t.Helper()
	if len(fs) < least {
		t.Fatalf("%s: %d frames", what, len(fs))
	}
	eta, known := false, false
	for i, f := range fs {
		if f.percent > 100 || (f.filesTotal > 0 && f.files > f.filesTotal) || (f.bytesTotal > 0 && f.bytes > f.bytesTotal*1.001) {
			t.Errorf("%s: frame %d overflows: %+v", what, i, f)
		}
		if f.percent >= 0 && f.bytesTotal > 0 {
			known = true
		} else if known {
			t.Errorf("%s: frame %d lost its total: %+v", what, i, f)
		}
		if i > 0 && (f.files < fs[i-1].files || f.bytes < fs[i-1].bytes || f.percent < fs[i-1].percent) {
			t.Errorf("%s: frame %d goes back: %+v after %+v", what, i, f, fs[i-1])
		}
		eta = eta || f.eta
	}
	if !known {
		t.Errorf("%s: no frame has a total: %+v", what, fs)
	}
	if needETA && !eta {
		t.Errorf("%s: no frame has an ETA: %+v", what, fs)
	}
}

// TestProgressFramesOnPty runs backups and a restore on a pseudo-terminal
// and reads the frames the terminal got: a full with two sources (the
// second starts again from 0), then a differential whose total is what
// it reads, not the full's size. Each run is frozen for a second and a
// half while it reads its big file, so that the frames after it have an
// ETA whatever the machine's speed.
func TestProgressFramesOnPty(t *testing.T) {
	bin := sigBuild(t)
	dir := t.TempDir()
	mk := func(name string) string {
		src := filepath.Join(dir, name)
		os.MkdirAll(filepath.Join(src, "small"), 0o755)
		big := make([]byte, 16<<20)
		rand.Read(big)
		os.WriteFile(filepath.Join(src, "a-big"), big, 0o644)
		for i := range 50 {
			os.WriteFile(filepath.Join(src, "small", fmt.Sprintf("f%02d", i)), bytes.Repeat([]byte{byte(i)}, 100<<10), 0o644)
		}
		return src
	}
	one, two := mk("one"), mk("two")
	cfg := filepath.Join(dir, "backtory.yaml")
	os.WriteFile(cfg, []byte("host: testhost\nstate_dir: "+filepath.Join(dir, "state")+"\n"+
		"sources:\n  - name: one\n    path: "+one+"\n  - name: two\n    path: "+two+"\n"+
		"remote:\n  url: file://"+filepath.Join(dir, "remote")+"\nvolume_size: 8MiB\n"), 0o600)

	// onPty runs bin with args, stderr on a terminal, frozen once it has
	// file open, and returns what the terminal got.
	onPty := func(file string, args ...string) string {
		master, slave := openPty(t)
		got := make(chan string)
		go func() {
			b, _ := io.ReadAll(master) // EIO once the slave side is closed by all
			got <- string(b)
		}()
		cmd := exec.Command(bin, args...)
		cmd.Stderr, cmd.Stdout = slave, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var out bytes.Buffer
		waitOpen(t, cmd.Process.Pid, file, &out)
		cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(1500 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGCONT)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("backtory %s: %v", args[0], err)
		}
		return <-got
	}

	// A full of two sources: log lines between them; the second source's
	// frames start again from 0.
	out := onPty(filepath.Join(one, "a-big"), "backup", "--config", cfg)
	i := strings.Index(out, `source="two"`)
	if i < 0 {
		t.Fatalf("no log line of source two:\n%q", out)
	}
	first, second := parseFrames(t, out[:i]), parseFrames(t, out[i:])
	checkFrames(t, "full, source one", first, 2, true)
	if len(second) == 0 || second[0].files >= first[len(first)-1].files || second[len(second)-1].bytesTotal > first[len(first)-1].bytesTotal*1.001 {
		t.Errorf("source two does not start again from 0 with its own total: %+v after %+v", second, first[len(first)-1])
	}
	if first[len(first)-1].total != "20.9 MiB" {
		t.Errorf("a first full's total is %q, want the tree's 20.9 MiB (a pre-count)", first[0].total)
	}

	// A differential: a-big changed; its total is a-big's size.
	f, _ := os.OpenFile(filepath.Join(one, "a-big"), os.O_WRONLY, 0)
	f.WriteAt([]byte("changed"), 1<<20)
	f.Close()
	out = onPty(filepath.Join(one, "a-big"), "backup", "--config", cfg, "--source", "one")
	fs := parseFrames(t, out)
	checkFrames(t, "differential", fs, 2, true)
	for _, f := range fs {
		if f.total != "16.0 MiB" && f.total != "" {
			t.Errorf("a differential's total is %q, want the 16.0 MiB it reads", f.total)
			break
		}
	}

	// A restore and a deep verify show their progress too, with the set's
	// size as their total.
	restored := filepath.Join(dir, "restored")
	out = onPty(filepath.Join(restored, "a-big"), "restore", "--config", cfg, "--source", "one", "--to", restored)
	fs = parseFrames(t, out)
	checkFrames(t, "restore", fs, 2, true)
	if fs[0].total != "20.9 MiB" {
		t.Errorf("a restore's total is %q, want the set's 20.9 MiB", fs[0].total)
	}
	fulls, _ := filepath.Glob(filepath.Join(dir, "remote", "testhost", "one", "full-*"))
	if len(fulls) != 1 {
		t.Fatalf("fulls: %q", fulls)
	}
	out = onPty(filepath.Join(fulls[0], "vol-"), "verify", "--config", cfg, "--source", "one", "--deep", "--set", filepath.Base(fulls[0]))
	fs = parseFrames(t, out)
	// One pass decodes and checks; frozen at its first volume, the frames
	// after it have an ETA.
	checkFrames(t, "verify --deep", fs, 2, true)
	if fs[0].total != "20.9 MiB" {
		t.Errorf("a deep verify's total is %q, want the set's 20.9 MiB", fs[0].total)
	}
}
