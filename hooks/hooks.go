// Package hooks runs the user's hook commands for one phase of a backup run:
// with the documented BACKTORY_* environment, a timeout that kills the hook's
// whole process group, its output in the log, and its on_error policy.
//
// The contract users rely on (phases, order, environment, failure policy) is
// written down in docs/hooks.md; change it only together with that file.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/backtory/backtory/internal/childenv"
)

// The phases, in the order a run meets them. See docs/hooks.md.
const (
	PreBackup    = "pre_backup"
	PreSnapshot  = "pre_snapshot"
	PostSnapshot = "post_snapshot"
	PostBackup   = "post_backup"
	OnFailure    = "on_failure"
)

// The values of BACKTORY_STATUS.
const (
	StatusSuccess = "success" // everything worked
	StatusWarning = "warning" // the backup is complete, but something (a hook) failed
	StatusFailure = "failure" // the backup did not complete
)

// DefaultTimeout is the time a hook may run when its config sets none.
const DefaultTimeout = 10 * time.Minute

// Policy says what a failing hook does to the run: the on_error setting.
type Policy string

const (
	// Abort stops the phase and fails the run. Default for pre_* hooks.
	Abort Policy = "abort"
	// Continue logs the failure and goes on; the run ends with a warning.
	// Default for post_snapshot, post_backup and on_failure hooks.
	Continue Policy = "continue"
)

// A Hook is one command. Exactly one of Shell and Argv is set.
// It unmarshals from YAML in three forms, see UnmarshalYAML.
type Hook struct {
	Shell   string        // run with /bin/sh -c
	Argv    []string      // run directly, without a shell
	Timeout time.Duration // 0 means DefaultTimeout
	OnError Policy        // "" means the phase's default
}

// Set is the hooks of every phase, as configured under "hooks:" at the top
// level of the config and in each source.
type Set struct {
	PreBackup    []Hook `yaml:"pre_backup,omitempty"`
	PreSnapshot  []Hook `yaml:"pre_snapshot,omitempty"`
	PostSnapshot []Hook `yaml:"post_snapshot,omitempty"`
	PostBackup   []Hook `yaml:"post_backup,omitempty"`
	OnFailure    []Hook `yaml:"on_failure,omitempty"`
}

// Env is what a hook is told, as BACKTORY_* environment variables. Run fills
// Phase; empty fields are passed as empty variables, so every variable is
// always set.
type Env struct {
	Phase        string // BACKTORY_PHASE
	Host         string // BACKTORY_HOST
	Source       string // BACKTORY_SOURCE: the source's name; empty for global hooks
	SourcePath   string // BACKTORY_SOURCE_PATH: the live path backed up
	SnapshotPath string // BACKTORY_SNAPSHOT_PATH: where the snapshot is mounted
	SetID        string // BACKTORY_SET_ID: e.g. full-20261122T030000Z
	SetKind      string // BACKTORY_SET_KIND: full or diff
	Status       string // BACKTORY_STATUS: StatusSuccess, StatusWarning or StatusFailure
	Error        string // BACKTORY_ERROR: the one-line error of a failed run
	LogFile      string // BACKTORY_LOG_FILE: the run's --log-file, empty without one
}

// HookError is the failure of one hook: it exited non-zero, could not be
// started, timed out, or was interrupted.
type HookError struct {
	Phase  string
	Hook   string // the hook's Name
	Err    error  // *exec.ExitError, ErrTimeout, a context error or a start error
	Stderr string // the last line the hook wrote to stderr, if any, cut to 200 bytes
}

// Error reads like
//
//	pre_backup hook "/usr/local/sbin/dump-db": exit status 3 (stderr: "pg_dump: connection refused")
func (e *HookError) Error() string {
	msg := fmt.Sprintf("%s hook %q: %v", e.Phase, e.Hook, e.Err)
	if e.Stderr != "" {
		msg += fmt.Sprintf(" (stderr: %q)", e.Stderr)
	}
	return msg
}
func (e *HookError) Unwrap() error { return e.Err }

// Warnings is what Run returns when only hooks with on_error: continue
// failed: the phase ran to its end and the run may go on, but it should end
// with a warning (exit code 3). Test for it with errors.As or IsWarning.
type Warnings struct {
	Failed []*HookError // in the order the hooks ran
}

func (w *Warnings) Error() string {
	if len(w.Failed) == 1 {
		return w.Failed[0].Error() + " (on_error: continue)"
	}
	msgs := make([]string, len(w.Failed))
	for i, f := range w.Failed {
		msgs[i] = f.Error()
	}
	return fmt.Sprintf("%d hooks failed (on_error: continue): %s", len(w.Failed), strings.Join(msgs, "; "))
}

