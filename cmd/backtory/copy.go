package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/state"
)

func init() {
	register(command{name: "copy", summary: "copy the sets to the second remote (copy_to), byte for byte", run: runCopy,
		flags: func() *pflag.FlagSet { return copyFlags(new(globals), new(bool)) }})
}

// copyFlags returns the flag set of copy, bound to the given values
// (also for its help, man page and completions).
func copyFlags(g *globals, allHosts *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("copy", pflag.ContinueOnError)
	g.register(fs)
	fs.BoolVar(allHosts, "all-hosts", false, "copy every host's sets on the remote, not only this host's")
	return fs
}

func runCopy(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var allHosts bool
	fs := copyFlags(&g, &allHosts)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("copy: unexpected argument %q", fs.Arg(0))
	}
	// No keys: sealed objects are copied as they are.
	cfg, log, err := g.setup()
	if err != nil {
		return err
	}
	if cfg.CopyTo.URL == "" {
		return usagef("%s: copy_to.url is not set (the remote to copy to)", cfg.path)
	}
	spool, release, err := state.New(cfg.StateDir).Spool()
	if err != nil {
		return usagef("state_dir: %v", err)
	}
	defer release()
	src, err := openRemote(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := remote.Open(ctx, cfg.CopyTo, log)
	var ce *remote.ConfigError
	if errors.As(err, &ce) {
		return usagef("%s:%d: copy_to: %v", cfg.path, cfg.line("copy_to", "url"), err)
	}
	if err != nil {
		return fmt.Errorf("copy_to: %w", err)
	}
	defer dst.Close()
	c := &archive.Copier{Src: src, Dst: dst, SpoolDir: spool, Log: log}
	hosts := []string{cfg.Host}
	if allHosts {
		if hosts, err = archive.Hosts(ctx, src); err != nil {
			return err
		}
	}
	var stats archive.CopyStats
	for _, h := range hosts {
		if err := c.CopyHost(ctx, h, &stats); err != nil {
			return err
		}
	}
	if !g.quiet {
		fmt.Fprintf(st.stdout, "copied %d sets (%d objects, %s), %d already there, %d incomplete at the source and not copied\n",
			stats.Sets, stats.Objects, humanBytes(stats.Bytes), stats.Skipped, stats.Incomplete)
	}
	return nil
}
