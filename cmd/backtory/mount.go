package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/fusefs"
)

func init() {
	register(command{name: "mount", summary: "mount every point in time read-only at a directory (FUSE), until interrupted or unmounted", run: runMount,
		flags: func() *pflag.FlagSet { return mountFlags(new(globals), new(bool), new(bool), new(string)) }})
}

func mountFlags(g *globals, all, debug *bool, cacheSize *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("mount", pflag.ContinueOnError)
	g.register(fs)
	allHostsFlag(fs, all)
	fs.StringVar(cacheSize, "cache-size", "4GiB", "at most this much of decrypted (still compressed) sealed volumes in state_dir while mounted")
	fs.BoolVar(debug, "debug-fuse", false, "log every FUSE request")
	return fs
}

func runMount(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var all, debug bool
	var cacheSize string
	fs := mountFlags(&g, &all, &debug, &cacheSize)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("mount: want one directory to mount at")
	}
	max, err := parseSize(cacheSize)
	if err != nil {
		return usagef("--cache-size: %v", err)
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = g.finish("mount", err) }()
	defer ses.Close()
	targets, err := ses.targets(ctx, &g, all)
	if err != nil {
		return err
	}
	var srcs []fusefs.Source
	for _, tg := range targets {
		r, err := ses.repositoryOf(tg)
		if err != nil {
			return err
		}
		if tg.host == ses.cfg.Host {
			if err := checkRollback(ctx, ses.state, r); err != nil {
				return err
			}
		}
		srcs = append(srcs, fusefs.Source{Host: tg.host, Name: tg.src.Name, Repo: r})
	}
	// The cache lives in this process's spool: removed when the mount ends,
	// and by the next backup or prune if the process was killed.
	cache, err := archive.NewVolumeCache(filepath.Join(ses.spool, "volumes"), max)
	if err != nil {
		return err
	}
	defer cache.RemoveAll()
	dir := fs.Arg(0)
	server, err := fusefs.Mount(ctx, dir, fusefs.Options{Sources: srcs, AllHosts: all, Cache: cache, Debug: debug,
		Log: func(msg string) { ses.log.Warn(msg) }})
	if err != nil {
		return err
	}
	ses.log.Info("mounted", "dir", dir, "sources", len(srcs))
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			if err := server.Unmount(); err != nil {
				ses.log.Warn("unmount failed (busy?): run fusermount -u", "dir", dir, "err", err)
			}
		case <-done:
		}
	}()
	server.Wait()
	close(done)
	ses.log.Info("unmounted", "dir", dir)
	if ctx.Err() == nil {
		return nil
	}
	if err := ctx.Err(); err != context.Canceled {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}
