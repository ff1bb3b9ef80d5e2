package examples

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// ping is one request the monitoring server got.
type ping struct{ path, body string }

// pingServer is a local HTTP server that records the pings it gets.
func pingServer(t *testing.T) (*httptest.Server, func() []ping) {
	var mu sync.Mutex
	var got []ping
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, ping{r.URL.Path, string(b)})
		mu.Unlock()
		io.WriteString(w, "OK")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []ping {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

// notifyEnv is a config whose global hooks are the healthchecks and mail
// examples, a sendmail stand-in that records what it is given, and the
// backtory binary.
type notifyEnv struct {
	bin, dir, cfg, logFile, mail string
	env                          []string
}

func newNotifyEnv(t *testing.T, pingURL string) *notifyEnv {
	testenv.NeedRoot(t, "hooks need a root-owned config")
	testenv.NeedTool(t, "curl")
	hc, _ := filepath.Abs("hooks/healthchecks.sh")
	mail, _ := filepath.Abs("hooks/mail-on-failure.sh")
	dir := t.TempDir()
	e := &notifyEnv{bin: buildBacktory(t), dir: dir, cfg: filepath.Join(dir, "backtory.yaml"),
		logFile: filepath.Join(dir, "backtory.log"), mail: filepath.Join(dir, "mail.out")}
	sendmail := filepath.Join(dir, "sendmail")
	os.WriteFile(sendmail, []byte("#!/bin/sh\n{ echo \"ARGS: $*\"; cat; echo '--END--'; } >> "+e.mail+"\n"), 0o755)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	e.env = append(os.Environ(), "SENDMAIL="+sendmail)
	hooks := "hooks:\n" +
		"  pre_backup:\n    - run: [" + hc + ", \"" + pingURL + "\"]\n      on_error: continue\n" +
		"  post_backup: [[" + hc + ", \"" + pingURL + "\"], [" + mail + ", root@example.org]]\n" +
		"  on_failure: [[" + hc + ", \"" + pingURL + "\"], [" + mail + ", root@example.org]]\n"
	e.write(t, "  url: file://"+filepath.Join(dir, "remote")+"\n", hooks)
	return e
}

func (e *notifyEnv) write(t *testing.T, remote, rest string) {
	t.Helper()
	body := "host: web1\nstate_dir: " + filepath.Join(e.dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + filepath.Join(e.dir, "src") + "\n" + "remote:\n" + remote + rest
	if err := os.WriteFile(e.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// backup runs a backup as cron would, and returns its exit code.
func (e *notifyEnv) backup(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(e.bin, "backup", "--config", e.cfg, "--quiet", "--log-file", e.logFile)
	cmd.Env = e.env
	out, _ := cmd.CombinedOutput()
	t.Logf("backtory backup: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	return cmd.ProcessState.ExitCode()
}

// TestNotificationHooks runs real backups with the healthchecks and mail
// examples as global hooks, against a local HTTP server and a sendmail
// stand-in: a success pings start and success and mails nothing; a failing
// source pings start and fail (with the error and the log's tail) and mails
// the same; a remote that is down before anything ran pings fail alone.
func TestNotificationHooks(t *testing.T) {
	srv, pings := pingServer(t)
	e := newNotifyEnv(t, srv.URL+"/ping/abc-123")

	if code := e.backup(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := pings()
	if len(got) != 2 || got[0].path != "/ping/abc-123/start" || got[1].path != "/ping/abc-123" ||
		!strings.Contains(got[1].body, "backtory on web1: success") {
		t.Errorf("a success pinged %q", got)
	}
	if _, err := os.Stat(e.mail); err == nil {
		t.Error("a success sent a mail")
	}

	// A source whose pre_backup hook fails.
	cfg, _ := os.ReadFile(e.cfg)
	failing := strings.Replace(string(cfg), "    path: ", "    hooks:\n      pre_backup: ['echo the database is down >&2; exit 5']\n    path: ", 1)
	os.WriteFile(e.cfg, []byte(failing), 0o600)
	if code := e.backup(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	got = pings()
	if len(got) != 2 || got[0].path != "/ping/abc-123/start" || got[1].path != "/ping/abc-123/fail" {
		t.Fatalf("a failure pinged %q", got)
	}
	for _, want := range []string{"backtory on web1: failure", "exit status 5", "the database is down",
		"the last lines of " + e.logFile, "backtory: writing a full"} {
		if !strings.Contains(got[1].body, want) {
			t.Errorf("the failure ping lacks %q:\n%s", want, got[1].body)
		}
	}
	mail, _ := os.ReadFile(e.mail)
	for _, want := range []string{"ARGS: -t -oi\n", "To: root@example.org\n", "Subject: backtory on web1: failure\n",
		"exit status 5", "The last lines of " + e.logFile} {
		if !strings.Contains(string(mail), want) {
			t.Errorf("the mail lacks %q:\n%s", want, mail)
		}
	}
	if n := strings.Count(string(mail), "--END--"); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
	os.Remove(e.mail)

	// A remote that is down: the run fails before pre_backup; on_failure
	// alone pings.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	pw := filepath.Join(e.dir, "password")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	hooksAt := strings.Index(string(cfg), "hooks:\n")
	e.write(t, "  url: ftp://backup@"+addr+"/b\n  password_file: "+pw+"\n  retries: 1\n", string(cfg)[hooksAt:])
	if code := e.backup(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	got = pings()
	if len(got) != 1 || got[0].path != "/ping/abc-123/fail" || !strings.Contains(got[0].body, "connection refused") {
		t.Errorf("a remote that is down pinged %q", got)
	}
	if mail, _ := os.ReadFile(e.mail); !strings.Contains(string(mail), "connection refused") {
		t.Errorf("a remote that is down mailed %q", mail)
	}
}

// TestCronBackupLine runs the cron file's nightly job as cron would (sh -c,
// cron's PATH and environment, no terminal, stdin from /dev/null), with a
// global hook that fails with on_error: continue: cron mails the warning
// itself, the backup exits 3, and prune still runs. The README shows the
// same line.
func TestCronBackupLine(t *testing.T) {
	b, _ := os.ReadFile("cron/backtory")
	var job string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "30 3 ") {
			job = strings.Join(strings.Fields(l)[6:], " ")
		}
	}
	readme, _ := os.ReadFile("../README.md")
	if !strings.Contains(string(readme), strings.ReplaceAll(job, "backtory ", "/usr/local/sbin/backtory ")) {
		t.Errorf("README.md does not show the cron file's job %q", job)
	}
	testenv.NeedRoot(t, "hooks need a root-owned config")
	bin := buildBacktory(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("x\n"), 0o644)
	cfg := filepath.Join(dir, "backtory.yaml")
	os.WriteFile(cfg, []byte("host: web1\nstate_dir: "+dir+"/state\nsources:\n  - name: root\n    path: "+src+"\n"+
		"remote:\n  url: file://"+dir+"/remote\nhooks:\n  post_backup: [{run: 'echo notify failed >&2; exit 1', on_error: continue}]\n"), 0o600)
	logFile := filepath.Join(dir, "backtory.log")
	line := strings.ReplaceAll(job, "/var/log/backtory.log", logFile)
	line = regexp.MustCompile(`backtory (\w+)`).ReplaceAllString(line, filepath.Dir(bin)+"/backtory $1 --config "+cfg)
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SHELL=/bin/sh", "HOME=/root", "LOGNAME=root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	mail, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, mail)
	}
	want := "backtory: warning: backup done with 1 warning: post_backup hook \"echo notify failed >&2; exit 1\": exit status 1 (stderr: \"notify failed\") (on_error: continue)\n"
	if !strings.HasSuffix(string(mail), want) {
		t.Errorf("cron would mail:\n%s\nwant it to end with\n%s", mail, want)
	}
	lf, _ := os.ReadFile(logFile)
	if !strings.Contains(string(lf), "backtory: prune done source=\"root\"") {
		t.Errorf("prune did not run after exit 3:\n%s", lf)
	}
}
