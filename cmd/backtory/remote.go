package main

// The remote command: `backtory remote trust` records an SFTP server's
// host key in the known_hosts file after showing it.

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/remote"
)

func init() {
	register(command{name: "remote", summary: "the remote: trust an SFTP server's host key", run: remoteCommand,
		subs: []subcommand{{name: "trust", summary: "show the host key of the configured sftp:// server and record it in remote.known_hosts", flags: func() *pflag.FlagSet {
			return remoteTrustFlags(new(globals), new(string))
		}}}})
}

const remoteUsage = `usage:
  backtory remote trust [--fingerprint SHA256:...] [--config FILE]
        show the host key of the configured sftp:// server and record it in
        remote.known_hosts (default /etc/backtory/known_hosts); with
        --fingerprint, only if the key has that fingerprint (compare it with
        ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server).
        A key that differs from the recorded one is never replaced.`

func remoteCommand(ctx context.Context, st streams, args []string) error {
	if len(args) == 0 {
		return usagef("remote: missing subcommand\n%s", remoteUsage)
	}
	switch args[0] {
	case "trust":
		return remoteTrust(ctx, st, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(st.stdout, remoteUsage)
		return nil
	}
	return usagef("remote: unknown subcommand %q\n%s", args[0], remoteUsage)
}

func remoteTrust(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	want := new(string)
	fs := remoteTrustFlags(&g, want)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("remote trust takes no arguments (got %q)", fs.Arg(0))
	}
	cfg, err := loadConfig(g.config)
	if err != nil {
		return err
	}
	hk, err := remote.ScanHostKey(ctx, cfg.Remote)
	if err != nil {
		return fmt.Errorf("remote trust: %w", err)
	}
	fmt.Fprintf(st.stdout, "the SFTP server %s offers %s\n", hk.Addr, remote.KeyString(hk.Key))
	switch {
	case hk.Known:
		fmt.Fprintf(st.stdout, "%s already trusts it: nothing to do\n", hk.KnownHosts)
		return nil
	case hk.Changed:
		return fmt.Errorf("remote trust: %w", hk.Err)
	case *want != "" && *want != remote.Fingerprint(hk.Key):
		return errors.New("remote trust: the server's key is not the one given with --fingerprint: NOT recorded (someone may be intercepting the connection, or the fingerprint is of another key)")
	}
	if err := remote.TrustHostKey(hk.KnownHosts, hk.Addr, hk.Key); err != nil {
		return fmt.Errorf("remote trust: %w", err)
	}
	fmt.Fprintf(st.stdout, "recorded in %s\n", hk.KnownHosts)
	return nil
}

// remoteTrustFlags returns the flag set of remote trust, bound to the given values.
func remoteTrustFlags(g *globals, want *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("remote trust", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(want, "fingerprint", "", "record the key only if its SHA-256 fingerprint is this (SHA256:...)")
	return fs
}
