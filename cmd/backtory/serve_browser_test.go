package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/state"
)

// chromium runs headless Chromium on url with args (--dump-dom,
// --screenshot=...) and returns its standard output.
func chromium(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, append(args, url)...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v %s: %v\n%s", args, url, err, stderr.String())
	}
	return string(out)
}

// staleSet writes a set of host/root on the remote at dir as if its run
// had ended ago (a host whose backups stopped), with its run record.
func staleSet(t *testing.T, dir, host, src string, ago time.Duration) {
	t.Helper()
	b, err := remote.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-ago).Truncate(time.Second)
	repo := &archive.Repository{Backend: b, SpoolDir: t.TempDir(), Host: host, Source: "root"}
	comp, _ := archive.ParseCompression("zstd")
	m, err := repo.Backup(context.Background(), archive.BackupOptions{SourcePath: src, Root: src, VolumeSize: 1 << 20,
		Compression: comp, Uploads: 2, Tool: "backtory test", Started: started})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(state.Run{Host: host, Source: "root", Started: started, Finished: started.Add(2 * time.Second),
		Outcome: "success", SetID: m.ID, Kind: string(m.Kind), Files: m.Stats.Files, Bytes: m.Stats.Bytes, Stored: m.Stats.StoredBytes})
	if err := repo.PutRunRecord(context.Background(), m.ID, started, rec); err != nil {
		t.Fatal(err)
	}
}

// TestServeInChromium serves a remote of three hosts (web1 fine, web2
// failed, web3 stale) with the real `backtory serve` and loads its pages
// in headless Chromium: the colours and ages of the fleet, a source's
// timeline, a directory, a file's versions and a difference. Screenshots
// go to the test's artifact directory (go test -artifacts).
func TestServeInChromium(t *testing.T) {
	bin := testenv.NeedTool(t, "chromium")
	dir := t.TempDir()
	rem := filepath.Join(dir, "remote")
	src := sampleTree(t, 0)
	cfgOf := func(host string) string {
		d := filepath.Join(dir, host)
		os.MkdirAll(d, 0o700)
		cfg := writeConfig(t, d, src, "")
		raw, _ := os.ReadFile(cfg)
		s := strings.Replace(string(raw), "host: testhost", "host: "+host, 1)
		s = strings.Replace(s, "url: file://"+filepath.Join(d, "remote"), "url: file://"+rem, 1)
		os.WriteFile(cfg, []byte(s), 0o600)
		return cfg
	}
	web1 := cfgOf("web1")
	mustRun(t, "backup", "--config", web1)
	time.Sleep(1100 * time.Millisecond) // set ids count seconds
	os.WriteFile(filepath.Join(src, "etc/hosts"), []byte("changed for the differential\n"), 0o644)
	mustRun(t, "backup", "--config", web1)
	web2 := cfgOf("web2")
	mustRun(t, "backup", "--config", web2)
	failingRun(t, web2)
	staleSet(t, rem, "web3", src, 30*time.Hour)

	url := startServe(t, "--config", web1, "--listen", "127.0.0.1:0", "--max-age", "26h")
	shots := t.ArtifactDir()
	shoot := func(name, u string) {
		p := filepath.Join(shots, name+".png")
		chromium(t, bin, u, "--screenshot="+p, "--window-size=1280,1100")
		if fi, err := os.Stat(p); err != nil || fi.Size() < 10000 {
			t.Errorf("screenshot %s: %v (%v bytes)", p, err, fi)
		}
	}

	dom := chromium(t, bin, url, "--dump-dom")
	for _, tc := range []struct{ host, health, outcome, age string }{
		{"web1", "green", "success", `^[0-9]+s$`},
		{"web2", "red", "failure", `^[0-9]+s$`},
		{"web3", "amber", "success", `^1d[56]h$`},
	} {
		row := regexp.MustCompile(`(?s)<tr class="health-(\w+)" data-host="` + tc.host + `".*?</tr>`).FindStringSubmatch(dom)
		if row == nil {
			t.Errorf("fleet: no row of %s in\n%s", tc.host, dom)
			continue
		}
		if row[1] != tc.health {
			t.Errorf("fleet: %s is %s, want %s", tc.host, row[1], tc.health)
		}
		if !strings.Contains(row[0], `<span class="dot `+tc.health+`"`) || !strings.Contains(row[0], `<span class="badge `+tc.outcome+`">`) {
			t.Errorf("fleet: %s: want a %s dot and a %s badge in %s", tc.host, tc.health, tc.outcome, row[0])
		}
		age := regexp.MustCompile(`<td class="age">([^<]*)</td>`).FindStringSubmatch(row[0])
		if age == nil || !regexp.MustCompile(tc.age).MatchString(age[1]) {
			t.Errorf("fleet: %s: age %v, want %s", tc.host, age, tc.age)
		}
	}
	shoot("fleet", url)

	page := url + "s/web1/root/"
	dom = chromium(t, bin, page, "--dump-dom")
	for _, want := range []string{`<svg class="timeline"`, `aria-label="timeline of 2 sets"`, `<g class="set full"`, `<g class="set diff"`,
		"Retention plan", `<span class="badge success">success</span>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("source page: no %q in\n%s", want, dom)
		}
	}
	shoot("source", page)
	dom = chromium(t, bin, url+"s/web2/root/", "--dump-dom")
	if !regexp.MustCompile(`(?s)<details open=""><summary>log \(\d+ lines?\)</summary><pre>[^<]*pre_backup[^<]*disk is on fire`).MatchString(dom) {
		t.Errorf("web2's page shows no log line of its failed run:\n%s", dom)
	}
	shoot("source-failed", url+"s/web2/root/")

	dom = chromium(t, bin, page+"tree?path=etc", "--dump-dom")
	if !strings.Contains(dom, `data-path="etc/hosts"`) {
		t.Errorf("tree of etc: no etc/hosts in\n%s", dom)
	}
	shoot("tree", page+"tree?path=etc")
	dom = chromium(t, bin, page+"versions?path=etc/hosts", "--dump-dom")
	if n := strings.Count(dom, `<tr class="version changed"`); n != 2 {
		t.Errorf("versions of etc/hosts: %d changed versions, want 2 (the full's and the differential's)\n%s", n, dom)
	}
	shoot("versions", page+"versions?path=etc/hosts")
	dom = chromium(t, bin, page+"diff", "--dump-dom")
	if !strings.Contains(dom, `<tr class="changed" data-path="etc/hosts">`) {
		t.Errorf("diff: etc/hosts is not changed in\n%s", dom)
	}
	shoot("diff", page+"diff")
}
