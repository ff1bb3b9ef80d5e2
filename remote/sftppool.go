package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// sftpPool dials SSH connections with an SFTP session each and keeps up to
// maxIdle idle ones. Every connection sends keepalives and is closed when
// the server leaves one unanswered for timeout.
type sftpPool struct {
	addr       string
	config     *ssh.ClientConfig
	timeout    time.Duration
	maxIdle    int
	log        *slog.Logger
	closeAgent func()

	mu     sync.Mutex
	idle   []*sftpConn
	closed bool
}

// sftpConn is one SSH connection and its SFTP client.
type sftpConn struct {
	nc   net.Conn
	ssh  *ssh.Client
	sc   *sftp.Client
	done chan struct{} // closed by kill
	once sync.Once
	// stalled is set when the keepalive gave up on the server.
	stalled atomic.Bool
}

// errStalled: the server left a keepalive unanswered for the timeout.
var errStalled = errors.New("the server stopped answering (keepalive timed out)")

// run calls op on a connection; the connection goes back to the pool when
// op succeeds or fails with the server's answer, and is dropped otherwise.
// Cancelling ctx kills the connection, which ends op.
func (p *sftpPool) run(ctx context.Context, op func(c *sftpConn) error) error {
	c, err := p.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.kill)
	err = op(c)
	if err != nil && c.stalled.Load() {
		err = fmt.Errorf("%w: %w", errStalled, err)
	}
	if !stop() {
		c.kill()
		return ctx.Err()
	}
	p.release(c, err)
	return err
}

// get returns an idle connection or dials a new one.
func (p *sftpPool) get(ctx context.Context) (*sftpConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		select {
		case <-c.done:
			continue // died while idle
		default:
		}
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return p.dial(ctx)
}

// release returns c to the pool after op's error err, or drops it.
func (p *sftpPool) release(c *sftpConn, err error) {
	if err != nil && !isStatus(err) {
		c.kill()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= p.maxIdle {
		c.kill()
		return
	}
	p.idle = append(p.idle, c)
}

func (p *sftpPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.kill()
	}
	p.closeAgent()
}

// dial connects, checks the host key, logs in and starts the SFTP
// subsystem, all within the timeout.
func (p *sftpPool) dial(ctx context.Context) (*sftpConn, error) {
	d := net.Dialer{Timeout: p.timeout}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, &userError{fmt.Sprintf("cannot connect to the SFTP server %s: %v", p.addr, err), err}
	}
	nc.SetDeadline(time.Now().Add(p.timeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	cc, chans, reqs, err := ssh.NewClientConn(nc, p.addr, p.config)
	if err != nil {
		nc.Close()
		return nil, err
	}
	client := ssh.NewClient(cc, chans, reqs)
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("start the SFTP subsystem on %s (does the account allow SFTP?): %w", p.addr, err)
	}
	nc.SetDeadline(time.Time{})
	c := &sftpConn{nc: nc, ssh: client, sc: sc, done: make(chan struct{})}
	go c.keepalive(p.timeout, p.log)
	return c, nil
}

// keepalive asks the server for an answer every timeout/3 and kills the
// connection when one takes longer than timeout.
func (c *sftpConn) keepalive(timeout time.Duration, log *slog.Logger) {
	tick := time.NewTicker(max(timeout/3, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		answered := make(chan struct{})
		go func() {
			c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		t := time.NewTimer(timeout)
		select {
		case <-answered:
			t.Stop()
		case <-c.done:
			t.Stop()
			return
		case <-t.C:
			log.Debug("remote: the SFTP server did not answer a keepalive; closing the connection", "after", timeout.String())
			c.stalled.Store(true)
			c.kill()
			return
		}
	}
}

func (c *sftpConn) kill() {
	c.once.Do(func() {
		close(c.done)
		// The socket first: closing the SFTP session or the SSH client
		// writes to it, which blocks while the server stops reading.
		c.nc.Close()
		c.ssh.Close()
		c.sc.Close()
	})
}
