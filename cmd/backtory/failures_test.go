package main

// The failure matrix of issue 15: each way a backup fails after the config
// was read, against the real thing (a vsftpd stopped, a wrong password, a
// certificate nobody trusts, a full tmpfs, a snapshot that cannot be taken,
// a failing hook), and each is reported the same way: exit 1, status says
// failed with the reason, the metrics say failed, on_failure ran with the
// reason, and the log file has the timestamped error line.

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/internal/testenv"
)

func TestFailureMatrix(t *testing.T) {
	ftp := func(t *testing.T, mutate func(srv *ftptest.Server, remote *string)) string {
		srv := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
		remote := "  url: " + srv.URL("backups") + "\n  user: " + ftptest.User +
			"\n  password_file: " + srv.PasswordFile + "\n  tls_ca: " + srv.CAFile + "\n  retries: 2\n"
		mutate(srv, &remote)
		return remote
	}
	tests := []struct {
		name string
		// setup returns the remote section (the url and what goes with it)
		// and the config's other lines.
		setup func(t *testing.T, dir string) (remote, extra string)
		want  string // in the reason
	}{
		{"server stopped", func(t *testing.T, dir string) (string, string) {
			return ftp(t, func(srv *ftptest.Server, _ *string) { srv.Kill() }), ""
		}, "connection refused"},
		{"wrong password", func(t *testing.T, dir string) (string, string) {
			return ftp(t, func(srv *ftptest.Server, remote *string) {
				wrong := filepath.Join(dir, "wrong-password")
				os.WriteFile(wrong, []byte("not-the-password\n"), 0o600)
				*remote = strings.Replace(*remote, srv.PasswordFile, wrong, 1)
			}), ""
		}, "530"},
		{"untrusted certificate", func(t *testing.T, dir string) (string, string) {
			return ftp(t, func(srv *ftptest.Server, remote *string) {
				*remote = strings.Replace(*remote, srv.CAFile, srv.OtherCAFile, 1)
			}), ""
		}, "certificate"},
		{"full disk", func(t *testing.T, dir string) (string, string) {
			testenv.NeedRoot(t, "mount a small tmpfs as the remote")
			mnt := filepath.Join(dir, "small")
			os.Mkdir(mnt, 0o700)
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
				testenv.Need(t, err, "mount tmpfs: "+string(out))
			}
			t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
			return "  url: file://" + mnt + "/remote\n", ""
		}, "no space left on device"},
		{"failing snapshot", func(t *testing.T, dir string) (string, string) {
			return "  url: file://" + filepath.Join(dir, "remote") + "\n", "SNAPSHOT"
		}, "snapshot"},
		{"failing hook", func(t *testing.T, dir string) (string, string) {
			return "  url: file://" + filepath.Join(dir, "remote") + "\n",
				"  pre_backup: ['echo dump failed >&2; exit 7']\n"
		}, `exit status 7`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			os.Mkdir(src, 0o755)
			noise := make([]byte, 2<<20) // incompressible: it cannot fit the full tmpfs
			rand.Read(noise)
			os.WriteFile(filepath.Join(src, "data"), noise, 0o644)
			remote, extra := tc.setup(t, dir)
			snap := ""
			if extra == "SNAPSHOT" {
				// A btrfs snapshot of a directory that is no btrfs subvolume.
				snap, extra = "    snapshot: btrfs\n", ""
			}
			onFail := filepath.Join(dir, "on-failure.log")
			metrics := filepath.Join(dir, "backtory.prom")
			logFile := filepath.Join(dir, "backtory.log")
			cfg := filepath.Join(dir, "backtory.yaml")
			body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
				"sources:\n  - name: root\n    path: " + src + "\n" + snap +
				"remote:\n" + remote +
				"metrics_file: " + metrics + "\n" +
				"hooks:\n  on_failure: ['printf \"%s|%s|%s\\n\" \"$BACKTORY_STATUS\" \"$BACKTORY_ERROR\" \"$BACKTORY_LOG_FILE\" >> " + onFail + "']\n" + extra
			os.WriteFile(cfg, []byte(body), 0o600)

			code, stderr := backtory(t, "backup", "--config", cfg, "--quiet", "--log-file", logFile)
			if code != exitFailed {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}

			// status: failed, with the reason.
			code, out, _ := backtoryOut(t, "status", "--config", cfg)
			if code != exitFailed || !strings.Contains(out, "root: failure") || !strings.Contains(out, tc.want) {
				t.Errorf("status (exit %d):\n%s", code, out)
			}
			// The metrics: failed, when, why.
			prom, err := os.ReadFile(metrics)
			if err != nil {
				t.Fatal(err)
			}
			for _, re := range []string{
				`(?m)^backtory_last_run_success\{source="root"\} 0$`,
				`(?m)^backtory_last_failure_timestamp_seconds\{source="root"\} [1-9][0-9.]+$`,
				`(?m)^backtory_last_run_failure_info\{source="root",reason=".*` + regexp.QuoteMeta(tc.want) + `.*"\} 1$`,
			} {
				if !regexp.MustCompile(re).Match(prom) {
					t.Errorf("metrics do not match %s:\n%s", re, prom)
				}
			}
			// on_failure ran with the reason and the log file.
			hook, _ := os.ReadFile(onFail)
			if !strings.HasPrefix(string(hook), "failure|") || !strings.Contains(string(hook), tc.want) ||
				!strings.Contains(string(hook), "|"+logFile+"\n") {
				t.Errorf("on_failure was told %q", hook)
			}
			// The log file: the error line, timestamped.
			lf, _ := os.ReadFile(logFile)
			re := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) backtory: error: backup failed err=".*` + regexp.QuoteMeta(tc.want))
			if !re.Match(lf) {
				t.Errorf("the log file has no timestamped error line with %q:\n%s", tc.want, lf)
			}
		})
	}
}

