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
)

// version is stamped by the Makefile with -ldflags "-X main.version=...".
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "backtory", version)
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
	if err == nil {
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

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: backtory COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --config PATH (default /etc/backtory/backtory.yaml).")
}
