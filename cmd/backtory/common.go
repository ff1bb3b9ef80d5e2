package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/recovery"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/state"
)

// globals are the flags every command that reads the config takes, and
// the command's streams.
type globals struct {
	streams
	config    string
	source    string
	verbose   bool
	quiet     bool
	logFile   string
	logFormat string
	// progress is the terminal's progress line (a no-op off a terminal).
	progress *progress
}

func (g *globals) register(fs *pflag.FlagSet) {
	fs.StringVarP(&g.config, "config", "c", defaultConfigPath, "config file")
	fs.StringVar(&g.source, "source", "", "the source to act on (default: every source, or the only one)")
	fs.BoolVarP(&g.verbose, "verbose", "v", false, "say more")
	fs.BoolVarP(&g.quiet, "quiet", "q", false, "print errors only")
	fs.StringVar(&g.logFile, "log-file", "", "also append the log to this file")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
}

// parseFlags parses args with fs and turns flag errors into usage errors;
// --help prints the command's help to stdout and returns errHelpShown
// (exit 0). Arguments after the flags are an error unless the command
// takes some (takesArgs).
func (st streams) parseFlags(fs *pflag.FlagSet, args []string) error {
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			printCommandHelp(st.stdout, fs)
			return errHelpShown
		}
		return usagef("%s: %v (see backtory %s --help)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 && takesArgs[fs.Name()] == "" {
		return usagef("%s takes no arguments (got %q; see backtory %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// takesArgs names the arguments after the flags of the commands that take
// some, for their help.
var takesArgs = map[string]string{
	"ls":              "[PATH...]",
	"restore":         "[PATH...]",
	"key import":      "[FROM]",
	"key fingerprint": "FILE...",
}

// printCommandHelp prints a command's usage line, summary and flags.
func printCommandHelp(w io.Writer, fs *pflag.FlagSet) {
	usage := "backtory " + fs.Name() + " [flags]"
	if a := takesArgs[fs.Name()]; a != "" {
		usage += " " + a
	}
	fmt.Fprintf(w, "usage: %s\n", usage)
	if c, ok := commands[fs.Name()]; ok {
		fmt.Fprintf(w, "\n%s.\n", c.summary)
	}
	fmt.Fprintf(w, "\nflags:\n%s", fs.FlagUsages())
}

// setup loads the config and the logger.
func (g *globals) setup() (*Config, *slog.Logger, error) {
	cfg, err := loadConfig(g.config)
	if err != nil {
		return nil, nil, err
	}
	log, err := g.logger()
	if err != nil {
		return nil, nil, err
	}
	return cfg, log, nil
}

// logger returns the run's logger: human lines on a terminal, quiet under
// cron (warnings and errors only) unless --verbose.
func (g *globals) logger() (*slog.Logger, error) {
	level := slog.LevelWarn
	onTerminal := isTerminal(g.stderr)
	if onTerminal {
		level = slog.LevelInfo
	}
	if g.verbose {
		level = slog.LevelDebug
	}
	if g.quiet {
		level = slog.LevelError
	}
	// The progress line goes to a terminal only, never into logs or pipes.
	g.progress = newProgress(g.stderr, onTerminal && !g.quiet && g.logFormat == "text")
	var w io.Writer = g.progress.Writer(g.stderr)
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, usagef("log file: %v", err)
		}
		w = io.MultiWriter(w, f)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(newLineHandler(w, level, false)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", g.logFormat)
}

// sources returns the configured sources the command acts on.
func (g *globals) sources(cfg *Config) ([]*Source, error) {
	if g.source != "" {
		s, err := cfg.source(g.source)
		if err != nil {
			return nil, err
		}
		return []*Source{s}, nil
	}
	out := make([]*Source, len(cfg.Sources))
	for i := range cfg.Sources {
		out[i] = &cfg.Sources[i]
	}
	return out, nil
}

// oneSource returns the source a read command acts on: --source, or the
// only one.
func (g *globals) oneSource(cfg *Config) (*Source, error) {
	if g.source == "" && len(cfg.Sources) > 1 {
		names := make([]string, len(cfg.Sources))
		for i, s := range cfg.Sources {
			names[i] = s.Name
		}
		return nil, usagef("the config has several sources: say which with --source (%s)", strings.Join(names, ", "))
	}
	if g.source == "" {
		return &cfg.Sources[0], nil
	}
	return cfg.source(g.source)
}

// openRemote opens the configured remote, logging to log; a failure is a
// usage error when the remote cannot be used at all (a bad URL, an
// unwritable directory).
func openRemote(ctx context.Context, cfg *Config, log *slog.Logger) (remote.Backend, error) {
	b, err := remote.Open(ctx, cfg.Remote, log)
	if err != nil {
		return nil, usagef("%s:%d: %v", cfg.path, cfg.line("remote", "url"), err)
	}
	return b, nil
}

// newRepository returns the repository of one source's sets.
func newRepository(cfg *Config, b remote.Backend, src *Source, spool string, sealer archive.Sealer) *archive.Repository {
	return &archive.Repository{Backend: b, SpoolDir: spool, Host: cfg.Host, Source: src.Name, Sealer: sealer}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// session is what a command that works with the remote needs.
type session struct {
	cfg    *Config
	state  *state.Dir
	log    *slog.Logger
	b      remote.Backend
	spool  string          // this process's own spool directory
	sealer archive.Sealer  // nil: sets are not sealed
	signer recovery.Signer // nil: recover.sh and the binary are not signed

	releaseSpool func() // removes the spool directory
}

// open loads the config and the keys, and opens the remote. Close it.
func (g *globals) open(ctx context.Context) (*session, error) {
	cfg, log, err := g.setup()
	if err != nil {
		return nil, err
	}
	box, err := cfg.keys()
	if err != nil {
		return nil, err
	}
	ses := &session{cfg: cfg, state: state.New(cfg.StateDir), log: log}
	if box != nil {
		ses.sealer = box
		if box.SignerFingerprint() != "" { // passphrase mode has no signing key
			ses.signer = box
		}
	}
	spool, release, err := ses.state.Spool()
	if err != nil {
		return nil, usagef("state_dir: %v", err)
	}
	b, err := openRemote(ctx, cfg, log)
	if err != nil {
		release()
		return nil, err
	}
	ses.b, ses.spool, ses.releaseSpool = b, spool, release
	return ses, nil
}

func (s *session) Close() error {
	s.releaseSpool()
	return s.b.Close()
}

// cleanLeftovers removes (or with dryRun counts) what killed runs left in
// state_dir, and logs it; call it holding the run lock.
func (s *session) cleanLeftovers(dryRun bool) state.Leftovers {
	l, err := s.state.CleanLeftovers(time.Now(), dryRun)
	if l.Files > 0 && !dryRun {
		s.log.Info("removed the leftovers of interrupted runs from state_dir", "files", l.Files, "bytes", l.Bytes, "state_dir", s.cfg.StateDir)
	}
	if err != nil {
		s.log.Warn("cannot remove every leftover of interrupted runs from state_dir", "err", err)
	}
	return l
}

// repository returns the repository of one source's sets.
func (s *session) repository(src *Source) *archive.Repository {
	return newRepository(s.cfg, s.b, src, s.spool, s.sealer)
}

// pick returns the set a read command acts on (--set ID, else the newest
// at or before --at, else the newest), after checking that the remote was
// not rolled back.
func (s *session) pick(ctx context.Context, src *Source, setID, at string) (*archive.Repository, *archive.Manifest, error) {
	r := s.repository(src)
	if err := checkRollback(ctx, s.state, r); err != nil {
		return nil, nil, err
	}
	id, err := pickSet(ctx, r, setID, at)
	if err != nil {
		return nil, nil, err
	}
	m, _, err := r.Manifest(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return r, m, nil
}
