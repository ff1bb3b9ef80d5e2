package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "restore", summary: "restore a set (the newest, or --at TIME, or --set ID) into a directory", run: runRestore})
}

func runRestore(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var to, setID, at string
	var force bool
	fs := pflag.NewFlagSet("restore", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(&to, "to", "", "directory to restore into (required; created if missing, must be empty)")
	fs.StringVar(&setID, "set", "", "restore this set id")
	fs.StringVar(&at, "at", "", "restore the newest set at or before this time (RFC 3339 or 'YYYY-MM-DD HH:MM' local)")
	fs.BoolVar(&force, "force", false, "restore into a directory that is not empty, replacing files")
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
	defer ses.Close()
	src, err := g.oneSource(ses.cfg)
	if err != nil {
		return err
	}
	r, m, err := ses.pick(ctx, src, setID, at)
	if err != nil {
		return err
	}
	log := ses.log
	warnings := 0
	rst, err := r.Restore(ctx, m, archive.RestoreOptions{
		Target: to, Paths: fs.Args(), Force: force,
		Warn: func(path, msg string) {
			warnings++
			log.Warn(msg, "path", path)
		},
		Notice: func(msg string) { log.Warn(msg) },
	})
	if errors.Is(err, archive.ErrNotEmpty) {
		return usagef("%v", err)
	}
	if err != nil {
		return fmt.Errorf("restore of %s: %w", m.ID, err)
	}
	log.Info("restore done", "set", m.ID, "entries", rst.Entries, "bytes", humanBytes(rst.Bytes), "to", to)
	if warnings > 0 {
		return warningsError{fmt.Sprintf("restore done with %d warnings (see above)", warnings)}
	}
	return nil
}
