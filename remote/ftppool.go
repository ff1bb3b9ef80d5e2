package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"
)

// ftpPool dials and logs in FTP control connections and keeps idle ones
// for reuse. It does one attempt per call; retrying is the caller's job.
type ftpPool struct {
	addr     string // host:port
	user     string
	password string
	tls      *tls.Config // nil for plain FTP
	implicit bool
	timeout  time.Duration // the watchdog on every network read and write

	mu      sync.Mutex
	idle    []idleConn
	maxIdle int
	closed  bool
}

// close quits the idle connections; connections in use are quit when
// they are released.
func (p *ftpPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, ic := range idle {
		ic.c.quit()
	}
}

// run runs op on one connection. A cancelled ctx closes the connection,
// which interrupts whatever op is waiting for.
func (p *ftpPool) run(ctx context.Context, op func(c *ftpConn) error) error {
	c, err := p.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.kill)
	err = op(c)
	if !stop() {
		c.kill()
		return ctx.Err()
	}
	p.release(c, err)
	return err
}

// ftpConn is one logged-in control connection.
type ftpConn struct {
	sc *ftp.ServerConn

	mu      sync.Mutex
	control net.Conn // the raw TCP connections, closed by kill
	data    net.Conn
	dead    bool
}

type idleConn struct {
	c     *ftpConn
	since time.Time
}

// idleCheck: an idle connection older than this is probed with NOOP before use.
const idleCheck = 15 * time.Second

// get returns an idle connection or dials a new one.
func (p *ftpPool) get(ctx context.Context) (*ftpConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("the remote is closed")
		}
		if len(p.idle) == 0 {
			p.mu.Unlock()
			return p.dial(ctx)
		}
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		if time.Since(ic.since) < idleCheck || ic.c.sc.NoOp() == nil {
			return ic.c, nil
		}
		ic.c.kill()
	}
}

// release returns c to the idle pool unless err says it may be out of sync.
func (p *ftpPool) release(c *ftpConn, err error) {
	if err != nil && !isReply(err) {
		c.kill()
		return
	}
	p.mu.Lock()
	if !p.closed && len(p.idle) < p.maxIdle && !c.isDead() {
		p.idle = append(p.idle, idleConn{c, time.Now()})
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.quit()
	}
}

// dial connects and logs in. Every network read and write on the session
// gets a deadline of p.timeout (the watchdog for a server that stops
// answering); TLS is layered here because the library does not wrap
// connections that come from a custom dial function.
func (p *ftpPool) dial(ctx context.Context) (*ftpConn, error) {
	c := &ftpConn{}
	dialer := &net.Dialer{Timeout: p.timeout}
	first := true
	dialFunc := func(network, addr string) (net.Conn, error) {
		control := first
		first = false
		dctx := context.Background()
		if control {
			dctx = ctx
		}
		raw, err := dialer.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		if !c.track(raw, control) {
			raw.Close()
			return nil, net.ErrClosed
		}
		var nc net.Conn = &watchConn{Conn: raw, timeout: p.timeout}
		switch {
		case p.tls == nil:
			return nc, nil
		case control && p.implicit:
			tc := tls.Client(nc, p.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, &tlsError{err}
			}
			return tc, nil
		case control:
			return nc, nil // explicit: the library starts TLS after AUTH TLS
		default:
			return &tlsData{Conn: tls.Client(nc, p.tls), timeout: p.timeout}, nil
		}
	}
	opts := []ftp.DialOption{ftp.DialWithDialFunc(dialFunc)}
	if p.tls != nil {
		if p.implicit {
			opts = append(opts, ftp.DialWithTLS(p.tls))
		} else {
			opts = append(opts, ftp.DialWithExplicitTLS(p.tls))
		}
	}
	stop := context.AfterFunc(ctx, c.kill)
	defer stop()
	sc, err := ftp.Dial(p.addr, opts...)
	if err != nil {
		c.kill()
		return nil, p.dialError(err)
	}
	c.sc = sc
	if err := sc.Login(p.user, p.password); err != nil {
		c.kill()
		switch {
		case isTLSError(err):
			return nil, p.dialError(err)
		case errors.As(err, new(net.Error)), errors.Is(err, io.EOF):
			return nil, fmt.Errorf("login: %w", err)
		}
		// A reply (530 and the like, or USER refused outright).
		hint := "check remote.user and the password"
		if low := strings.ToLower(replyText(err)); p.tls == nil && (strings.Contains(low, "encrypt") || strings.Contains(low, "tls") || strings.Contains(low, "ssl")) {
			hint = "the server requires FTPS: use ftps://"
		}
		return nil, &userError{fmt.Sprintf("login refused for user %q: %s (%s)", p.user, replyText(err), hint), err}
	}
	return c, nil
}

