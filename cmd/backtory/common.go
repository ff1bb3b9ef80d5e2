package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/priority"
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
	// progressEvery, when set, logs the progress this often off a terminal.
	progressEvery time.Duration
	// progress is the terminal's progress line (a no-op off a terminal).
	progress *progress
	// fileLog writes to --log-file only (nil without one): the command's
	// final error goes there, as it goes to stderr.
	fileLog  *slog.Logger
	logClose func() error
}

func (g *globals) register(fs *pflag.FlagSet) {
	fs.StringVarP(&g.config, "config", "c", defaultConfigPath, "config file")
	fs.StringVar(&g.source, "source", "", "the source to act on (default: every source, or the only one)")
	fs.BoolVarP(&g.verbose, "verbose", "v", false, "say more")
	fs.BoolVarP(&g.quiet, "quiet", "q", false, "print warnings and errors only (no progress, no info)")
	fs.StringVar(&g.logFile, "log-file", "", "also append the log to this file (info and up, timestamped, even with --quiet)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&g.progressEvery, "progress-interval", 0, "off a terminal, log the progress this often (e.g. 1m)")
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
	"mount":           "DIR",
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

// setup loads the config and the logger, and sets the process's CPU and
// I/O priority as the config says (nice, ionice).
func (g *globals) setup() (*Config, *slog.Logger, error) {
	cfg, err := loadConfig(g.config)
	if err != nil {
		return nil, nil, err
	}
	log, err := g.logger()
	if err != nil {
		return nil, nil, err
	}
	if err := priority.Apply(cfg.Nice, cfg.ioPrio); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.path, err)
	}
	return cfg, log, nil
}

// logger returns the run's logger. On stderr: info and up (--quiet:
// warnings and errors; --verbose: debug), text lines timestamped off a
// terminal, with sd-daemon priority prefixes and no timestamp when stderr
// is the systemd journal (see journalStream). To --log-file: info and up
// (debug with --verbose) whatever --quiet says, always timestamped.
func (g *globals) logger() (*slog.Logger, error) {
	if g.logFormat != "text" && g.logFormat != "json" {
		return nil, usagef("--log-format %q: want text or json", g.logFormat)
	}
	if g.progressEvery < 0 {
		return nil, usagef("--progress-interval %v: want a positive duration", g.progressEvery)
	}
	level, fileLevel := slog.LevelInfo, slog.LevelInfo
	switch {
	case g.verbose:
		level, fileLevel = slog.LevelDebug, slog.LevelDebug
	case g.quiet:
		level = slog.LevelWarn
	}
	onTerminal := isTerminal(g.stderr)
	// The progress line goes to a terminal only, never into logs or pipes.
	g.progress = newProgress(g.stderr, onTerminal && !g.quiet && g.logFormat == "text")
	w := g.progress.Writer(g.stderr)
	var h slog.Handler
	if g.logFormat == "json" {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	} else {
		lh := newLineHandler(w, level, !onTerminal)
		if journalStream(g.stderr) {
			lh.withTime, lh.journal = false, true
		}
		h = lh
	}
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, usagef("log file: %v", err)
		}
		g.logClose = f.Close
		var fh slog.Handler = newLineHandler(f, fileLevel, true)
		if g.logFormat == "json" {
			fh = slog.NewJSONHandler(f, &slog.HandlerOptions{Level: fileLevel})
		}
		g.fileLog = slog.New(fh)
		h = slog.NewMultiHandler(h, fh)
	}
	log := slog.New(h)
	if !onTerminal && g.progressEvery > 0 {
		g.progress.Periodic(log, g.progressEvery)
	}
	return log, nil
}

// finish logs the command's outcome to --log-file (stderr has it from
// report) and closes the file: an error at error level, a run that ended
// with warnings at warning level. It returns err.
func (g *globals) finish(cmd string, err error) error {
	if g.fileLog != nil && err != nil {
		var we warningsError
		if errors.As(err, &we) {
			g.fileLog.Warn(cmd+" done with warnings", "err", err)
		} else {
			g.fileLog.Error(cmd+" failed", "err", err)
		}
	}
	if g.logClose != nil {
		g.logClose()
		g.fileLog, g.logClose = nil, nil
	}
	return err
}

// journalStream reports whether w is the systemd journal: systemd sets
// JOURNAL_STREAM to the device and inode of the stream it connects to a
// service's stderr (systemd.exec(5)), so a journal line needs no
// timestamp, and a "<N>" prefix gives it its priority.
func journalStream(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
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

// openRemote opens the configured remote, logging to log. A remote that
// cannot be used as configured (a bad URL, no password, a local directory
// that cannot be made) is a usage error with the config's line; a server
// that is down, refuses the login or fails TLS is a failure of the run.
func openRemote(ctx context.Context, cfg *Config, log *slog.Logger) (remote.Backend, error) {
	b, err := remote.Open(ctx, cfg.Remote, log)
	var ce *remote.ConfigError
	if errors.As(err, &ce) {
		return nil, usagef("%s:%d: %v", cfg.path, cfg.line("remote", "url"), err)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
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

	repos map[string]*archive.Repository // by source name: one per source, its manifests read once
}

// open loads the config and the keys, and opens the remote. Close it.
func (g *globals) open(ctx context.Context) (*session, error) {
	cfg, log, err := g.setup()
	if err != nil {
		return nil, err
	}
	ses := newSession(cfg, log)
	if err := ses.connect(ctx); err != nil {
		return nil, err
	}
	return ses, nil
}

// newSession returns the session of a loaded config, not yet connected.
func newSession(cfg *Config, log *slog.Logger) *session {
	return &session{cfg: cfg, state: state.New(cfg.StateDir), log: log, releaseSpool: func() {}}
}

// connect loads the keys, makes this process's spool and opens the remote.
func (s *session) connect(ctx context.Context) error {
	box, err := s.cfg.keys()
	if err != nil {
		return err
	}
	if box != nil {
		s.sealer = box
		if box.SignerFingerprint() != "" { // passphrase mode has no signing key
			s.signer = box
		}
	}
	spool, release, err := s.state.Spool()
	if err != nil {
		return usagef("state_dir: %v", err)
	}
	b, err := openRemote(ctx, s.cfg, s.log)
	if err != nil {
		release()
		return err
	}
	s.b, s.spool, s.releaseSpool = b, spool, release
	return nil
}

// Close releases the spool and closes the remote, if it was opened.
func (s *session) Close() error {
	s.releaseSpool()
	if s.b == nil {
		return nil
	}
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
	if r, ok := s.repos[src.Name]; ok {
		return r
	}
	if s.repos == nil {
		s.repos = map[string]*archive.Repository{}
	}
	r := &archive.Repository{Backend: s.b, SpoolDir: s.spool, Host: s.cfg.Host, Source: src.Name, Sealer: s.sealer}
	s.repos[src.Name] = r
	return r
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
