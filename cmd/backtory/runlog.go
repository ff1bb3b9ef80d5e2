package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/backtory/backtory/hooks"
	"github.com/backtory/backtory/state"
)

// maxRunLogLines bounds the log lines kept for a run's records.
const maxRunLogLines = 300

// runLog keeps the info, warning and error lines a backup logs, as the
// text log writes them, for the run records uploaded beside the sets: the
// dashboard shows them for failed and warning runs. Each line remembers
// the source it was logged for ("" for the run as a whole); only the last
// maxRunLogLines are kept.
type runLog struct {
	mu      sync.Mutex
	lines   []runLogLine
	dropped int
}

type runLogLine struct{ source, text string }

// capture returns a logger that logs to log and also keeps the lines.
func (l *runLog) capture(log *slog.Logger) *slog.Logger {
	h := &runLogHandler{next: log.Handler(), sink: &runLogSink{log: l}}
	h.text = newLineHandler(h.sink, slog.LevelInfo, true)
	return slog.New(h)
}

// lines returns the kept lines of source and of the run as a whole.
func (l *runLog) of(source string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.lines {
		if ln.source == "" || ln.source == source {
			out = append(out, ln.text)
		}
	}
	return out
}

func (l *runLog) add(source, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == maxRunLogLines {
		copy(l.lines, l.lines[1:])
		l.lines = l.lines[:len(l.lines)-1]
		l.dropped++
	}
	l.lines = append(l.lines, runLogLine{source, text})
}

// runLogSink receives the formatted lines of one logger (one source).
type runLogSink struct {
	log    *runLog
	source string
}

func (s *runLogSink) Write(p []byte) (int, error) {
	s.log.add(s.source, strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// runLogHandler passes records to next and keeps info and above.
type runLogHandler struct {
	next slog.Handler
	text *lineHandler
	sink *runLogSink
}

func (h *runLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *runLogHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r.Clone())
	}
	if r.Level >= slog.LevelInfo {
		h.text.Handle(ctx, r)
	}
	return err
}

func (h *runLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &runLogHandler{next: h.next.WithAttrs(as), sink: h.sink}
	for _, a := range as {
		if a.Key == "source" {
			n.sink = &runLogSink{log: h.sink.log, source: a.Value.String()}
		}
	}
	t := h.text.WithAttrs(as).(*lineHandler)
	t.w = n.sink
	n.text = t
	return n
}

func (h *runLogHandler) WithGroup(name string) slog.Handler {
	t := h.text.WithGroup(name).(*lineHandler)
	return &runLogHandler{next: h.next.WithGroup(name), text: t, sink: h.sink}
}

// publishRun uploads a source's run record beside its sets (for backtory
// serve), with the log lines of a failed or warning run. A run that could
// not reach the remote has nowhere to put it.
func (r *backupRun) publishRun(ctx context.Context, s *Source, rec state.Run) {
	if r.b == nil {
		return
	}
	rec.LastSuccess, rec.LastFailure = nil, nil
	if rec.Outcome != hooks.StatusSuccess {
		rec.Log = r.runLog.of(s.Name)
	}
	raw, err := json.Marshal(rec)
	if err == nil {
		err = r.repository(s).PutRunRecord(ctx, rec.SetID, rec.Started, raw)
	}
	if err != nil {
		r.log.Warn("cannot upload the run record for backtory serve", "source", s.Name, "err", err)
	}
}