// Unwrap gives errors.Is and errors.As the failed hooks' errors.
func (w *Warnings) Unwrap() []error {
	errs := make([]error, len(w.Failed))
	for i, f := range w.Failed {
		errs[i] = f
	}
	return errs
}

// IsWarning reports whether err is (or wraps) a *Warnings: only hooks with
// on_error: continue failed, and the run may go on.
func IsWarning(err error) bool {
	var w *Warnings
	return errors.As(err, &w)
}

// ErrTimeout is wrapped by the HookError of a hook killed at its timeout.
var ErrTimeout = errors.New("timed out")

// Run runs the hooks of one phase in order, each with env (Phase set to
// phase) added to the environment of this process.
//
// Each line a hook writes to stdout or stderr is logged at Info level with
// the attributes phase, hook, stream and line. A hook that outlives its
// timeout, or is still running when ctx is done, is sent SIGTERM with its
// whole process group, and SIGKILL after a grace period.
//
// Run returns nil when every hook succeeded; a *HookError for the first
// failing hook whose policy is Abort, or when ctx is done (later hooks of the
// phase are not run); and a *Warnings when only Continue hooks failed. Run
// does not log the failures it returns: the caller reports them, once.
//
// For post_backup and on_failure, which must run even after an interrupt,
// pass a ctx that is not cancelled (context.WithoutCancel).
func Run(ctx context.Context, phase string, hs []Hook, env Env, log *slog.Logger) error {
	if !validPhase(phase) {
		return fmt.Errorf("hooks: unknown phase %q", phase)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	env.Phase = phase
	environ := env.environ()
	var warn Warnings
	for _, h := range hs {
		if err := ctx.Err(); err != nil {
			return &HookError{Phase: phase, Hook: h.Name(), Err: fmt.Errorf("not run: %w", err)}
		}
		stderr, err := h.run(ctx, phase, environ, log)
		if err == nil {
			continue
		}
		herr := &HookError{Phase: phase, Hook: h.Name(), Err: err, Stderr: stderr}
		if h.policy(phase) == Abort || ctx.Err() != nil {
			return herr
		}
		warn.Failed = append(warn.Failed, herr)
	}
	if len(warn.Failed) > 0 {
		return &warn
	}
	return nil
}

// Hooks returns the hooks of s for phase, or nil for an unknown phase.
func (s Set) Hooks(phase string) []Hook {
	if p := s.field(phase); p != nil {
		return *p
	}
	return nil
}

// Empty reports whether s has no hook at all.
func (s Set) Empty() bool {
	return len(s.PreBackup)+len(s.PreSnapshot)+len(s.PostSnapshot)+len(s.PostBackup)+len(s.OnFailure) == 0
}

// Name is how logs and errors name the hook: its shell string or its argv
// joined by spaces, cut at the first line break and at 72 characters.
func (h Hook) Name() string {
	s := h.Shell
	if s == "" {
		s = strings.Join(h.Argv, " ")
	}
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = s[:i], true
	}
	if r := []rune(s); len(r) > 72 {
		s, cut = string(r[:72]), true
	}
	if cut {
		s += "…"
	}
	return s
}

// Vars returns env as BACKTORY_* assignments, in the documented order.
func (e Env) Vars() []string {
	return []string{
		"BACKTORY_PHASE=" + e.Phase,
		"BACKTORY_HOST=" + e.Host,
		"BACKTORY_SOURCE=" + e.Source,
		"BACKTORY_SOURCE_PATH=" + e.SourcePath,
		"BACKTORY_SNAPSHOT_PATH=" + e.SnapshotPath,
		"BACKTORY_SET_ID=" + e.SetID,
		"BACKTORY_SET_KIND=" + e.SetKind,
		"BACKTORY_STATUS=" + e.Status,
		"BACKTORY_ERROR=" + e.Error,
		"BACKTORY_LOG_FILE=" + e.LogFile,
	}
}

// killGrace is how long a hook's process group has between SIGTERM and SIGKILL.
var killGrace = 5 * time.Second

// outputGrace is how long Run keeps reading a hook's output after its main
// process exited, for background processes that still hold stdout/stderr.
var outputGrace = 2 * time.Second

// environ is this process's environment without any inherited BACKTORY_*
// variable (the secrets among them), plus e's.
func (e Env) environ() []string {
	var out []string
	for _, kv := range childenv.Environ() {
		if !strings.HasPrefix(kv, "BACKTORY_") {
			out = append(out, kv)
		}
	}
	return append(out, e.Vars()...)
}

