package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/bcrypt"

	"github.com/backtory/backtory/internal/testcerts"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/internal/treecmp"
	"github.com/backtory/backtory/remote"
)

// writeSpy is a Backend that fails the test on any write: the dashboard
// reads the remote and nothing else.
type writeSpy struct {
	remote.Backend
	t *testing.T
}

func (w writeSpy) Put(_ context.Context, name string, _ io.Reader) error {
	w.t.Errorf("the dashboard called Put(%s)", name)
	return os.ErrPermission
}

func (w writeSpy) Delete(_ context.Context, name string) error {
	w.t.Errorf("the dashboard called Delete(%s)", name)
	return os.ErrPermission
}

// failingRun adds a pre_backup hook that fails to cfg and runs a backup,
// which fails and uploads a run record with its log lines.
func failingRun(t *testing.T, cfg string) {
	t.Helper()
	hookRun(t, cfg, `"echo disk is on fire >&2; exit 3"`, exitFailed)
}

// hookRun runs a backup of cfg with a pre_backup hook added and wants its
// exit code.
func hookRun(t *testing.T, cfg, hook string, want int) {
	t.Helper()
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	with := filepath.Join(filepath.Dir(cfg), "hooked.yaml")
	body := string(raw) + "hooks:\n  pre_backup: [" + hook + "]\n"
	if err := os.WriteFile(with, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := backtory(t, "backup", "--config", with); code != want {
		t.Fatalf("backup with the hook %s: exit %d, want %d\n%s", hook, code, want, out)
	}
}

// dashboardOf opens cfg's remote through a writeSpy and serves its
// dashboard with httptest.
func dashboardOf(t *testing.T, cfg string) *httptest.Server {
	t.Helper()
	g := globals{streams: streams{stdout: io.Discard, stderr: io.Discard}}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	g.register(fs)
	if err := fs.Parse([]string{"--config", cfg, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	ses, err := g.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ses.Close() })
	ses.b = writeSpy{ses.b, t}
	h, err := newDashboard(ses, &g, 26*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServePages serves a sealed repository made by a full, a
// differential and a failed run, and checks each page and handler.
func TestServePages(t *testing.T) {
	r := newSealedRepo(t)
	hookRun(t, r.cfg, `{run: "echo smoke in the rack >&2; exit 4", on_error: continue}`, exitWarnings)
	failingRun(t, r.cfg)
	srv := dashboardOf(t, r.cfg)
	src := srv.URL + "/s/testhost/root/"
	for _, tc := range []struct {
		name, url string
		code      int
		want      []string
		not       []string
	}{
		{"fleet", srv.URL + "/", 200, []string{`data-host="testhost"`, `data-source="root"`, `data-health="red"`,
			`<span class="badge failure">failure</span>`, "the last run failed"}, nil},
		{"source", src, 200, []string{r.full, r.diff, "<svg", `<g class="set full"`, `<g class="set diff"`,
			"Retention plan", `<span class="badge success">success</span>`, `<span class="badge failure">failure</span>`,
			"disk is on fire", `<span class="badge warning">warning</span>`, "<details><summary>log (", "smoke in the rack"}, nil},
		{"tree root", src + "tree?path=.", 200, []string{r.diff, `data-path="etc"`, `data-path="data"`}, []string{`data-path="tiny"`}},
		{"tree at the full", src + "tree?at=" + r.full + "&path=.", 200, []string{`data-path="tiny"`}, nil},
		{"tree by time", src + "tree?at=2000-01-01&path=.", 404, []string{"no set at or before"}, nil},
		{"tree of a dir", src + "tree?path=etc", 200, []string{`data-path="etc/hosts"`, "versions"}, nil},
		{"tree of a file", src + "tree?path=etc/hosts", 200, []string{"hash", "download etc/hosts as tar"}, nil},
		{"tree of nothing", src + "tree?path=no/such", 404, []string{"has no no/such"}, nil},
		{"versions", src + "versions?path=etc/hosts", 200, []string{r.full, r.diff, `class="version changed" data-set="` + r.diff}, nil},
		{"versions of a removed file", src + "versions?path=tiny", 200, []string{"gone"}, nil},
		{"diff", src + "diff?from=" + r.full + "&to=" + r.diff, 200, []string{
			`class="removed" data-path="tiny"`, `class="changed" data-path="etc/hosts"`, `class="changed" data-path="data/random.bin"`, "1 removed"}, nil},
		{"diff default: the last two sets", src + "diff", 200, []string{"From " + r.diff + " to diff-"}, nil},
		{"unknown source", srv.URL + "/s/testhost/nosuch/", 404, nil, nil},
		{"unknown host", srv.URL + "/s/other/root/tree?path=.", 404, nil, nil},
		{"stylesheet", srv.URL + "/static/style.css", 200, []string{"--green"}, nil},
		{"no such page", srv.URL + "/nosuch", 404, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, srv.Client(), tc.url)
			if code != tc.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tc.url, code, tc.code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: no %q in\n%s", tc.url, w, body)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(body, w) {
					t.Errorf("GET %s: %q should not be there", tc.url, w)
				}
			}
		})
	}

	// The downloaded tar of each point in time, extracted by GNU tar,
	// equals a restore of it, whole or one directory.
	tarTool := testenv.NeedTool(t, "tar")
	for _, tc := range []struct{ set, path string }{{r.full, "."}, {r.diff, "."}, {r.diff, "etc"}, {r.diff, "links/z"}, {r.full, "links"}} {
		want := filepath.Join(t.TempDir(), "restored")
		args := []string{"restore", "--config", r.cfg, "--set", tc.set, "--to", want}
		if tc.path != "." {
			args = append(args, tc.path)
		}
		mustRun(t, args...)
		resp, err := srv.Client().Get(src + "tar?at=" + tc.set + "&path=" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" {
			t.Fatalf("tar of %s %s: %s %s", tc.set, tc.path, resp.Status, resp.Header.Get("Content-Type"))
		}
		got := t.TempDir()
		x := exec.Command(tarTool, "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-xpf", "-", "-C", got)
		x.Stdin = resp.Body
		if out, err := x.CombinedOutput(); err != nil {
			t.Fatalf("tar -x of the download of %s %s: %v\n%s", tc.set, tc.path, err, out)
		}
		resp.Body.Close()
		// Sparse files travel as their content, as in the volumes: stock
		// tar writes them dense, and that is the only difference allowed.
		diffs, err := treecmp.Diff(want, got, treecmp.Options{IgnoreRootMeta: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			if !strings.Contains(d, "sparse file restored dense") {
				t.Errorf("tar of %s %s: %s", tc.set, tc.path, d)
			}
		}
	}
	if code, _ := get(t, srv.Client(), src+"tar?path=no/such"); code == 200 {
		t.Errorf("tar of a missing path: 200")
	}
}

