package main

// Metrics: the sources' last runs in the Prometheus text format, for
// node_exporter's textfile collector.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writeMetrics writes recs (from loadRunRecords) to path in the Prometheus
// text exposition format, atomically: a temporary file in the same
// directory, renamed over path, so the collector never reads half a file.
// The file is world-readable (0644): node_exporter does not run as root.
//
// Every metric has one series per source. A source that never succeeded
// reports 0 as its last success time, so an alert on
// `time() - backtory_last_success_timestamp_seconds > 26*3600` fires for it.
func writeMetrics(path string, recs []runRecord) error {
	data := formatMetrics(recs)
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}

// metric is one metric family: its name, help, and value for a record.
type metric struct {
	name, help string
	value      func(r *runRecord) float64
}

var metrics = []metric{
	{"backtory_last_run_timestamp_seconds", "When the source's last backup run ended (Unix time; 0: never).",
		func(r *runRecord) float64 { return unixSeconds(r) }},
	{"backtory_last_success_timestamp_seconds", "When the source's last successful backup ended, one that made a set (Unix time; 0: never).",
		func(r *runRecord) float64 { return unixSeconds(r.LastSuccess) }},
	{"backtory_last_run_success", "1 if the source's last backup run made a set (with or without warnings), 0 if it failed or never ran.",
		func(r *runRecord) float64 { return boolFloat(r.Outcome == "success" || r.Outcome == "warning") }},
	{"backtory_last_run_warnings", "Warnings of the source's last backup run (files changed while read, failed hooks with on_error: continue).",
		func(r *runRecord) float64 { return float64(r.Warnings) }},
	{"backtory_last_run_duration_seconds", "How long the source's last backup run took.",
		func(r *runRecord) float64 {
			if r.Outcome == "" || r.Finished.Before(r.Started) {
				return 0
			}
			return r.Finished.Sub(r.Started).Seconds()
		}},
	{"backtory_last_set_files", "Files in the set the source's last successful backup made.",
		func(r *runRecord) float64 { return lastSet(r, func(s *runRecord) float64 { return float64(s.Files) }) }},
	{"backtory_last_set_bytes", "Bytes of file data in the set the source's last successful backup made.",
		func(r *runRecord) float64 { return lastSet(r, func(s *runRecord) float64 { return float64(s.Bytes) }) }},
	{"backtory_last_set_stored_bytes", "Bytes the set the source's last successful backup made takes on the remote.",
		func(r *runRecord) float64 { return lastSet(r, func(s *runRecord) float64 { return float64(s.Stored) }) }},
}

// formatMetrics renders recs as Prometheus text: HELP and TYPE, then one
// gauge per source, for each metric.
func formatMetrics(recs []runRecord) []byte {
	var b bytes.Buffer
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for i := range recs {
			fmt.Fprintf(&b, "%s{source=\"%s\"} %s\n", m.name, escapeLabel(recs[i].Source),
				strconv.FormatFloat(m.value(&recs[i]), 'f', -1, 64))
		}
	}
	return b.Bytes()
}

func unixSeconds(r *runRecord) float64 {
	if r == nil || r.Finished.IsZero() {
		return 0
	}
	return float64(r.Finished.UnixMilli()) / 1000
}

func lastSet(r *runRecord, f func(*runRecord) float64) float64 {
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
