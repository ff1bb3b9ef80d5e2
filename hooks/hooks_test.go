package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRunEnvironment(t *testing.T) {
	t.Setenv("BACKTORY_STALE", "inherited") // must not reach the hook
	log, rec := newRecorder()
	env := Env{
		Phase:        "ignored: Run sets it",
		Host:         "web1",
		Source:       "root",
		SourcePath:   "/",
		SnapshotPath: "/.zfs/snapshot/backtory-1",
		SetID:        "full-20261122T030000Z",
		SetKind:      "full",
		Status:       StatusFailure,
		Error:        "upload vol-000001: connection refused",
	}
	hs := []Hook{{Shell: "env | grep '^BACKTORY_' | sort"}}
	if err := Run(context.Background(), PostBackup, hs, env, log); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"BACKTORY_ERROR=upload vol-000001: connection refused",
		"BACKTORY_HOST=web1",
		"BACKTORY_LOG_FILE=",
		"BACKTORY_PHASE=post_backup",
		"BACKTORY_SET_ID=full-20261122T030000Z",
		"BACKTORY_SET_KIND=full",
		"BACKTORY_SNAPSHOT_PATH=/.zfs/snapshot/backtory-1",
		"BACKTORY_SOURCE=root",
		"BACKTORY_SOURCE_PATH=/",
		"BACKTORY_STATUS=failure",
	}
	if got := rec.lines("stdout"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hook saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRunEmptyVariablesAreSet(t *testing.T) {
	log, rec := newRecorder()
	// set -u fails on an unset variable: every variable must be set, if empty.
	hs := []Hook{{Shell: `set -u; echo "[$BACKTORY_SOURCE][$BACKTORY_STATUS][$BACKTORY_ERROR][$BACKTORY_SET_ID]"`}}
	if err := Run(context.Background(), PreBackup, hs, Env{Host: "web1"}, log); err != nil {
		t.Fatal(err)
	}
	if got := rec.lines("stdout"); len(got) != 1 || got[0] != "[][][][]" {
		t.Errorf("got %q", got)
	}
}

func TestRunOutput(t *testing.T) {
	tests := []struct {
		name           string
		hook           Hook
		stdout, stderr []string
	}{
		{"shell", Hook{Shell: "echo out; echo err >&2; printf 'last, no newline'"},
			[]string{"out", "last, no newline"}, []string{"err"}},
		{"argv does no shell expansion", Hook{Argv: []string{"/bin/echo", "$HOME", "*", "a;b", "`id`", "x > y"}},
			[]string{"$HOME * a;b `id` x > y"}, nil},
		{"crlf and empty lines", Hook{Shell: `printf 'a\r\n\nb\n'`},
			[]string{"a", "", "b"}, nil},
		{"long line is split", Hook{Shell: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", maxLine+5)},
			[]string{strings.Repeat("x", maxLine), "xxxxx"}, nil},
		{"runs in /", Hook{Argv: []string{"pwd"}}, []string{"/"}, nil},
		{"stdin is empty", Hook{Shell: "wc -c"}, []string{"0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, rec := newRecorder()
			if err := Run(context.Background(), PreBackup, []Hook{tt.hook}, Env{}, log); err != nil {
				t.Fatal(err)
			}
			if got := rec.lines("stdout"); fmt.Sprint(got) != fmt.Sprint(tt.stdout) {
				t.Errorf("stdout %q, want %q", got, tt.stdout)
			}
			if got := rec.lines("stderr"); fmt.Sprint(got) != fmt.Sprint(tt.stderr) {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			for _, r := range rec.all() {
				if r["msg"] == "hook output" && (r["phase"] != PreBackup || r["hook"] != tt.hook.Name()) {
					t.Errorf("output record without phase and hook: %v", r)
				}
			}
		})
	}
}

func TestRunPolicies(t *testing.T) {
	fail3 := Hook{Shell: "exit 3"}
	ok := Hook{Shell: "echo ran"}
	tests := []struct {
		name    string
		phase   string
		hooks   []Hook
		wantErr string // "" for nil
		warning bool   // the error is *Warnings
		ran     int    // how many "ran" lines: the hooks after a failure run or not
	}{
		{"all succeed", PostBackup, []Hook{ok, ok}, "", false, 2},
		{"pre aborts by default", PreBackup, []Hook{ok, fail3, ok},
			`pre_backup hook "exit 3": exit status 3`, false, 1},
		{"pre_snapshot aborts by default", PreSnapshot, []Hook{fail3, ok},
			`pre_snapshot hook "exit 3": exit status 3`, false, 0},
		{"pre with on_error continue", PreBackup, []Hook{{Shell: "exit 3", OnError: Continue}, ok},
			`pre_backup hook "exit 3": exit status 3 (on_error: continue)`, true, 1},
		{"post_backup continues by default", PostBackup, []Hook{fail3, ok},
			`post_backup hook "exit 3": exit status 3 (on_error: continue)`, true, 1},
		{"post_snapshot continues by default", PostSnapshot, []Hook{fail3, ok}, "exit status 3", true, 1},
		{"on_failure continues by default", OnFailure, []Hook{fail3, fail3, ok},
			`2 hooks failed (on_error: continue): on_failure hook "exit 3": exit status 3; on_failure hook "exit 3": exit status 3`, true, 1},
		{"post with on_error abort", PostBackup, []Hook{{Shell: "exit 3", OnError: Abort}, ok},
			`post_backup hook "exit 3": exit status 3`, false, 0},
		{"continue then abort", PreBackup, []Hook{{Shell: "exit 1", OnError: Continue}, fail3, ok},
			`pre_backup hook "exit 3": exit status 3`, false, 0},
		{"missing program", PreBackup, []Hook{{Argv: []string{"/nonexistent/dump-db"}}, ok},
			`pre_backup hook "/nonexistent/dump-db": fork/exec /nonexistent/dump-db: no such file or directory`, false, 0},
		{"killed by a signal", PreBackup, []Hook{{Shell: "kill -9 $$"}}, "signal: killed", false, 0},
		{"last stderr line in the error", PreBackup, []Hook{{Shell: "echo one >&2; echo 'pg_dump: connection refused' >&2; echo >&2; exit 2"}},
			`pre_backup hook "echo one >&2; echo 'pg_dump: connection refused' >&2; echo >&2; exit 2": exit status 2 (stderr: "pg_dump: connection refused")`, false, 0},
		{"no hooks", PreBackup, nil, "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, rec := newRecorder()
			err := Run(context.Background(), tt.phase, tt.hooks, Env{}, log)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if err != nil && IsWarning(err) != tt.warning {
				t.Errorf("IsWarning(%v) = %v, want %v", err, IsWarning(err), tt.warning)
			}
			var herr *HookError
			if err != nil && !tt.warning && (!errors.As(err, &herr) || herr.Phase != tt.phase) {
				t.Errorf("err %#v is not a *HookError of phase %s", err, tt.phase)
			}
			if got := len(rec.lines("stdout")); got != tt.ran {
				t.Errorf("%d hooks ran after the failure, want %d", got, tt.ran)
			}
		})
	}
}

func TestRunNilLogger(t *testing.T) {
	if err := Run(context.Background(), PreBackup, []Hook{{Shell: "echo discarded"}}, Env{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRunUnknownPhase(t *testing.T) {
	log, _ := newRecorder()
	err := Run(context.Background(), "pre_restore", []Hook{{Shell: "true"}}, Env{}, log)
	if err == nil || !strings.Contains(err.Error(), `unknown phase "pre_restore"`) {
		t.Fatalf("err %v", err)
	}
}

// TestRunKillsGroup checks that a hook that is killed (here: its ctx is
// cancelled once it has said its child's pid) dies with its children, also
// when they ignore SIGTERM.
func TestRunKillsGroup(t *testing.T) {
	defer setVar(&killGrace, 300*time.Millisecond)()
	tests := []struct {
		name  string
		shell string
	}{
		{"child in background", "sleep 300 & echo $!; wait"},
		{"grandchild", "sh -c 'sleep 300 & echo $!; wait'; exit 0"},
		{"child in foreground of a subshell", "(sh -c 'echo $PPID'; sleep 300)"},
		{"everyone ignores SIGTERM", "trap '' TERM; sleep 300 & echo $!; wait; wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, rec := newRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for len(rec.lines("stdout")) == 0 {
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}()
			err := Run(ctx, PostBackup, []Hook{{Shell: tt.shell}}, Env{}, log)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			lines := rec.lines("stdout")
			if len(lines) != 1 {
				t.Fatalf("want one child pid, got %q", lines)
			}
			pid, err := strconv.Atoi(lines[0])
			if err != nil {
				t.Fatalf("child pid %q: %v", lines[0], err)
			}
			if !gone(pid) {
				t.Errorf("child %d of a killed hook is still alive", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	defer setVar(&killGrace, 300*time.Millisecond)()
	for _, policy := range []Policy{Abort, Continue} {
		log, _ := newRecorder()
		hs := []Hook{{Shell: "echo waiting >&2; exec sleep 300", Timeout: 200 * time.Millisecond, OnError: policy}}
		err := Run(context.Background(), PostBackup, hs, Env{}, log)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("on_error %s: err %v, want a timeout", policy, err)
		}
		if IsWarning(err) != (policy == Continue) {
			t.Errorf("on_error %s: IsWarning(%v) = %v", policy, err, IsWarning(err))
		}
		want := `post_backup hook "echo waiting >&2; exec sleep 300": timed out after 200ms, killed it and its process group`
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("err %q, want %q", err, want)
		}
	}
}

func TestRunCancel(t *testing.T) {
	log, rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	hs := []Hook{
		{Shell: "echo started; exec sleep 300", OnError: Continue},
		{Shell: "echo second hook ran"},
	}
	go func() {
		for len(rec.lines("stdout")) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	err := Run(ctx, PostBackup, hs, Env{}, log)
	var herr *HookError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &herr) || IsWarning(err) {
		t.Fatalf("err %v, want a *HookError wrapping context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "interrupted, killed it and its process group") {
		t.Errorf("err %q", err)
	}
	if got := rec.lines("stdout"); len(got) != 1 {
		t.Errorf("stdout %q: the second hook must not run after cancel", got)
	}
	// A done ctx runs nothing.
	err = Run(ctx, PostBackup, []Hook{{Shell: "echo ran"}}, Env{}, log)
	if !errors.Is(err, context.Canceled) || len(rec.lines("stdout")) != 1 {
		t.Errorf("err %v, stdout %q", err, rec.lines("stdout"))
	}
}

// TestRunBackgroundKeepsOutput checks that a hook that exits but leaves a
// background process holding its stdout is done after outputGrace, and that
// the background process is not killed (it may hold a lock until
// post_snapshot).
func TestRunBackgroundKeepsOutput(t *testing.T) {
	defer setVar(&outputGrace, 200*time.Millisecond)()
	log, rec := newRecorder()
	err := Run(context.Background(), PreSnapshot, []Hook{{Shell: "sleep 300 & echo $!"}}, Env{}, log)
	if err != nil {
		t.Fatal(err)
	}
	lines := rec.lines("stdout")
	if len(lines) != 1 {
		t.Fatalf("stdout %q", lines)
	}
	pid, _ := strconv.Atoi(lines[0])
	defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("background process %d was killed: %v", pid, err)
	}
	warned := false
	for _, r := range rec.all() {
		warned = warned || strings.Contains(r["msg"], "left background processes")
	}
	if !warned {
		t.Error("no warning about the background process")
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		hook Hook
		want string
	}{
		{Hook{Shell: "/usr/local/sbin/dump-db"}, "/usr/local/sbin/dump-db"},
		{Hook{Argv: []string{"/usr/local/sbin/dump-db", "--all"}}, "/usr/local/sbin/dump-db --all"},
		{Hook{Shell: "set -e\npg_dumpall > /var/backups/pg.sql\n"}, "set -e…"},
		{Hook{Shell: strings.Repeat("é", 80)}, strings.Repeat("é", 72) + "…"},
	}
	for _, tt := range tests {
		if got := tt.hook.Name(); got != tt.want {
			t.Errorf("Name() = %q, want %q", got, tt.want)
		}
	}
}

func TestSetHooks(t *testing.T) {
	s := Set{
		PreBackup: []Hook{{Shell: "a"}}, PreSnapshot: []Hook{{Shell: "b"}}, PostSnapshot: []Hook{{Shell: "c"}},
		PostBackup: []Hook{{Shell: "d"}}, OnFailure: []Hook{{Shell: "e"}},
	}
	for phase, want := range map[string]string{PreBackup: "a", PreSnapshot: "b", PostSnapshot: "c", PostBackup: "d", OnFailure: "e"} {
		if hs := s.Hooks(phase); len(hs) != 1 || hs[0].Shell != want {
			t.Errorf("Hooks(%s) = %v", phase, hs)
		}
	}
	if s.Hooks("nope") != nil || s.Empty() || !(Set{}).Empty() {
		t.Error("Hooks of an unknown phase, or Empty, is wrong")
	}
}

// gone waits up to 10 s for pid to exit (a zombie counts as gone) and
// reports whether it did.
func gone(pid int) bool {
	for i := 0; i < 500; i++ {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// The state follows the command name in parentheses: "pid (comm) S ...".
		if s := string(stat); strings.Contains(s[strings.LastIndexByte(s, ')'):], ") Z") {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// setVar sets *p to v and returns a func that restores it.
func setVar[T any](p *T, v T) func() {
	old := *p
	*p = v
	return func() { *p = old }
}

// recorder is a slog.Handler that keeps every record as a map of strings.
type recorder struct {
	mu   sync.Mutex
	recs []map[string]string
}

func newRecorder() (*slog.Logger, *recorder) {
	r := &recorder{}
	return slog.New(r), r
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { panic("not used by package hooks") }
func (r *recorder) WithGroup(string) slog.Handler            { panic("not used by package hooks") }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message, "level": rec.Level.String()}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, m)
	return nil
}

func (r *recorder) all() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.recs...)
}

// lines returns the output lines logged for stream, in order.
func (r *recorder) lines(stream string) []string {
	var out []string
	for _, m := range r.all() {
		if m["msg"] == "hook output" && m["stream"] == stream {
			out = append(out, m["line"])
		}
	}
	return out
}

// TestHooksGetNoSecrets: a hook's /proc/PID/environ and cmdline hold
// neither the remote password nor the key passphrase.
func TestHooksGetNoSecrets(t *testing.T) {
	t.Setenv("BACKTORY_REMOTE_PASSWORD", "remote-secret")
	t.Setenv("BACKTORY_KEY_PASSPHRASE", "key-secret")
	dump := t.TempDir() + "/dump"
	hs := []Hook{{Shell: `tr '\000' '\n' < /proc/$$/environ > ` + dump + `; tr '\000' ' ' < /proc/$$/cmdline >> ` + dump}}
	if err := Run(context.Background(), PreBackup, hs, Env{Host: "h"}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dump)
	if err != nil || !strings.Contains(string(b), "BACKTORY_HOST=h") {
		t.Fatalf("not the hook's environment (%v):\n%s", err, b)
	}
	for _, s := range []string{"remote-secret", "key-secret"} {
		if strings.Contains(string(b), s) {
			t.Errorf("the hook sees %s:\n%s", s, b)
		}
	}
}