// TestServerBackDuringRetries: a server that is down when the run starts
// but back within the retries is a transient failure: the connection is
// tried again with a growing pause, and the backup succeeds. Each retry
// is an info line (in the log file and off --quiet), not a warning.
func TestServerBackDuringRetries(t *testing.T) {
	srv := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	srv.Kill()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "backtory.yaml")
	os.WriteFile(cfg, []byte("host: testhost\nstate_dir: "+filepath.Join(dir, "state")+"\n"+
		"sources:\n  - name: root\n    path: "+sampleTree(t, 0)+"\n"+
		"remote:\n  url: "+srv.URL("backups")+"\n  user: "+ftptest.User+"\n  password_file: "+srv.PasswordFile+
		"\n  tls_ca: "+srv.CAFile+"\n  retries: 4\n"), 0o600)
	done := make(chan string)
	go func() {
		code, out, stderr := backtoryOut(t, "backup", "--config", cfg)
		done <- fmt.Sprintf("exit %d\n%s%s", code, out, stderr)
	}()
	time.Sleep(500 * time.Millisecond)
	srv.Launch()
	got := <-done
	if !strings.HasPrefix(got, "exit 0\n") || !strings.Contains(got, "backtory: remote: retrying") {
		t.Errorf("a server back within the retries:\n%s", got)
	}
}

// TestGlobalHookWarningsCount: failing global hooks with on_error:
// continue are warnings of every source: exit 3, status and metrics say so.
func TestGlobalHookWarningsCount(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "backtory.prom")
	cfg := writeConfig(t, dir, sampleTree(t, 0), "metrics_file: "+metrics+"\nhooks:\n"+
		"  pre_backup: [{run: 'exit 4', on_error: continue}]\n  post_backup: ['exit 5']\n")
	code, stderr := backtory(t, "backup", "--config", cfg, "--quiet")
	if code != exitWarnings || !strings.Contains(stderr, "backup done with 2 warnings (the first: pre_backup hook \"exit 4\": exit status 4") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
	if code, out, _ := backtoryOut(t, "status", "--config", cfg, "--json"); code != 0 || !strings.Contains(out, `"outcome": "warning"`) || !strings.Contains(out, `"warnings": 2`) {
		t.Errorf("status (exit %d):\n%s", code, out)
	}
	if prom, _ := os.ReadFile(metrics); !strings.Contains(string(prom), `backtory_last_run_warnings{source="root"} 2`+"\n") {
		t.Errorf("metrics:\n%s", prom)
	}
}
