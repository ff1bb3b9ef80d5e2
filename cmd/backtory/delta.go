package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/internal/atomicfile"
	"github.com/backtory/backtory/rsyncdelta"
)

func init() {
	register(command{
		name:    "delta",
		summary: "rdiff-like signature, delta and patch with a keyed MAC (deltas in rdiff's format)",
		run: func(_ context.Context, st streams, args []string) error {
			return deltaCommand(args, st.stdin, st.stdout, st.stderr)
		},
		subs: []subcommand{
			{name: "keygen", summary: "write a new random key (64 hex digits, mode 0600)", args: "KEYFILE", flags: deltaKeygenFlags},
			{name: "signature", summary: "write the block signature of BASIS", args: "BASIS SIG", flags: func() *pflag.FlagSet { return deltaSignatureFlags(new(string), new(int)) }},
			{name: "delta", summary: "write the delta from SIG's basis to NEW (librsync's format)", args: "SIG NEW DELTA", flags: func() *pflag.FlagSet { return deltaDeltaFlags(new(string), new(bool)) }},
			{name: "patch", summary: "apply DELTA to BASIS (also deltas made by rdiff)", args: "BASIS DELTA OUT", flags: deltaPatchFlags},
		},
	})
}

const deltaUsage = `usage:
  backtory delta keygen KEYFILE                                  write a new random key (64 hex digits, mode 0600)
  backtory delta signature --key-file KEYFILE [--block-len N] BASIS SIG
  backtory delta delta --key-file KEYFILE [--stats] SIG NEW DELTA
  backtory delta patch BASIS DELTA OUT                           also applies deltas made by rdiff
The argument order is rdiff's. "-" means stdin or stdout, except for BASIS of patch, which must be a file.
The delta is in librsync's format: "rdiff patch BASIS DELTA OUT" applies it too.
A key file holds 32 raw bytes or 64 hex digits.`

// deltaCommand runs `backtory delta SUBCOMMAND`.
func deltaCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("delta: missing subcommand\n%s", deltaUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "keygen":
		return deltaKeygen(args)
	case "signature":
		return deltaSignature(args, stdin, stdout)
	case "delta":
		return deltaDelta(args, stdin, stdout, stderr)
	case "patch":
		return deltaPatch(args, stdin, stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, deltaUsage)
		return nil
	}
	return usagef("delta: unknown subcommand %q\n%s", sub, deltaUsage)
}

func deltaKeygen(args []string) error {
	fs := deltaKeygenFlags()
	if err := fs.Parse(args); err != nil {
		return usagef("delta keygen: %v", err)
	}
	if fs.NArg() != 1 {
		return usagef("delta keygen: want KEYFILE\n%s", deltaUsage)
	}
	key := make([]byte, rsyncdelta.KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("delta keygen: %w", err)
	}
	f, err := os.OpenFile(fs.Arg(0), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("delta keygen: %w (refusing to overwrite a key)", err)
	}
	if _, err := fmt.Fprintf(f, "%x\n", key); err != nil {
		f.Close()
		return fmt.Errorf("delta keygen: write %s: %w", fs.Arg(0), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("delta keygen: write %s: %w", fs.Arg(0), err)
	}
	return nil
}

func deltaSignature(args []string, stdin io.Reader, stdout io.Writer) error {
	keyFile, blockLen := new(string), new(int)
	fs := deltaSignatureFlags(keyFile, blockLen)
	if err := fs.Parse(args); err != nil {
		return usagef("delta signature: %v", err)
	}
	if fs.NArg() != 2 {
		return usagef("delta signature: want BASIS SIG\n%s", deltaUsage)
	}
	if *blockLen != 0 && (*blockLen < rsyncdelta.MinBlockLen || *blockLen > rsyncdelta.MaxBlockLen) {
		return usagef("delta signature: --block-len %d is outside %d..%d", *blockLen, rsyncdelta.MinBlockLen, rsyncdelta.MaxBlockLen)
	}
	key, err := readDeltaKey(*keyFile)
	if err != nil {
		return err
	}
	in, size, err := deltaOpenInput(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	return deltaWriteOutput(fs.Arg(1), stdout, func(w io.Writer) error {
		sw, err := rsyncdelta.NewSignatureWriter(w, key, *blockLen, size)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if _, werr := sw.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", fs.Arg(0), err)
			}
		}
		return sw.Close()
	})
}

