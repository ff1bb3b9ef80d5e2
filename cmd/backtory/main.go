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
	run     func(ctx context.Context, args []string) error
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
	os.Exit(run(os.Args[1:]))
}

// memoryLimit is the Go runtime's soft memory limit.
const memoryLimit = 96 << 20

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Println("backtory", version)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "backtory: unknown command %q (see backtory --help)\n", args[0])
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second signal exits at once.
		<-ctx.Done()
		stop()
	}()
	err := c.run(ctx, args[1:])
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("interrupted by a signal: %s stopped (a backup commits no set; a restore leaves its target incomplete)", args[0])
	}
	return report(err)
}

// report prints err as one line and returns the exit code for it.
func report(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var we warningsError
	var le lockedError
	switch {
	case errors.As(err, &we):
		fmt.Fprintln(os.Stderr, "backtory: warning:", err)
		return exitWarnings
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "backtory:", err)
		return exitUsage
	case errors.As(err, &le):
		fmt.Fprintln(os.Stderr, "backtory:", err)
		return exitLocked
	default:
		fmt.Fprintln(os.Stderr, "backtory:", err)
		return exitFailed
	}
}

func printUsage() {
	fmt.Fprintln(os.Stderr, "usage: backtory COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nEvery command takes --config PATH (default /etc/backtory/backtory.yaml).")
}
