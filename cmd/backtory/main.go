// Command backtory backs up Linux servers: snapshot, differential archive,
// OpenPGP sealing, upload, and a POSIX shell recovery script.
//
// Each subcommand lives in its own file (backup.go, restore.go, ...) and
// only parses flags and calls into the packages that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/spf13/pflag"
)

// version is stamped by the Makefile with -ldflags "-X main.version=...";
// without it, versionString reads the build info Go records.
var version = "dev"

// Exit codes, documented in README.md.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitWarnings = 3
	exitLocked   = 4
)

// A command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, st streams, args []string) error
	// flags returns a new flag set of the command, bound to throwaway
	// values, for its man page and completions; nil for a command with
	// subcommands.
	flags func() *pflag.FlagSet
	// subs are the subcommands, in the order of the command's usage.
	subs []subcommand
	// hidden leaves the command out of the usage, pages and completions.
	hidden bool
}

// A subcommand is one subcommand of a command (key generate, ...).
type subcommand struct {
	name    string
	summary string
	// args names the arguments after the flags ("" for none).
	args  string
	flags func() *pflag.FlagSet
}

// streams are what a command reads and writes: the process's standard
// streams from main, buffers in tests.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// commands is the table of subcommands, filled by each command's file in init.
var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// usageError marks an error caused by bad input (flags, config): exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// warningsError reports a run that finished but has something to say (exit 3).
type warningsError struct{ msg string }

func (e warningsError) Error() string { return e.msg }

// lockedError reports that another run holds the lock (exit 4).
type lockedError struct{ err error }

func (e lockedError) Error() string { return e.err.Error() }
func (e lockedError) Unwrap() error { return e.err }

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The live heap stays about 40 MiB whatever the tree's size; a soft
		// limit keeps the garbage collector from letting the RSS drift far
		// above it on big trees.
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal exits at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// memoryLimit is the Go runtime's soft memory limit.
const memoryLimit = 96 << 20

// run runs the command line args (without the program name) and returns
// the exit code. The process's standard input is the commands' stdin.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	st := streams{stdin: os.Stdin, stdout: stdout, stderr: stderr}
	switch {
	case len(args) == 0:
		printUsage(stderr)
		return exitUsage
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1:
		printUsage(stdout)
		return exitOK
	case args[0] == "help":
		// help CMD [SUB] is CMD [SUB] --help.
		args = append(args[1:len(args):len(args)], "--help")
	case args[0] == "version" || args[0] == "--version":
		if len(args) > 1 {
			return report(stderr, usagef("%s takes no arguments (got %q)", args[0], args[1]))
		}
		fmt.Fprintln(stdout, "backtory", versionString())
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "backtory: unknown command %q (see backtory --help)\n", args[0])
		return exitUsage
	}
	err := c.run(ctx, st, args[1:])
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("interrupted by a signal: %s stopped (a backup commits no set; a restore leaves its target incomplete)", args[0])
	}
	return report(stderr, err)
}

// report prints err as one line and returns the exit code for it.
func report(stderr io.Writer, err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return exitOK
	}
	var ue usageError
	var we warningsError
	var le lockedError
	// In the systemd journal the line carries its priority, as the log's.
	prio := func(p string) string {
		if journalStream(stderr) {
			return p
		}
		return ""
	}
	switch {
	case errors.As(err, &we):
		fmt.Fprintln(stderr, prio("<4>")+"backtory: warning:", err)
		return exitWarnings
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, prio("<3>")+"backtory:", err)
		return exitUsage
	case errors.As(err, &le):
		fmt.Fprintln(stderr, prio("<3>")+"backtory:", err)
		return exitLocked
	default:
		fmt.Fprintln(stderr, prio("<3>")+"backtory:", err)
		return exitFailed
	}
}

// errHelpShown is what a command returns after printing its --help: exit 0.
var errHelpShown = errors.New("help shown")

// versionString is the -ldflags version, else the module version, VCS
// revision and time that Go records in every build made in a checkout.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	v := version
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (" + rev + dirty + " " + when + ")"
	}
	return v + " " + bi.GoVersion
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: backtory COMMAND [flags]\n\ncommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --config PATH (default /etc/backtory/backtory.yaml).\n"+
		"backtory help COMMAND (or COMMAND --help) shows a command's flags; backtory --version its version.")
}

// commandNames returns the names of the commands that are not hidden, sorted.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