func (p *ftpPool) dialError(err error) error {
	var oe *net.OpError
	switch {
	case isTLSError(err):
		msg := fmt.Sprintf("TLS handshake with %s failed: %v", p.addr, tlsReason(err))
		switch {
		case errors.As(err, new(x509.HostnameError)):
			msg += " (the certificate is for another name: put a name it was issued for in remote.url)"
		case errors.As(err, new(*tls.CertificateVerificationError)):
			msg += " (the server's certificate does not verify: set remote.tls_ca to the CA that signed it)"
		}
		return &userError{msg, err}
	case errors.As(err, &oe) && oe.Op == "dial":
		return &userError{fmt.Sprintf("cannot connect to %s: %v", p.addr, oe.Err), err}
	case isReply(err) && p.tls != nil && !p.implicit && !hasCode(err, ftp.StatusNotAvailable):
		return &userError{fmt.Sprintf("the server at %s refused AUTH TLS: %s (does it support explicit FTPS?)", p.addr, replyText(err)), err}
	case isReply(err):
		return &userError{fmt.Sprintf("the server at %s refused the session: %s", p.addr, replyText(err)), err}
	}
	return &userError{fmt.Sprintf("cannot start a session with %s: %v", p.addr, err), err}
}

func tlsReason(err error) string {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv.Err.Error()
	}
	var te *tlsError
	if errors.As(err, &te) {
		return te.err.Error()
	}
	return err.Error()
}

// track records a raw connection so kill can close it; false if the
// session is already dead.
func (c *ftpConn) track(raw net.Conn, control bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return false
	}
	if control {
		c.control = raw
	} else {
		c.data = raw
	}
	return true
}

// kill closes the session's sockets at once; safe from any goroutine.
func (c *ftpConn) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	for _, n := range []net.Conn{c.control, c.data} {
		if n != nil {
			n.Close()
		}
	}
}

func (c *ftpConn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// quit says goodbye politely, then closes.
func (c *ftpConn) quit() {
	if !c.isDead() && c.sc != nil {
		_ = c.sc.Quit()
	}
	c.kill()
}

// watchConn gives every Read and Write a deadline: a server that stops
// answering fails the operation after the timeout instead of hanging.
type watchConn struct {
	net.Conn
	timeout time.Duration
}

func (w *watchConn) Read(p []byte) (int, error) {
	_ = w.Conn.SetReadDeadline(time.Now().Add(w.timeout))
	return w.Conn.Read(p)
}

func (w *watchConn) Write(p []byte) (int, error) {
	_ = w.Conn.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.Conn.Write(p)
}

// tlsData is a TLS data connection that, after an upload, closes
// gracefully: it sends close_notify and reads until the server closes.
// Closing with unread bytes (TLS 1.3 session tickets) would send a TCP RST,
// and vsftpd then drops data it has not yet read.
type tlsData struct {
	*tls.Conn
	timeout time.Duration
	wrote   bool // an upload: close gracefully
	failed  bool // a write failed: the peer is gone or stuck, just close
}

func (t *tlsData) Write(p []byte) (int, error) {
	t.wrote = true
	n, err := t.Conn.Write(p)
	if err != nil {
		t.failed = true
	}
	return n, err
}

func (t *tlsData) Close() error {
	if t.wrote && !t.failed {
		if err := t.Conn.CloseWrite(); err == nil {
			_ = t.Conn.SetReadDeadline(time.Now().Add(t.timeout))
			_, _ = io.Copy(io.Discard, t.Conn)
		}
	}
	return t.Conn.Close()
}
