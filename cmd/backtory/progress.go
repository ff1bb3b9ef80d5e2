package main

// The progress of a backup, a restore or a deep verify: on a terminal,
// files, bytes, rate and ETA on one line of stderr, redrawn in place a few
// times a second; off a terminal, with --progress-interval, the same as a
// log line every interval.

import (
	"fmt"
	"io"
	"log/slog"
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

	// log and every, when set (Periodic), log the progress every interval
	// instead of drawing a line.
	log    *slog.Logger
	every  time.Duration
	logged time.Time

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

// Periodic makes p log its state to log every interval (for runs off a
// terminal: --progress-interval) instead of drawing a line.
func (p *progress) Periodic(log *slog.Logger, every time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log, p.every, p.enabled = log, every, true
}

// Shown reports whether p shows anything: a line on a terminal, or
// periodic log lines.
func (p *progress) Shown() bool { return p != nil && p.enabled }

// Start begins a new piece of work (a source's backup, a restore, one set
// of a verify): the counters, the clock and the totals start again.
// entries and bytes are the work expected, 0 when unknown.
func (p *progress) Start(entries int, bytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start, p.logged = p.now(), p.now()
	p.entries, p.bytes = 0, 0
	p.totalEntries, p.totalBytes = entries, bytes
}

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
	st := progressState{entries, bytes, p.totalEntries, p.totalBytes, now.Sub(p.start)}
	if p.log != nil {
		if now.Sub(p.logged) >= p.every {
			p.logged = now
			p.log.Info("progress", st.attrs()...)
		}
		return
	}
	if now.Sub(p.drawn) < redrawEvery {
		return
	}
	p.drawn = now
	fmt.Fprint(p.w, "\r"+formatProgress(st, p.width)+"\x1b[K")
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
	if p == nil || !p.enabled || p.log != nil {
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
	if p == nil || !p.enabled || p.log != nil {
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
//
// A total is the work known so far: when the work outgrows the estimate
// (files added since it was made) the total grows with it, so the line
// never shows more done than its total, nor more than 100%.
func formatProgress(s progressState, width int) string {
	s = s.grown()
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
	if left, ok := s.eta(); ok {
		b.WriteString("  ETA " + humanAge(left))
	}
	line := b.String()
	if width > 1 && len(line) > width-1 {
		line = line[:width-1]
	}
	return line
}

// grown returns s with its totals raised to the work done when it is more.
func (s progressState) grown() progressState {
	if s.totalEntries > 0 {
		s.totalEntries = max(s.totalEntries, s.entries)
	}
	if s.totalBytes > 0 {
		s.totalBytes = max(s.totalBytes, s.bytes)
	}
	return s
}

// eta is the time left at the rate so far, once a second has passed and
// some of a known total is done.
func (s progressState) eta() (time.Duration, bool) {
	done, ok := fractionDone(s.grown())
	if !ok || done <= 0 || s.elapsed < time.Second {
		return 0, false
	}
	return time.Duration(float64(s.elapsed) * (1 - done) / done), true
}

// attrs are s as log attributes, numbers as numbers: files, bytes, their
// totals when known, percent and eta_seconds when known.
func (s progressState) attrs() []any {
	s = s.grown()
	a := []any{"files", s.entries, "bytes", s.bytes}
	if s.totalEntries > 0 {
		a = append(a, "files_total", s.totalEntries)
	}
	if s.totalBytes > 0 {
		a = append(a, "bytes_total", s.totalBytes)
	}
	if done, ok := fractionDone(s); ok {
		a = append(a, "percent", int(done*100))
	}
	if left, ok := s.eta(); ok {
		a = append(a, "eta_seconds", int64(left.Seconds()))
	}
	return a
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
