package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"golang.org/x/sys/unix"
)

// TestLineHandlerSlogtest checks the text handler against the standard
// library's handler conformance suite.
func TestLineHandlerSlogtest(t *testing.T) {
	var buf bytes.Buffer
	h := newLineHandler(&buf, slog.LevelInfo, true)
	results := func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			m, err := parseLogLine(line)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			out = append(out, m)
		}
		return out
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Fatal(err)
	}
}

// parseLogLine reads a line of lineHandler back into the map slogtest
// wants: time, level, msg, and attributes nested by their dotted keys.
func parseLogLine(line string) (map[string]any, error) {
	m := map[string]any{}
	if ts, rest, ok := strings.Cut(line, " backtory: "); ok {
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return nil, err
		}
		m[slog.TimeKey] = t
		line = "backtory: " + rest
	}
	rest, ok := strings.CutPrefix(line, "backtory: ")
	if !ok {
		return nil, errors.New("no backtory: prefix")
	}
	m[slog.LevelKey] = "INFO"
	for _, l := range []string{"debug", "warning", "error"} {
		if r, ok := strings.CutPrefix(rest, l+": "); ok {
			m[slog.LevelKey], rest = l, r
		}
	}
	// The message runs up to the first " key=".
	msg := rest
	if i := strings.Index(rest, "="); i >= 0 {
		msg = rest[:strings.LastIndex(rest[:i], " ")+1]
	}
	m[slog.MessageKey] = strings.TrimSuffix(msg, " ")
	rest = strings.TrimPrefix(rest[len(msg):], " ")
	for rest != "" {
		key, r, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, fmt.Errorf("no value in %q", rest)
		}
		var val string
		if strings.HasPrefix(r, `"`) {
			q, err := strconv.QuotedPrefix(r)
			if err != nil {
				return nil, err
			}
			val, _ = strconv.Unquote(q)
			r = r[len(q):]
		} else {
			val, r, _ = strings.Cut(r, " ")
			r = " " + r
		}
		rest = strings.TrimPrefix(r, " ")
		dst := m
		parts := strings.Split(key, ".")
		for _, g := range parts[:len(parts)-1] {
			sub, ok := dst[g].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dst[g] = sub
			}
			dst = sub
		}
		dst[parts[len(parts)-1]] = val
	}
	return m, nil
}

// TestLineHandlerValues: numbers stay numbers, errors are their message.
func TestLineHandlerValues(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newLineHandler(&buf, slog.LevelDebug, false))
	log.Warn("upload failed", "files", 316, "ratio", 0.5, "err", errors.New("connection refused"), "ok", false)
	log.Debug("detail", slog.Group("g", "n", 1))
	want := "backtory: warning: upload failed files=316 ratio=0.5 err=\"connection refused\" ok=false\n" +
		"backtory: debug: detail g.n=1\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}
}

// TestJournalStream: under systemd, with stderr connected to the journal
// (JOURNAL_STREAM names its device and inode), lines carry their
// sd-daemon priority and no timestamp (the journal has its own); anywhere
// else off a terminal they start with an RFC 3339 timestamp.
func TestJournalStream(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sampleTree(t, 0), "hooks:\n  post_backup:\n    - run: 'exit 3'\n      on_error: continue\n")
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var st unix.Stat_t
	unix.Fstat(int(stderr.Fd()), &st)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"backup", "--config", cfg}, &stdout, stderr); code != exitWarnings {
		t.Fatalf("exit %d", code)
	}
	b, _ := os.ReadFile(stderr.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^<6>backtory: writing a full source="root"`),
		regexp.MustCompile(`^<6>backtory: backup done source="root" .* files=\d+ `),
		regexp.MustCompile(`^<4>backtory: warning: post_backup hook "exit 3": exit status 3 \(on_error: continue\) phase="post_backup"$`),
		regexp.MustCompile(`^<4>backtory: warning: backup done with 1 warning: post_backup hook`),
	}
	if len(lines) != len(want) {
		t.Fatalf("stderr for the journal:\n%s", b)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %q does not match %s", lines[i], re)
		}
	}

	// Another file: not the journal.
	other, _ := os.Create(filepath.Join(dir, "other"))
	defer other.Close()
	run(context.Background(), []string{"backup", "--config", cfg}, &stdout, other)
	b, _ = os.ReadFile(other.Name())
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ backtory: writing a `).Match(b) {
		t.Errorf("off the journal and off a terminal:\n%s", b)
	}
}
