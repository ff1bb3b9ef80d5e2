package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// lineHandler is the text log: one line per record,
//
//	[<PRIORITY>][TIME ]backtory: [debug: |warning: |error: ]message key=value ...
//
// for people reading a terminal, a log file or a mail from cron. Strings
// (and errors, by their message) are quoted, numbers and booleans written
// as they are; groups prefix their keys ("g.key"). For the systemd journal
// each line starts with its sd-daemon priority ("<3>" error, "<4>"
// warning, "<6>" info, "<7>" debug; sd-daemon(3)), which journald strips.
type lineHandler struct {
	mu       *sync.Mutex
	w        io.Writer
	level    slog.Leveler
	withTime bool   // start each line with the record's time (RFC 3339)
	journal  bool   // start each line with its sd-daemon priority
	prefix   string // the open groups, "g1.g2."
	attrs    string // preformatted attributes of WithAttrs
}

func newLineHandler(w io.Writer, level slog.Leveler, withTime bool) *lineHandler {
	return &lineHandler{mu: &sync.Mutex{}, w: w, level: level, withTime: withTime}
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.journal {
		b.WriteString(journalPriority(r.Level))
	}
	if h.withTime && !r.Time.IsZero() {
		b.WriteString(r.Time.Format(time.RFC3339) + " ")
	}
	b.WriteString("backtory: ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	case r.Level < slog.LevelInfo:
		b.WriteString("debug: ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	var b strings.Builder
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	n.attrs += b.String()
	return &n
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix += name + "."
	return &n
}

// journalPriority is the sd-daemon prefix of a record of level l.
func journalPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// appendAttr writes " key=value" for a, and for each attribute of a group.
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range v.Group() {
			appendAttr(b, prefix, ga)
		}
		return
	}
	if a.Equal(slog.Attr{}) {
		return
	}
	b.WriteString(" " + prefix + a.Key + "=")
	switch v.Kind() {
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool:
		b.WriteString(v.String())
	case slog.KindDuration:
		b.WriteString(v.Duration().String())
	case slog.KindTime:
		b.WriteString(v.Time().Format(time.RFC3339Nano))
	default:
		b.WriteString(strconv.Quote(v.String()))
	}
}
