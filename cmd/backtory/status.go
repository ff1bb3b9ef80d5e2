package main

// The status command: how each source's last backup ended, for people and
// for monitoring (Nagios-style checks, systemd OnFailure=, cron).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/state"
)

func init() {
	register(command{name: "status", summary: "when and how each source's last backup ended (exit 1 when one is missing or too old)", run: runStatus,
		flags: func() *pflag.FlagSet { return statusFlags(new(globals), new(bool), new(string)) }})
}

// statusRow is one source in `backtory status --json`.
type statusRow struct {
	Source string `json:"source"`
	// OK is false when the source has no successful backup, or only one
	// older than --max-age; Problem then says what is wrong.
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	// LastSuccessAge is the age in seconds of the last successful backup.
	LastSuccessAge *float64 `json:"last_success_age_seconds,omitempty"`
	// LastRun is the last run (its last_success the last one that made a
	// set); absent when the source never ran.
	LastRun *state.Run `json:"last_run,omitempty"`
}

// statusFlags returns the flag set of status, bound to the given values
// (also for its help, man page and completions).
func statusFlags(g *globals, asJSON *bool, maxAge *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	g.register(fs)
	fs.BoolVar(asJSON, "json", false, "print JSON")
	fs.StringVar(maxAge, "max-age", "", "exit 1 when a source's last successful backup is older than this (e.g. 26h, 2d)")
	return fs
}

func runStatus(_ context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var asJSON bool
	var maxAgeFlag string
	fs := statusFlags(&g, &asJSON, &maxAgeFlag)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("status takes no arguments (got %q)", fs.Arg(0))
	}
	var maxAge time.Duration
	if maxAgeFlag != "" {
		d, err := policy.ParseDuration(maxAgeFlag)
		if err != nil || d == 0 {
			return usagef("status: --max-age %q: want a duration such as 26h or 2d", maxAgeFlag)
		}
		maxAge = d
	}
	cfg, _, err := g.setup()
	if err != nil {
		return err
	}
	// An unreadable record is a source that never ran; records that
	// cannot be read at all are an error.
	recs, err := lastRuns(cfg)
	if err != nil {
		return fmt.Errorf("read the run records: %w (run backtory status as the user that runs the backups)", err)
	}
	if g.source != "" {
		if _, err := cfg.source(g.source); err != nil {
			return err
		}
		recs = onlySource(recs, g.source)
	}
	rows := statusRows(recs, time.Now(), maxAge)
	if asJSON {
		enc := json.NewEncoder(st.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else if err := printStatus(st.stdout, rows, time.Now()); err != nil {
		return err
	}
	return statusError(rows)
}

// lastRuns returns the last run of every configured source (see
// state.Dir.Runs).
func lastRuns(cfg *Config) ([]state.Run, error) {
	names := make([]string, len(cfg.Sources))
	for i, s := range cfg.Sources {
		names[i] = s.Name
	}
	return state.New(cfg.StateDir).Runs(cfg.Host, names)
}

// statusRows judges each source's records at time now: a source is OK when
// it has a successful backup no older than maxAge (0: any age).
func statusRows(recs []state.Run, now time.Time, maxAge time.Duration) []statusRow {
	rows := make([]statusRow, 0, len(recs))
	for i := range recs {
		rec := recs[i]
		row := statusRow{Source: rec.Source, OK: true}
		if rec.Outcome != "" {
			row.LastRun = &rec
		}
		ok := rec.LastSuccess
		switch {
		case ok == nil:
			row.OK, row.Problem = false, "never backed up successfully"
		default:
			age := now.Sub(ok.Finished)
			secs := age.Seconds()
			row.LastSuccessAge = &secs
			if maxAge > 0 && age > maxAge {
				row.OK = false
				row.Problem = fmt.Sprintf("last successful backup %s ago (%s), older than --max-age %s",
					humanAge(age), ok.SetID, humanAge(maxAge))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// printStatus writes one line per source: the last run's outcome, its age
// and set, and the age of the last success when that was another run.
func printStatus(w io.Writer, rows []statusRow, now time.Time) error {
	for _, r := range rows {
		if _, err := fmt.Fprintln(w, statusLine(r, now)); err != nil {
			return err
		}
	}
	return nil
}

func statusLine(r statusRow, now time.Time) string {
	var b strings.Builder
	b.WriteString(r.Source + ": ")
	last := r.LastRun
	if last == nil {
		b.WriteString("never run")
	} else {
		fmt.Fprintf(&b, "%s %s ago (%s)", last.Outcome, humanAge(now.Sub(last.Finished)), showTime(last.Finished))
		if last.SetID != "" {
			fmt.Fprintf(&b, ", set %s (%d files, %s, stored %s)", last.SetID, last.Files, humanBytes(last.Bytes), humanBytes(last.Stored))
		}
		if last.Error != "" {
			b.WriteString(": " + last.Error)
		}
		if ok := last.LastSuccess; ok != nil && !ok.Finished.Equal(last.Finished) {
			fmt.Fprintf(&b, "; last success %s ago (%s), set %s", humanAge(now.Sub(ok.Finished)), showTime(ok.Finished), ok.SetID)
		}
	}
	if !r.OK {
		b.WriteString(" [" + r.Problem + "]")
	}
	return b.String()
}

// statusError is the one-line error for the sources that are not OK, or nil.
func statusError(rows []statusRow) error {
	var bad []string
	for _, r := range rows {
		if !r.OK {
			bad = append(bad, "source "+r.Source+": "+r.Problem)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return errors.New(strings.Join(bad, "; ") + " (run backtory backup and read its errors)")
}

func onlySource(recs []state.Run, name string) []state.Run {
	for _, r := range recs {
		if r.Source == name {
			return []state.Run{r}
		}
	}
	return nil
}

// humanAge writes d with its two largest units: 45s, 12m30s, 3h5m, 2d4h.
func humanAge(d time.Duration) string {
	if d < 0 {
		d = 0 // a clock stepped back
	}
	d = d.Round(time.Second)
	day := 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return trimZero(fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second)))
	case d < day:
		return trimZero(fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute)))
	}
	return trimZero(fmt.Sprintf("%dd%dh", int(d/day), int(d%day/time.Hour)))
}

// trimZero drops a zero second unit: "3h0m" -> "3h".
func trimZero(s string) string {
	for _, u := range []string{"m", "s", "h"} {
		if t, ok := strings.CutSuffix(s, "0"+u); ok && len(t) > 0 && (t[len(t)-1] < '0' || t[len(t)-1] > '9') {
			return t
		}
	}
	return s
}
