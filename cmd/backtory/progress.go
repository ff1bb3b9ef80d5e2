package main

// The progress bar of a backup on a terminal: files, bytes, rate and ETA on
// one line of stderr, redrawn in place a few times a second.

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// newProgress returns a progress line drawn on w. When enabled is false it
// prints nothing at all; the caller enables it only when w is a terminal,
// the run is not --quiet and the log is not JSON, so the line never gets
// into logs or pipes.
func newProgress(w io.Writer, enabled bool) *progress {
	return &progress{w: w, enabled: enabled, start: time.Now(), now: time.Now, width: termWidth(w)}
}

// progress is the state of the line. Its methods may be called from any
// goroutine; Update is cheap enough to call for every file.
type progress struct {
	w       io.Writer
	enabled bool
	now     func() time.Time
	width   int // terminal columns; 0 when unknown

	mu           sync.Mutex
	start, drawn time.Time
	entries      int
	bytes        int64
	totalEntries int
	totalBytes   int64
	shown        bool // a line is on the screen
}

// redrawEvery is the least time between two redraws.
const redrawEvery = 250 * time.Millisecond

// Update records the work done so far (archive.BackupOptions.Progress) and
// redraws the line at most every redrawEvery.
func (p *progress) Update(entries int, bytes int64) {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries, p.bytes = entries, bytes
	now := p.now()
	if now.Sub(p.drawn) < redrawEvery {
		return
	}
	p.drawn = now
	line := formatProgress(progressState{entries, bytes, p.totalEntries, p.totalBytes, now.Sub(p.start)}, p.width)
	fmt.Fprint(p.w, "\r"+line+"\x1b[K")
	p.shown = true
}

// SetTotal sets the work expected, when known, for the percentage and ETA.
func (p *progress) SetTotal(entries int, bytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.totalEntries, p.totalBytes = entries, bytes
	p.mu.Unlock()
}

// Done clears the line; the next Update starts a new one.
func (p *progress) Done() {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.drawn = time.Time{}
}

// Writer returns a writer to w that clears the progress line before each
// write, so log lines printed to the same terminal do not run into it; the
// next Update draws the line again below them.
func (p *progress) Writer(w io.Writer) io.Writer {
	if p == nil || !p.enabled {
		return w
	}
	return progressWriter{p, w}
}

type progressWriter struct {
	p *progress
	w io.Writer
}

func (pw progressWriter) Write(b []byte) (int, error) {
	pw.p.mu.Lock()
	defer pw.p.mu.Unlock()
	pw.p.clear()
	pw.p.drawn = time.Time{} // redraw at the next Update
	return pw.w.Write(b)
}

// clear erases the line if one is shown; p.mu is held.
func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// progressState is what one drawing of the line shows.
type progressState struct {
	entries      int
	bytes        int64
	totalEntries int
	totalBytes   int64
	elapsed      time.Duration
}

// formatProgress renders the line, at most width-1 columns when width > 0
// (the last column would wrap on some terminals):
//
//	1234 files  1.2 GiB  45.6 MiB/s
//	1234/5000 files  1.2 GiB/4.0 GiB  30%  45.6 MiB/s  ETA 1m10s
func formatProgress(s progressState, width int) string {
	var b strings.Builder
	if s.totalEntries > 0 {
		fmt.Fprintf(&b, "%d/%d files", s.entries, s.totalEntries)
	} else {
		fmt.Fprintf(&b, "%d files", s.entries)
	}
	b.WriteString("  " + humanBytes(s.bytes))
	if s.totalBytes > 0 {
		b.WriteString("/" + humanBytes(s.totalBytes))
	}
	if done, ok := fractionDone(s); ok {
		fmt.Fprintf(&b, "  %d%%", int(done*100))
	}
	secs := s.elapsed.Seconds()
	if secs >= 1 {
		fmt.Fprintf(&b, "  %s/s", humanBytes(int64(float64(s.bytes)/secs)))
	}
	if done, ok := fractionDone(s); ok && done > 0 && secs >= 1 {
		left := time.Duration(float64(s.elapsed) * (1 - done) / done)
		b.WriteString("  ETA " + humanAge(left))
	}
	line := b.String()
	if width > 1 && len(line) > width-1 {
		line = line[:width-1]
	}
	return line
}

// fractionDone is the share of the work done, by bytes when their total is
// known, else by files.
func fractionDone(s progressState) (float64, bool) {
	var f float64
	switch {
	case s.totalBytes > 0:
		f = float64(s.bytes) / float64(s.totalBytes)
	case s.totalEntries > 0:
		f = float64(s.entries) / float64(s.totalEntries)
	default:
		return 0, false
	}
	return min(max(f, 0), 1), true
}

// termWidth returns w's terminal width in columns, or 0.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}
