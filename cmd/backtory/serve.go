package main

// The serve command: the read-only web dashboard (package dashboard) of
// every host's sets and runs on the remote.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/dashboard"
	"github.com/backtory/backtory/policy"
)

func init() {
	register(command{name: "serve", summary: "a read-only web dashboard of every host's sets, runs and files on the remote", run: runServe,
		flags: func() *pflag.FlagSet {
			var o serveOpts
			return serveFlags(new(globals), &o)
		}})
}

// serveOpts are serve's flags.
type serveOpts struct {
	listen, certFile, keyFile, pwFile, maxAge string
	behindProxy                               bool
}

func serveFlags(g *globals, o *serveOpts) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(&o.listen, "listen", defaultListen, "address to listen on (host:port); anything but a loopback address needs --tls-cert, --tls-key and --password-file, or --behind-proxy")
	fs.StringVar(&o.certFile, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&o.keyFile, "tls-key", "", "and this private key (PEM)")
	fs.StringVar(&o.pwFile, "password-file", "", "ask for a user and password (HTTP basic auth) from this file of user:bcrypt-hash lines (htpasswd -nB USER)")
	fs.BoolVar(&o.behindProxy, "behind-proxy", false, "listen on a non-loopback address without TLS or password: a reverse proxy in front does both (README)")
	fs.StringVar(&o.maxAge, "max-age", "26h", "a source whose last successful run is older shows amber (twice as old: red)")
	return fs
}

// defaultListen is where serve listens without --listen.
const defaultListen = "127.0.0.1:8420"

func runServe(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var o serveOpts
	fs := serveFlags(&g, &o)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	listen, certFile, keyFile, pwFile, maxAgeFlag, behindProxy := o.listen, o.certFile, o.keyFile, o.pwFile, o.maxAge, o.behindProxy
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments (got %q)", fs.Arg(0))
	}
	maxAge, err := policy.ParseDuration(maxAgeFlag)
	if err != nil || maxAge == 0 {
		return usagef("serve: --max-age %q: want a duration such as 26h or 2d", maxAgeFlag)
	}
	if (certFile == "") != (keyFile == "") {
		return usagef("serve: --tls-cert and --tls-key go together")
	}
	if !dashboard.IsLoopback(listen) && !behindProxy && (certFile == "" || pwFile == "") {
		return usagef("serve: --listen %s is not a loopback address: give --tls-cert, --tls-key and --password-file, or --behind-proxy when a reverse proxy does TLS and authentication", listen)
	}
	var pw dashboard.Passwords
	if pwFile != "" {
		if pw, err = dashboard.ReadPasswords(pwFile); err != nil {
			return usagef("serve: --password-file: %v", err)
		}
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	ses.b = dashboard.ReadOnly(ses.b)
	h, err := newDashboard(ses, &g, maxAge)
	if err != nil {
		return err
	}
	if pw != nil {
		h = dashboard.BasicAuth(h, pw)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	fmt.Fprintf(st.stdout, "serving the dashboard on %s://%s/\n", scheme, ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() {
		if certFile != "" {
			done <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err = <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// newDashboard returns the dashboard of the session's remote: every
// host's sources, opened with this config's keys.
func newDashboard(ses *session, g *globals, maxAge time.Duration) (http.Handler, error) {
	rules, err := policy.ParseThinning(ses.cfg.Policy.KeepDiffs)
	if err != nil {
		return nil, usagef("%s: keep_diffs: %v", ses.cfg.path, err)
	}
	return dashboard.New(dashboard.Config{
		Sources: func(ctx context.Context) ([]dashboard.SourceRef, error) {
			ts, err := ses.targets(ctx, g, true)
			if err != nil {
				return nil, err
			}
			out := make([]dashboard.SourceRef, len(ts))
			for i, t := range ts {
				out[i] = dashboard.SourceRef{Host: t.host, Source: t.src.Name}
			}
			return out, nil
		},
		Open: func(host, source string) (*archive.Repository, error) {
			return ses.repositoryOf(target{host, &Source{Name: source}})
		},
		MaxAge: maxAge, KeepFulls: ses.cfg.Policy.KeepFulls, Rules: rules, Log: ses.log,
	})
}