// syncBuffer is a bytes.Buffer that a running command and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `backtory serve` with args until the test ends and
// returns the URL it serves.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve: exit %d\n%s", code, errb.String())
		}
	})
	for {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d\n%s%s", code, out.String(), errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if line, ok := strings.CutPrefix(out.String(), "serving the dashboard on "); ok && strings.HasSuffix(line, "\n") {
			return strings.TrimSpace(line)
		}
	}
}

// TestServeAccess: a non-loopback address needs TLS and a password file
// (or --behind-proxy); with a password file a request needs the password.
func TestServeAccess(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sampleTree(t, 0), "")
	mustRun(t, "backup", "--config", cfg)
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:0"},
		{"--listen", "192.0.2.1:8420", "--password-file", "x"},
		{"--listen", "[::]:0", "--tls-cert", "c", "--tls-key", "k"},
		{"--listen", "127.0.0.1:0", "--tls-cert", "c"},
	} {
		code, out := backtory(t, append([]string{"serve", "--config", cfg}, args...)...)
		if code != exitUsage {
			t.Errorf("serve %v: exit %d, want 2\n%s", args, code, out)
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "passwords")
	os.WriteFile(pwFile, []byte("# users\nadmin:"+string(hash)+"\n"), 0o600)
	certs := testcerts.Get(t)
	url := startServe(t, "--config", cfg, "--listen", "127.0.0.1:0", "--tls-cert", certs.CertFile, "--tls-key", certs.KeyFile, "--password-file", pwFile)
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("serving on %s", url)
	}
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(certs.CAFile)
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tc := range []struct {
		user, pass string
		code       int
	}{{"", "", 401}, {"admin", "wrong", 401}, {"root", "s3cret", 401}, {"admin", "s3cret", 200}} {
		req, _ := http.NewRequest("GET", url, nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s:%s: %d, want %d", tc.user, tc.pass, resp.StatusCode, tc.code)
		}
		if tc.code == 200 && !strings.Contains(string(body), `data-host="testhost"`) {
			t.Errorf("the fleet page behind the password shows no testhost:\n%s", body)
		}
	}
	// Behind a proxy, any address is allowed without TLS.
	url = startServe(t, "--config", cfg, "--listen", "0.0.0.0:0", "--behind-proxy")
	port := url[strings.LastIndex(url, ":"):]
	if code, body := get(t, http.DefaultClient, "http://127.0.0.1"+port); code != 200 || !strings.Contains(body, "testhost") {
		t.Errorf("behind a proxy: %d\n%s", code, body)
	}
}
