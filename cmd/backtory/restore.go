package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "restore", summary: "restore a set (the newest, or --at TIME, or --set ID) into a directory", run: runRestore,
		flags: func() *pflag.FlagSet {
			return restoreFlags(new(globals), new(string), new(string), new(string), new(bool), new(bool))
		}})
}

// restoreFlags returns the flag set of restore, bound to the given values
// (also for its help, man page and completions).
func restoreFlags(g *globals, to, setID, at *string, force, asJSON *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("restore", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(to, "to", "", "directory to restore into (required; created if missing, must be empty)")
	fs.StringVar(setID, "set", "", "restore this set id")
	fs.StringVar(at, "at", "", "restore the newest set at or before this time (RFC 3339 or 'YYYY-MM-DD HH:MM' local)")
	fs.BoolVar(force, "force", false, "restore into a directory that is not empty, replacing files")
	fs.BoolVar(asJSON, "json", false, "print the result as one JSON object on stdout (see docs/json.md)")
	return fs
}

func runRestore(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var to, setID, at string
	var force, asJSON bool
	fs := restoreFlags(&g, &to, &setID, &at, &force, &asJSON)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if to == "" {
		return usagef("restore: --to DIR is required")
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = g.finish("restore", err) }()
	defer ses.Close()
	src, inside, err := g.sourceForPaths(ses.cfg, fs.Args())
	if err != nil {
		return err
	}
	r, m, err := ses.pick(ctx, src, setID, at)
	if err != nil {
		return err
	}
	if err := checkPaths(ctx, r, m, src, newPathMatch(fs.Args(), inside)); err != nil {
		return err
	}
	log := ses.log
	warnings := 0
	if len(fs.Args()) == 0 {
		g.progress.Start(m.Stats.Entries, m.Stats.Bytes)
	} else {
		g.progress.Start(0, 0) // a part: its size is not known before
	}
	started := time.Now()
	rst, err := r.Restore(ctx, m, archive.RestoreOptions{
		Target: to, Paths: inside, Force: force,
		Warn: func(path, msg string) {
			warnings++
			log.Warn(msg, "path", path)
		},
		Progress: g.progress.Update,
		Notice:   func(msg string) { log.Warn(msg) },
	})
	g.progress.Done()
	if errors.Is(err, archive.ErrNotEmpty) {
		return usagef("%v", err)
	}
	if err != nil {
		return fmt.Errorf("restore of %s: %w", m.ID, err)
	}
	secs := time.Since(started).Round(time.Millisecond).Seconds()
	log.Info("restore done", "source", src.Name, "set", m.ID, "entries", rst.Entries, "bytes", rst.Bytes, "to", to,
		"seconds", secs, "warnings", warnings)
	if asJSON {
		if err := writeJSON(st.stdout, restoreJSON{Source: src.Name, Set: m.ID, Target: to, Entries: rst.Entries,
			Bytes: rst.Bytes, Warnings: warnings, Seconds: secs}); err != nil {
			return err
		}
	}
	if warnings > 0 {
		return warningsError{fmt.Sprintf("restore done with %d warnings (see above)", warnings)}
	}
	return nil
}
