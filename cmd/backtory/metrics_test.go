package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/state"
)

func TestFormatMetrics(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 3, 30, 0, 0, time.UTC)
	ok := &state.Run{Source: "root", Outcome: "success", Started: t0, Finished: t0.Add(90 * time.Second),
		SetID: "full-x", Files: 1200, Bytes: 5 << 30, Stored: 2 << 30}
	rootRec := *ok
	rootRec.LastSuccess = ok
	failed := state.Run{Source: "data", Outcome: "failure", Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour + 1500*time.Millisecond),
		Error: "boom", LastFailure: &state.Run{Source: "data", Outcome: "failure", Finished: t0.Add(time.Hour + 1500*time.Millisecond)},
		LastSuccess: &state.Run{Source: "data", Outcome: "warning", Finished: t0.Add(-24 * time.Hour), Files: 7, Bytes: 70, Stored: 90}}
	never := state.Run{Source: `we"ird\`}
	got := string(formatMetrics([]state.Run{failed, rootRec, never}))
	unix := float64(t0.Unix())
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, want := range []string{
		"# HELP backtory_last_run_timestamp_seconds ",
		"# TYPE backtory_last_run_timestamp_seconds gauge\n",
		`backtory_last_run_timestamp_seconds{source="root"} ` + f(unix+90) + "\n",
		`backtory_last_run_timestamp_seconds{source="data"} ` + f(unix+3601.5) + "\n",
		`backtory_last_run_timestamp_seconds{source="we\"ird\\"} 0` + "\n",
		`backtory_last_success_timestamp_seconds{source="root"} ` + f(unix+90) + "\n",
		`backtory_last_success_timestamp_seconds{source="data"} ` + f(unix-86400) + "\n",
		`backtory_last_success_timestamp_seconds{source="we\"ird\\"} 0` + "\n",
		`backtory_last_run_success{source="root"} 1` + "\n",
		`backtory_last_run_success{source="data"} 0` + "\n",
		`backtory_last_run_success{source="we\"ird\\"} 0` + "\n",
		`backtory_last_run_duration_seconds{source="root"} 90` + "\n",
		`backtory_last_run_duration_seconds{source="data"} 1.5` + "\n",
		`backtory_last_set_files{source="root"} 1200` + "\n",
		`backtory_last_set_files{source="data"} 7` + "\n",
		`backtory_last_set_bytes{source="root"} 5368709120` + "\n",
		`backtory_last_set_stored_bytes{source="root"} 2147483648` + "\n",
		`backtory_last_set_stored_bytes{source="data"} 90` + "\n",
		`backtory_last_set_stored_bytes{source="we\"ird\\"} 0` + "\n",
		`backtory_last_run_warnings{source="root"} 0` + "\n",
		`backtory_last_failure_timestamp_seconds{source="data"} ` + f(unix+3601.5) + "\n",
		`backtory_last_failure_timestamp_seconds{source="root"} 0` + "\n",
		`backtory_last_run_failure_info{source="data",reason="boom"} 1` + "\n",
		`backtory_last_run_failure_info{source="root",reason=""} 0` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if n := strings.Count(got, "# TYPE "); n != len(metrics)+1 || strings.Count(got, "\n") != (len(metrics)+1)*(2+3) {
		t.Errorf("metrics: %d families, %d lines:\n%s", n, strings.Count(got, "\n"), got)
	}
}

func TestWriteMetricsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backtory.prom")
	os.WriteFile(path, []byte("old"), 0o600)
	recs := []state.Run{{Source: "root", Outcome: "success", Finished: time.Now()}}
	if err := writeMetrics(path, recs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("metrics file: %v, mode %v", err, fi.Mode())
	}
	if b, _ := os.ReadFile(path); string(b) != string(formatMetrics(recs)) {
		t.Errorf("metrics file holds %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	err = writeMetrics(filepath.Join(dir, "missing", "x.prom"), recs)
	if err == nil || !strings.Contains(err.Error(), "metrics file "+filepath.Join(dir, "missing", "x.prom")) {
		t.Errorf("metrics file in a missing directory: %v", err)
	}
}

// nodeExporter is where test/deps/metrics.sh unpacks node_exporter.
const nodeExporter = "/var/cache/backtory-test/node-exporter/usr/bin/prometheus-node-exporter"

// TestMetricsReadByNodeExporter has the real textfile collector read what
// writeMetrics wrote after a real backup.
func TestMetricsReadByNodeExporter(t *testing.T) {
	if _, err := os.Stat(nodeExporter); err != nil {
		testenv.Missing(t, nodeExporter, "run test/deps/metrics.sh")
	}
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfgPath)
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	textfiles := filepath.Join(dir, "textfiles")
	os.Mkdir(textfiles, 0o755)
	recs, err := lastRuns(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMetrics(filepath.Join(textfiles, "backtory.prom"), recs); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(nodeExporter, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+textfiles, "--web.listen-address="+addr)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var body string
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter does not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && !strings.HasPrefix(k, "#") {
			got[k], _ = strconv.ParseFloat(v, 64)
		}
	}
	if v, ok := got["node_textfile_scrape_error"]; !ok || v != 0 {
		t.Fatalf("node_exporter could not read the metrics file (node_textfile_scrape_error %v):\n%s", v, logs.String())
	}
	now := float64(time.Now().Unix())
	for _, m := range metrics {
		if _, ok := got[m.name+`{source="root"}`]; !ok {
			t.Errorf("node_exporter does not serve %s", m.name)
		}
	}
	if v := got[`backtory_last_run_success{source="root"}`]; v != 1 {
		t.Errorf("backtory_last_run_success = %v", v)
	}
	if v := got[`backtory_last_success_timestamp_seconds{source="root"}`]; v < now-600 || v > now+1 {
		t.Errorf("backtory_last_success_timestamp_seconds = %v, now %v", v, now)
	}
	if v := got[`backtory_last_set_files{source="root"}`]; v < 10 {
		t.Errorf("backtory_last_set_files = %v", v)
	}
}
