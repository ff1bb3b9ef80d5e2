package remote

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// RetryPolicy says which failures are tried again and how long to wait
// between the tries.
type RetryPolicy struct {
	Attempts   int              // tries per operation, the first included; below 1 means 1
	Backoff    time.Duration    // the first pause; it doubles after each try
	MaxBackoff time.Duration    // the longest pause
	Transient  func(error) bool // reports whether a failure may pass if tried again
}

// WithRetry returns b with its operations tried again, after a pause, when
// they fail with an error p calls transient:
//
//   - Put rewinds an io.ReadSeeker source to where it was and calls b.Put
//     again (a backend with Capabilities.ResumablePut then continues its
//     partial object); any other source is tried again only if none of it
//     was read.
//   - Get's reader reopens the object at the byte it had reached when a
//     transfer breaks, up to p.Attempts times without progress.
//   - Stat, List and Delete are simply called again.
//
// Each retry is logged at debug level on log (nil discards).
func WithRetry(b Backend, p RetryPolicy, log *slog.Logger) Backend {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &retrying{b: b, p: p, log: log}
}

type retrying struct {
	b   Backend
	p   RetryPolicy
	log *slog.Logger
}

func (r *retrying) Put(ctx context.Context, name string, src io.Reader) error {
	return r.put(ctx, name, src, r.b.Put)
}

// put runs one of the backend's uploads (Put or Create) with retries.
func (r *retrying) put(ctx context.Context, name string, src io.Reader, upload func(context.Context, string, io.Reader) error) error {
	rewind, src := rewinder(src)
	for attempt := 1; ; attempt++ {
		err := upload(ctx, name, src)
		if err == nil || !r.p.again(ctx, attempt, err) {
			return err
		}
		if rerr := rewind(); rerr != nil {
			return err // read already: cannot be sent again
		}
		r.log.Info("remote: retrying a put", "name", name, "attempt", attempt, "err", err)
		if serr := r.p.sleep(ctx, attempt); serr != nil {
			return fmt.Errorf("put %s: %w", name, serr)
		}
	}
}

func (r *retrying) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	g := &retryReader{r: r, ctx: ctx, name: name, off: off}
	if err := g.open(); err != nil {
		return nil, err
	}
	return g, nil
}

func (r *retrying) Stat(ctx context.Context, name string) (info Info, err error) {
	err = r.p.do(ctx, r.log, "stat", name, func() error {
		info, err = r.b.Stat(ctx, name)
		return err
	})
	return info, err
}

func (r *retrying) List(ctx context.Context, dir string) (infos []Info, err error) {
	err = r.p.do(ctx, r.log, "list", dir, func() error {
		infos, err = r.b.List(ctx, dir)
		return err
	})
	return infos, err
}

func (r *retrying) Delete(ctx context.Context, name string) error {
	return r.p.do(ctx, r.log, "delete", name, func() error { return r.b.Delete(ctx, name) })
}

func (r *retrying) Close() error { return r.b.Close() }

func (r *retrying) Capabilities() Capabilities { return r.b.Capabilities() }

// policyFor is a network backend's policy: cfg.Retries attempts, or
// defaultAttempts when it is not set.
func policyFor(cfg Config, defaultAttempts int, backoff time.Duration, transient func(error) bool) RetryPolicy {
	p := RetryPolicy{Attempts: cfg.Retries, Backoff: backoff, MaxBackoff: maxBackoff, Transient: transient}
	if p.Attempts <= 0 {
		p.Attempts = defaultAttempts
	}
	return p
}

// do runs op until it succeeds or fails for good.
func (p RetryPolicy) do(ctx context.Context, log *slog.Logger, what, name string, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || !p.again(ctx, attempt, err) {
			return err
		}
		log.Info("remote: retrying", "op", what, "name", name, "attempt", attempt, "err", err)
		if p.sleep(ctx, attempt) != nil {
			return err
		}
	}
}

// again reports whether failed try number attempt is worth another.
func (p RetryPolicy) again(ctx context.Context, attempt int, err error) bool {
	return ctx.Err() == nil && attempt < p.Attempts && p.Transient != nil && p.Transient(err)
}

// sleep waits before try attempt+1: Backoff, doubled for each earlier
// try, at most MaxBackoff.
func (p RetryPolicy) sleep(ctx context.Context, attempt int) error {
	d := p.Backoff << (attempt - 1)
	if d > p.MaxBackoff || d <= 0 {
		d = p.MaxBackoff
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rewinder returns the source to hand to each try and a function that
// makes it ready for the next one: an io.ReadSeeker goes back to its
// offset of now, any other reader is counted and cannot go back once read.
func rewinder(src io.Reader) (rewind func() error, _ io.Reader) {
	if rs, ok := src.(io.ReadSeeker); ok {
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return func() error {
				_, err := rs.Seek(start, io.SeekStart)
				return err
			}, src
		}
		// A pipe or terminal: not seekable after all.
	}
	c := &countingReader{r: src}
	return func() error {
		if c.n > 0 {
			return fmt.Errorf("%d bytes of the source were read", c.n)
		}
		return nil
	}, c
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// retryReader is Get's reader: when a transfer breaks it reopens the
// object where it had reached.
type retryReader struct {
	r        *retrying
	ctx      context.Context
	name     string
	off      int64
	failures int // in a row, without progress
	rc       io.ReadCloser
	closed   bool
}

func (g *retryReader) Read(p []byte) (int, error) {
	for {
		if g.closed {
			return 0, io.EOF
		}
		if g.rc == nil {
			if err := g.open(); err != nil {
				return 0, err
			}
		}
		n, err := g.rc.Read(p)
		g.off += int64(n)
		if err == nil || err == io.EOF {
			if n > 0 {
				g.failures = 0
			}
			return n, err
		}
		// The transfer broke: resume from g.off.
		g.rc.Close()
		g.rc = nil
		if n > 0 {
			return n, nil
		}
		if g.ctx.Err() != nil {
			return 0, fmt.Errorf("get %s: %w", g.name, g.ctx.Err())
		}
		g.failures++
		if !g.r.p.again(g.ctx, g.failures, err) {
			return 0, err
		}
		g.r.log.Info("remote: resuming a download", "name", g.name, "offset", g.off, "attempt", g.failures, "err", err)
		if serr := g.r.p.sleep(g.ctx, g.failures); serr != nil {
			return 0, fmt.Errorf("get %s: %w", g.name, serr)
		}
	}
}

func (g *retryReader) Close() error {
	g.closed = true
	if g.rc == nil {
		return nil
	}
	err := g.rc.Close()
	g.rc = nil
	return err
}

// open opens the object at g.off, trying again after transient failures.
func (g *retryReader) open() error {
	for {
		rc, err := g.r.b.Get(g.ctx, g.name, g.off)
		if err == nil {
			g.rc = rc
			return nil
		}
		g.failures++
		if !g.r.p.again(g.ctx, g.failures, err) {
			return err
		}
		g.r.log.Info("remote: retrying a get", "name", g.name, "offset", g.off, "attempt", g.failures, "err", err)
		if serr := g.r.p.sleep(g.ctx, g.failures); serr != nil {
			return fmt.Errorf("get %s: %w", g.name, serr)
		}
	}
}