func deltaDelta(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	keyFile, stats := new(string), new(bool)
	fs := deltaDeltaFlags(keyFile, stats)
	if err := fs.Parse(args); err != nil {
		return usagef("delta delta: %v", err)
	}
	if fs.NArg() != 3 {
		return usagef("delta delta: want SIG NEW DELTA\n%s", deltaUsage)
	}
	if fs.Arg(0) == "-" && fs.Arg(1) == "-" {
		return usagef("delta delta: SIG and NEW cannot both be stdin")
	}
	key, err := readDeltaKey(*keyFile)
	if err != nil {
		return err
	}
	sigIn, _, err := deltaOpenInput(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	sig, err := rsyncdelta.ReadSignature(sigIn, key)
	sigIn.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	in, _, err := deltaOpenInput(fs.Arg(1), stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	return deltaWriteOutput(fs.Arg(2), stdout, func(w io.Writer) error {
		st, err := rsyncdelta.Delta(sig, in, w)
		if err != nil {
			return err
		}
		if *stats {
			fmt.Fprintf(stderr, "delta: %d bytes: %d literal, %d copied, %d commands\n",
				st.DeltaBytes, st.LiteralBytes, st.CopyBytes, st.Commands)
		}
		return nil
	})
}

func deltaPatch(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := deltaPatchFlags()
	if err := fs.Parse(args); err != nil {
		return usagef("delta patch: %v", err)
	}
	if fs.NArg() != 3 {
		return usagef("delta patch: want BASIS DELTA OUT\n%s", deltaUsage)
	}
	if fs.Arg(0) == "-" {
		return usagef("delta patch: BASIS must be a file (a delta copies from anywhere in it)")
	}
	basis, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("delta patch: %w", err)
	}
	defer basis.Close()
	in, _, err := deltaOpenInput(fs.Arg(1), stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	return deltaWriteOutput(fs.Arg(2), stdout, func(w io.Writer) error {
		return rsyncdelta.Patch(basis, in, w)
	})
}

// readDeltaKey reads a key file: 32 raw bytes, or 64 hex digits with
// optional surrounding white space.
func readDeltaKey(path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("--key-file is required (make one with: backtory delta keygen KEYFILE)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if len(b) == rsyncdelta.KeySize {
		return b, nil
	}
	t := bytes.TrimSpace(b)
	key := make([]byte, rsyncdelta.KeySize)
	if len(t) != 2*rsyncdelta.KeySize {
		return nil, usagef("key file %s: want %d raw bytes or %d hex digits, found %d bytes", path, rsyncdelta.KeySize, 2*rsyncdelta.KeySize, len(b))
	}
	if _, err := hex.Decode(key, t); err != nil {
		return nil, usagef("key file %s: %v", path, err)
	}
	return key, nil
}

// deltaOpenInput opens path, or stdin for "-", and returns its size (-1 if not
// a regular file).
func deltaOpenInput(path string, stdin io.Reader) (io.ReadCloser, int64, error) {
	if path == "-" {
		return io.NopCloser(stdin), -1, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return f, -1, nil
	}
	return f, fi.Size(), nil
}

// deltaWriteOutput runs write on stdout for "-", or on a temporary file next to
// path that becomes path (mode 0600) only when write succeeds.
func deltaWriteOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		return write(stdout)
	}
	return atomicfile.Write(path, 0o600, write)
}

// deltaKeygenFlags returns the flag set of delta keygen (no flags).
func deltaKeygenFlags() *pflag.FlagSet {
	return pflag.NewFlagSet("delta keygen", pflag.ContinueOnError)
}

// deltaSignatureFlags returns the flag set of delta signature, bound to the given values.
func deltaSignatureFlags(keyFile *string, blockLen *int) *pflag.FlagSet {
	fs := pflag.NewFlagSet("delta signature", pflag.ContinueOnError)
	fs.StringVar(keyFile, "key-file", "", "file with the 32-byte MAC key (required)")
	fs.IntVar(blockLen, "block-len", 0, "block length in bytes (default: chosen from the basis size)")
	return fs
}

// deltaDeltaFlags returns the flag set of delta delta, bound to the given values.
func deltaDeltaFlags(keyFile *string, stats *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("delta delta", pflag.ContinueOnError)
	fs.StringVar(keyFile, "key-file", "", "file with the 32-byte MAC key the signature was made with (required)")
	fs.BoolVar(stats, "stats", false, "print the literal and copied byte counts to stderr")
	return fs
}

// deltaPatchFlags returns the flag set of delta patch (no flags).
func deltaPatchFlags() *pflag.FlagSet {
	return pflag.NewFlagSet("delta patch", pflag.ContinueOnError)
}
