package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestFormatProgress(t *testing.T) {
	for _, c := range []struct {
		s     progressState
		width int
		want  string
	}{
		{progressState{}, 0, "0 files  0 B"},
		{progressState{entries: 1234, bytes: 3 << 20, elapsed: 500 * time.Millisecond}, 80, "1234 files  3.0 MiB"},
		{progressState{entries: 1234, bytes: 30 << 20, elapsed: 10 * time.Second}, 80, "1234 files  30.0 MiB  3.0 MiB/s"},
		{progressState{entries: 10, bytes: 1 << 30, totalEntries: 40, totalBytes: 4 << 30, elapsed: 20 * time.Second}, 0,
			"10/40 files  1.0 GiB/4.0 GiB  25%  51.2 MiB/s  ETA 1m"},
		{progressState{entries: 10, totalEntries: 40, elapsed: 20 * time.Second}, 0,
			"10/40 files  0 B  25%  0 B/s  ETA 1m"},
		{progressState{entries: 0, totalEntries: 40, elapsed: 20 * time.Second}, 0,
			"0/40 files  0 B  0%  0 B/s"},
		{progressState{entries: 50, bytes: 5 << 30, totalEntries: 40, totalBytes: 4 << 30, elapsed: 20 * time.Second}, 0,
			"50/50 files  5.0 GiB/5.0 GiB  100%  256.0 MiB/s  ETA 0s"},
		{progressState{entries: 1234, bytes: 30 << 20, elapsed: 10 * time.Second}, 12, "1234 files "},
	} {
		if got := formatProgress(c.s, c.width); got != c.want {
			t.Errorf("formatProgress(%+v, %d) = %q, want %q", c.s, c.width, got, c.want)
		}
	}
}

// pipe returns a pipe and a function that closes its write end and returns
// all that was written.
func progressPipe(t *testing.T) (*os.File, func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		done <- string(b)
	}()
	return w, func() string { w.Close(); return <-done }
}

func TestProgressDisabledPrintsNothing(t *testing.T) {
	w, output := progressPipe(t)
	p := newProgress(w, false)
	p.SetTotal(10, 1<<20)
	for i := range 1000 {
		p.Update(i, int64(i)<<10)
	}
	fmt.Fprint(p.Writer(w), "log line\n")
	p.Done()
	if got := output(); got != "log line\n" {
		t.Errorf("a disabled progress wrote %q", got)
	}
}

func TestProgressRedraws(t *testing.T) {
	w, output := progressPipe(t)
	p := newProgress(w, true)
	clock := p.start
	p.now = func() time.Time { return clock }
	step := func(d time.Duration, entries int, bytes int64) {
		clock = clock.Add(d)
		p.Update(entries, bytes)
	}
	step(time.Second, 1, 1<<20)             // drawn
	step(100*time.Millisecond, 2, 2<<20)    // too soon
	step(100*time.Millisecond, 3, 3<<20)    // too soon
	step(100*time.Millisecond, 4, 4<<20)    // drawn
	fmt.Fprint(p.Writer(w), "a log line\n") // clears first
	step(time.Millisecond, 5, 5<<20)        // drawn again at once, below the log line
	p.SetTotal(10, 10<<20)
	step(time.Second, 10, 10<<20)
	p.Done()
	p.Done() // nothing more to clear
	const clr = "\r\x1b[K"
	want := "\r1 files  1.0 MiB  1.0 MiB/s\x1b[K" +
		"\r4 files  4.0 MiB  3.1 MiB/s\x1b[K" +
		clr + "a log line\n" +
		"\r5 files  5.0 MiB  3.8 MiB/s\x1b[K" +
		"\r10/10 files  10.0 MiB/10.0 MiB  100%  4.3 MiB/s  ETA 0s\x1b[K" +
		clr
	if got := output(); got != want {
		t.Errorf("progress wrote\n%q\nwant\n%q", got, want)
	}
}

// TestProgressOnTerminal draws on a real pseudo-terminal: the line is cut
// to the terminal's width.
func TestProgressOnTerminal(t *testing.T) {
	master, slave := openPty(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 20}); err != nil {
		t.Fatal(err)
	}
	if !isTerminal(slave) || termWidth(slave) != 20 {
		t.Fatalf("pty: terminal %v, width %d", isTerminal(slave), termWidth(slave))
	}
	p := newProgress(slave, true)
	p.SetTotal(100, 100<<30)
	p.start = time.Now().Add(-10 * time.Second)
	p.Update(12, 5<<30)
	p.Done()
	slave.Close()
	b, _ := io.ReadAll(master) // EIO once the slave is closed and drained
	want := "\r12/100 files  5.0 G\x1b[K\r\x1b[K"
	if string(b) != want {
		t.Errorf("on a 20-column terminal: %q, want %q", b, want)
	}
}

func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testenv.Need(t, fmt.Errorf("a pseudo-terminal (/dev/ptmx): %w", err), "")
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestProgressNilIsSafe(t *testing.T) {
	var p *progress
	p.Update(1, 1)
	p.SetTotal(1, 1)
	p.Done()
	var b strings.Builder
	fmt.Fprint(p.Writer(&b), "x")
	if b.String() != "x" {
		t.Error("a nil progress's Writer does not pass writes through")
	}
}

// BenchmarkProgressUpdate measures the cost of one Update, which the
// backup calls for every file.
func BenchmarkProgressUpdate(b *testing.B) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	for _, enabled := range []bool{false, true} {
		b.Run(fmt.Sprintf("enabled=%v", enabled), func(b *testing.B) {
			p := newProgress(null, enabled)
			p.SetTotal(1e6, 1<<40)
			for i := range b.N {
				p.Update(i, int64(i)<<12)
			}
		})
	}
}

// TestProgressInterval: off a terminal, --progress-interval logs the
// progress as log lines with numbers, and nothing draws a line.
func TestProgressInterval(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sampleTree(t, 0), "")
	code, _, stderr := backtoryOut(t, "backup", "--config", cfg, "--progress-interval", "1ns")
	if code != 0 || strings.Contains(stderr, "\r") {
		t.Fatalf("exit %d:\n%q", code, stderr)
	}
	re := regexp.MustCompile(`(?m)^\S+ backtory: progress files=\d+ bytes=\d+ files_total=\d+ bytes_total=\d+ percent=\d+`)
	if n := len(re.FindAllString(stderr, -1)); n < 2 {
		t.Errorf("%d progress lines:\n%s", n, stderr)
	}
	code, _, stderr = backtoryOut(t, "backup", "--config", cfg)
	if code != 0 || strings.Contains(stderr, "progress") {
		t.Errorf("without --progress-interval (exit %d):\n%s", code, stderr)
	}
}