func validPhase(phase string) bool {
	switch phase {
	case PreBackup, PreSnapshot, PostSnapshot, PostBackup, OnFailure:
		return true
	}
	return false
}

func (h Hook) policy(phase string) Policy {
	if h.OnError != "" {
		return h.OnError
	}
	if strings.HasPrefix(phase, "pre_") {
		return Abort
	}
	return Continue
}

func (h Hook) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultTimeout
}

func (h Hook) argv() []string {
	if h.Shell != "" {
		return []string{"/bin/sh", "-c", h.Shell}
	}
	return h.Argv
}

// run runs one hook to its end, killing its process group at the timeout or
// when ctx is done. It returns the last line of stderr with the error.
func (h Hook) run(ctx context.Context, phase string, environ []string, log *slog.Logger) (string, error) {
	argv := h.argv()
	if len(argv) == 0 || argv[0] == "" {
		return "", errors.New("empty command")
	}
	name := h.Name()
	hctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()

	stdout := &lineLogger{log: log, attrs: []any{"phase", phase, "hook", name, "stream", "stdout"}}
	stderr := &lineLogger{log: log, attrs: []any{"phase", phase, "hook", name, "stream", "stderr"}}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = stdout, stderr // stdin stays /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = outputGrace

	log.Debug("running hook", "phase", phase, "hook", name, "timeout", h.timeout())
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pgid := cmd.Process.Pid // Setpgid: the hook leads a new group of its own id

	waited := make(chan struct{})
	killed := make(chan bool, 1)
	go func() {
		select {
		case <-waited:
			killed <- false
		case <-hctx.Done():
			killGroup(pgid)
			killed <- true
		}
	}()
	err := cmd.Wait()
	close(waited)
	wasKilled := <-killed
	stdout.flush()
	stderr.flush()

	switch {
	case wasKilled && ctx.Err() != nil:
		return stderr.last, fmt.Errorf("interrupted, killed it and its process group: %w", ctx.Err())
	case wasKilled:
		return stderr.last, fmt.Errorf("%w after %v, killed it and its process group", ErrTimeout, h.timeout())
	case errors.Is(err, exec.ErrWaitDelay):
		// The hook succeeded but left background processes holding its output.
		log.Warn("hook left background processes attached to its output; their output is no longer logged (redirect it: >/dev/null 2>&1 &)",
			"phase", phase, "hook", name)
		err = nil
	}
	if err == nil {
		log.Debug("hook done", "phase", phase, "hook", name, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return stderr.last, err
}

// killGroup sends SIGTERM to the process group, waits until the group is
// gone or killGrace has passed, then sends SIGKILL.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.NewTimer(killGrace)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-tick.C:
			if !groupAlive(pgid) {
				return
			}
		}
	}
}

// groupAlive reports whether the process group has a member that is not a
// zombie. Zombies count as gone: an init that reaps orphans slowly (as in
// some containers) leaves them in the group, but they hold nothing.
func groupAlive(pgid int) bool {
	// The group's id cannot be reused while any member exists, zombie or
	// not; ESRCH means every member is gone (Wait reaps the leader).
	if syscall.Kill(-pgid, 0) == syscall.ESRCH {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

// maxLine is the longest line logged as one record; longer lines are split.
const maxLine = 16 << 10

// lineLogger is an io.Writer that logs each complete line it is given.
// Each stream has its own; os/exec writes to it from one goroutine.
type lineLogger struct {
	log   *slog.Logger
	attrs []any
	buf   []byte
	last  string // the last non-blank line, cut to maxLast bytes
}

// maxLast bounds lineLogger.last, which goes into error messages.
const maxLast = 200

func (l *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			for len(l.buf) >= maxLine {
				l.emit(l.buf[:maxLine])
				l.buf = append(l.buf[:0], l.buf[maxLine:]...)
			}
			break
		}
		l.buf = append(l.buf, p[:i]...)
		l.emit(l.buf)
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush logs a last line that had no newline.
func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}

func (l *lineLogger) emit(line []byte) {
	s := strings.TrimSuffix(string(line), "\r")
	if t := strings.TrimSpace(s); t != "" {
		if len(t) > maxLast {
			t = strings.ToValidUTF8(t[:maxLast], "") + "…"
		}
		l.last = t
	}
	args := append(l.attrs[:len(l.attrs):len(l.attrs)], "line", s) // never writes into attrs
	l.log.Info("hook output", args...)
}
