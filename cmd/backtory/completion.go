package main

// The completion command: `backtory completion bash|zsh|fish` prints the
// shell's completion script, generated from the command table; the
// scripts call `backtory completion --list KIND` for the words that come
// from the config (source names) and the remote (set ids and times).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/clidoc"
	"github.com/backtory/backtory/state"
)

func init() {
	register(command{name: "completion", summary: "print the bash, zsh or fish completion script (completing commands, flags, sources, sets and times)", run: runCompletion,
		flags: func() *pflag.FlagSet { return completionFlags(new(globals), new(string)) }})
	takesArgs["completion"] = "bash|zsh|fish"
}

// Completion of set ids and times never waits long for the remote: the
// words are cached in state_dir and fresh for completionFresh; older, the
// remote is asked for at most completionTimeout, and the stale cache is the
// answer when it does not reply in time.
const (
	completionFresh   = 2 * time.Minute
	completionTimeout = 2 * time.Second
)

// completionFlags returns the flag set of completion, bound to the given values.
func completionFlags(g *globals, list *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("completion", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(list, "list", "", "print the words of a flag's value, one a line, for the scripts: sources, sets or times")
	return fs
}

func runCompletion(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var list string
	fs := completionFlags(&g, &list)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if list != "" {
		if fs.NArg() > 0 {
			return usagef("completion --list takes no shell (got %q)", fs.Arg(0))
		}
		return completionWords(ctx, &g, list)
	}
	if fs.NArg() != 1 {
		return usagef("completion: want one shell: bash, zsh or fish (see backtory completion --help)")
	}
	p := program()
	switch fs.Arg(0) {
	case "bash":
		return clidoc.Bash(st.stdout, p)
	case "zsh":
		return clidoc.Zsh(st.stdout, p)
	case "fish":
		return clidoc.Fish(st.stdout, p)
	}
	return usagef("completion: unknown shell %q: want bash, zsh or fish", fs.Arg(0))
}

// program describes the CLI for its man pages and completions.
func program() *clidoc.Program {
	p := &clidoc.Program{
		Name:    "backtory",
		Summary: "back up Linux servers: snapshots, differential archives, OpenPGP sealing, bare-metal recovery",
		Version: version,
		Helper:  "backtory completion --list",
		Values:  flagValue,
	}
	for _, n := range commandNames() {
		c := commands[n]
		dc := clidoc.Command{Name: c.name, Summary: c.summary, Args: takesArgs[c.name]}
		if c.flags != nil {
			dc.Flags = c.flags()
		}
		for _, s := range c.subs {
			dc.Subs = append(dc.Subs, clidoc.Command{Name: s.name, Summary: s.summary, Args: s.args, Flags: s.flags()})
		}
		p.Commands = append(p.Commands, dc)
	}
	return p
}

// flagValue says what a flag's value completes to.
func flagValue(cmd string, f *pflag.Flag) clidoc.Value {
	switch {
	case f.Name == "source" && cmd != "init":
		return clidoc.Value{Dynamic: "sources"}
	case f.Name == "set":
		return clidoc.Value{Dynamic: "sets"}
	case f.Name == "at":
		return clidoc.Value{Dynamic: "times"}
	case f.Name == "list" && cmd == "completion":
		return clidoc.Value{Words: []string{"sources", "sets", "times"}}
	case f.Name == "log-format":
		return clidoc.Value{Words: []string{"text", "json"}}
	}
	switch f.Name {
	case "config", "log-file", "to", "output", "public", "secret", "passphrase-file", "key-file", "source", "state-dir":
		return clidoc.Value{Files: true}
	}
	return clidoc.Value{}
}

// completionWords prints the words of kind: the config's source names, or
// the set ids or their times (compact UTC, as --at reads them) of the
// sources, from the cache in state_dir when it is fresh or the remote is
// slow. It prints nothing rather than fail: a tab press shows no error.
func completionWords(ctx context.Context, g *globals, kind string) error {
	cfg, err := loadConfig(g.config)
	if err != nil {
		return nil
	}
	switch kind {
	case "sources":
		for _, s := range cfg.Sources {
			fmt.Fprintln(g.stdout, s.Name)
		}
		return nil
	case "sets", "times":
	default:
		return usagef("completion --list %q: want sources, sets or times", kind)
	}
	sd := state.New(cfg.StateDir)
	cached, when, cacheErr := sd.Completion()
	ids := cached
	if cacheErr != nil || time.Since(when) > completionFresh {
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		if fresh, err := completionSetIDs(ctx, g, cfg); err == nil {
			ids = fresh
			sd.SetCompletion(fresh) // best effort: a read-only state_dir only costs speed
		}
	}
	for _, id := range strings.Fields(string(ids)) {
		if kind == "sets" {
			fmt.Fprintln(g.stdout, id)
		} else if _, ts, ok := strings.Cut(id, "-"); ok {
			fmt.Fprintln(g.stdout, ts)
		}
	}
	return nil
}

// completionSetIDs lists the set ids of the sources (or --source) on the remote.
func completionSetIDs(ctx context.Context, g *globals, cfg *Config) ([]byte, error) {
	ses := newSession(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := ses.connect(ctx); err != nil {
		return nil, err
	}
	defer ses.Close()
	targets, err := ses.targets(ctx, g, false)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, tg := range targets {
		r, err := ses.repositoryOf(tg)
		if err != nil {
			return nil, err
		}
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if _, _, ok := archive.ParseSetID(id); ok {
				fmt.Fprintln(&out, id)
			}
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("no sets")
	}
	return out.Bytes(), nil
}
