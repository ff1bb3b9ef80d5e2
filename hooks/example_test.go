package hooks_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/backtory/backtory/hooks"
)

// Example shows how a backup run calls the hooks of the global Set and of
// one source, in the order docs/hooks.md promises, and what it does with
// the errors. Here the source's pre_snapshot hook fails: the snapshot is
// not taken, but post_snapshot, post_backup and on_failure still run.
func Example() {
	say := func(s string) hooks.Hook { return hooks.Hook{Shell: `echo "` + s + `"`} }
	global := hooks.Set{
		PreBackup:    []hooks.Hook{say("global $BACKTORY_PHASE on $BACKTORY_HOST")},
		PreSnapshot:  []hooks.Hook{say("global $BACKTORY_PHASE of $BACKTORY_SOURCE")},
		PostSnapshot: []hooks.Hook{say("global $BACKTORY_PHASE of $BACKTORY_SOURCE: $BACKTORY_STATUS")},
		PostBackup:   []hooks.Hook{say("global $BACKTORY_PHASE: $BACKTORY_STATUS: $BACKTORY_ERROR")},
		OnFailure:    []hooks.Hook{say("global $BACKTORY_PHASE")},
	}
	source := hooks.Set{
		PreSnapshot: []hooks.Hook{{Shell: "echo 'cannot flush' >&2; exit 3"}},
		OnFailure:   []hooks.Hook{say("source $BACKTORY_PHASE of $BACKTORY_SOURCE: $BACKTORY_ERROR")},
	}

	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: onlyLine}))
	var warnings []error
	// ok records a phase's error and reports whether the run goes on.
	ok := func(err error, failed *error) bool {
		switch {
		case err == nil:
			return true
		case hooks.IsWarning(err):
			warnings = append(warnings, err) // the run ends with exit code 3
			return true
		}
		*failed = err
		return false
	}
	outcome := func(err error) (status, msg string) {
		switch {
		case err != nil:
			return hooks.StatusFailure, err.Error()
		case len(warnings) > 0:
			return hooks.StatusWarning, errors.Join(warnings...).Error()
		}
		return hooks.StatusSuccess, ""
	}

	env := hooks.Env{Host: "web1"}
	var runErr error
	if ok(hooks.Run(ctx, hooks.PreBackup, global.PreBackup, env, log), &runErr) {
		// For each source:
		senv := env
		senv.Source, senv.SourcePath = "root", "/"
		var srcErr error
		if ok(hooks.Run(ctx, hooks.PreBackup, source.PreBackup, senv, log), &srcErr) {
			pre := append(append([]hooks.Hook(nil), global.PreSnapshot...), source.PreSnapshot...)
			if ok(hooks.Run(ctx, hooks.PreSnapshot, pre, senv, log), &srcErr) {
				// Take the snapshot here; on success set senv.SnapshotPath.
			}
			// post_snapshot always runs once pre_snapshot has started.
			senv.Status, _ = outcome(srcErr)
			post := append(append([]hooks.Hook(nil), source.PostSnapshot...), global.PostSnapshot...)
			ok(hooks.Run(ctx, hooks.PostSnapshot, post, senv, log), &srcErr)
			// Archive, seal and upload here, if srcErr is nil.
		}
		// Hooks that always run get a ctx that an interrupt does not cancel.
		always := context.WithoutCancel(ctx)
		senv.Status, senv.Error = outcome(srcErr)
		ok(hooks.Run(always, hooks.PostBackup, source.PostBackup, senv, log), &srcErr)
		if srcErr != nil {
			senv.Status, senv.Error = outcome(srcErr)
			ok(hooks.Run(always, hooks.OnFailure, source.OnFailure, senv, log), &srcErr)
			runErr = fmt.Errorf("source %s: %w", senv.Source, srcErr)
		}
	}
	always := context.WithoutCancel(ctx)
	env.Status, env.Error = outcome(runErr)
	ok(hooks.Run(always, hooks.PostBackup, global.PostBackup, env, log), &runErr)
	if runErr != nil {
		env.Status, env.Error = outcome(runErr)
		ok(hooks.Run(always, hooks.OnFailure, global.OnFailure, env, log), &runErr)
	}
	fmt.Println("run:", runErr)

	// Output:
	// line="global pre_backup on web1"
	// line="global pre_snapshot of root"
	// line="cannot flush"
	// line="global post_snapshot of root: failure"
	// line="source on_failure of root: pre_snapshot hook \"echo 'cannot flush' >&2; exit 3\": exit status 3 (stderr: \"cannot flush\")"
	// line="global post_backup: failure: source root: pre_snapshot hook \"echo 'cannot flush' >&2; exit 3\": exit status 3 (stderr: \"cannot flush\")"
	// line="global on_failure"
	// run: source root: pre_snapshot hook "echo 'cannot flush' >&2; exit 3": exit status 3 (stderr: "cannot flush")
}

// onlyLine keeps the output line of each record, to keep the example short.
func onlyLine(_ []string, a slog.Attr) slog.Attr {
	if a.Key != "line" {
		return slog.Attr{}
	}
	return a
}
