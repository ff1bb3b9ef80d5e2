package main

// Metrics: the sources' last runs in the Prometheus text format, for
// node_exporter's textfile collector.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/backtory/backtory/internal/atomicfile"
	"github.com/backtory/backtory/state"
)

// writeMetrics writes recs (from lastRuns) to path in the Prometheus
// text exposition format, atomically (see internal/atomicfile), so the
// collector never reads half a file.
// The file is world-readable (0644): node_exporter does not run as root.
//
// Every metric has one series per source. A source that never succeeded
// reports 0 as its last success time, so an alert on
// `time() - backtory_last_success_timestamp_seconds > 26*3600` fires for it.
func writeMetrics(path string, recs []state.Run) error {
	if err := atomicfile.WriteFile(path, formatMetrics(recs), 0o644); err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}

// metric is one metric family: its name, help, and value for a record.
type metric struct {
	name, help string
	value      func(r *state.Run) float64
}

var metrics = []metric{
	{"backtory_last_run_timestamp_seconds", "When the source's last backup run ended (Unix time; 0: never).",
		func(r *state.Run) float64 { return unixSeconds(r) }},
	{"backtory_last_success_timestamp_seconds", "When the source's last successful backup ended, one that made a set (Unix time; 0: never).",
		func(r *state.Run) float64 { return unixSeconds(r.LastSuccess) }},
	{"backtory_last_run_success", "1 if the source's last backup run made a set (with or without warnings), 0 if it failed or never ran.",
		func(r *state.Run) float64 { return boolFloat(r.Outcome == "success" || r.Outcome == "warning") }},
	{"backtory_last_failure_timestamp_seconds", "When the source's last failed backup run ended (Unix time; 0: never); its error is the reason label of backtory_last_run_failure_info.",
		func(r *state.Run) float64 { return unixSeconds(r.LastFailure) }},
	{"backtory_last_run_warnings", "Warnings of the source's last backup run (files changed while read, failed hooks with on_error: continue).",
		func(r *state.Run) float64 { return float64(r.Warnings) }},
	{"backtory_last_run_duration_seconds", "How long the source's last backup run took.",
		func(r *state.Run) float64 {
			if r.Outcome == "" || r.Finished.Before(r.Started) {
				return 0
			}
			return r.Finished.Sub(r.Started).Seconds()
		}},
	{"backtory_last_set_files", "Files in the set the source's last successful backup made.",
		func(r *state.Run) float64 { return lastSet(r, func(s *state.Run) float64 { return float64(s.Files) }) }},
	{"backtory_last_set_bytes", "Bytes of file data in the set the source's last successful backup made.",
		func(r *state.Run) float64 { return lastSet(r, func(s *state.Run) float64 { return float64(s.Bytes) }) }},
	{"backtory_last_set_stored_bytes", "Bytes the set the source's last successful backup made takes on the remote.",
		func(r *state.Run) float64 { return lastSet(r, func(s *state.Run) float64 { return float64(s.Stored) }) }},
}

// failureInfo is the metric that carries the last run's error as a label.
const failureInfo = "backtory_last_run_failure_info"

// maxReason bounds the reason label (a label is not a log).
const maxReason = 300

// formatMetrics renders recs as Prometheus text: HELP and TYPE, then one
// gauge per source, for each metric; last, failureInfo: 1 with the error
// as its reason label when the last run failed, else 0 with an empty one.
func formatMetrics(recs []state.Run) []byte {
	var b bytes.Buffer
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for i := range recs {
			fmt.Fprintf(&b, "%s{source=\"%s\"} %s\n", m.name, escapeLabel(recs[i].Source),
				strconv.FormatFloat(m.value(&recs[i]), 'f', -1, 64))
		}
	}
	fmt.Fprintf(&b, "# HELP %s 1 if the source's last backup run failed, its one-line error the reason label.\n# TYPE %s gauge\n", failureInfo, failureInfo)
	for _, r := range recs {
		failed, reason := 0, ""
		if r.Outcome == "failure" {
			failed, reason = 1, r.Error
			if len(reason) > maxReason {
				reason = reason[:maxReason] + "..."
			}
		}
		fmt.Fprintf(&b, "%s{source=\"%s\",reason=\"%s\"} %d\n", failureInfo, escapeLabel(r.Source), escapeLabel(reason), failed)
	}
	return b.Bytes()
}

func unixSeconds(r *state.Run) float64 {
	if r == nil || r.Finished.IsZero() {
		return 0
	}
	return float64(r.Finished.UnixMilli()) / 1000
}

func lastSet(r *state.Run, f func(*state.Run) float64) float64 {
	if r.LastSuccess == nil {
		return 0
	}
	return f(r.LastSuccess)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// escapeLabel escapes a label value: backslash, double quote and newline.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
