package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"
)

// The FTP URL schemes: plain FTP, explicit FTPS (AUTH TLS on the control
// port) and implicit FTPS (TLS from the first byte, port 990 by default).
const (
	SchemeFTP          = "ftp"
	SchemeFTPS         = "ftps"
	SchemeFTPSImplicit = "ftps+implicit"
)

// Defaults for the zero values of Config.
const (
	DefaultFTPTimeout     = 60 * time.Second
	DefaultFTPConnections = 2
	DefaultFTPRetries     = 5
)

// PasswordEnv is the environment variable read for the password when
// Config.PasswordFile is empty.
const PasswordEnv = "BACKTORY_REMOTE_PASSWORD"

func init() {
	registerScheme(SchemeFTP, openFTP)
	registerScheme(SchemeFTPS, openFTP)
	registerScheme(SchemeFTPSImplicit, openFTP)
}

// FTP is the backend for an FTP or FTPS server. It is safe for concurrent
// use: up to Config.Connections uploads run in parallel, each on its own
// control connection; other operations reuse idle connections or open
// their own.
type FTP struct {
	addr     string // host:port
	root     string // absolute directory on the server
	user     string
	password string
	tls      *tls.Config // nil for plain FTP
	implicit bool
	timeout  time.Duration
	retries  int
	backoff  time.Duration

	uploads chan struct{} // a token per running upload

	mu      sync.Mutex
	idle    []idleConn
	maxIdle int
	closed  bool

	dirs sync.Map // directories known to exist on the server
}

// Put uploads r to name.part, checks the server's SIZE against the bytes
// sent and renames name.part to name. Transient failures (dropped or stalled
// connections, 4xx replies) are retried with backoff; when r is an
// io.ReadSeeker the retry resumes where the server's copy ends (REST), and a
// name.part left by an earlier run is resumed too once its tail matches r.
// A plain io.Reader can only be retried while none of it has been read.
func (f *FTP) Put(ctx context.Context, name string, r io.Reader) error {
	clean, err := CleanName(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	src, err := newUpload(r)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	select {
	case f.uploads <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("put %s: %w", name, ctx.Err())
	}
	defer func() { <-f.uploads }()

	full := f.abs(clean)
	tmp := TempName(full)
	for attempt := 1; ; attempt++ {
		err = f.once(ctx, func(c *ftpConn) error { return f.putOnce(c, full, tmp, src, attempt == 1) })
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= f.retries || !src.rewindable() {
			break
		}
		if err := f.sleep(ctx, attempt); err != nil {
			break
		}
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if !src.rewindable() || isDiskFull(err) || errors.As(err, new(*readError)) {
		// The partial object cannot be resumed (or takes space the server
		// lacks): remove it, best effort.
		f.removeTemp(tmp)
	}
	return fmt.Errorf("put %s: %w", name, f.explain(err))
}

// Get opens name at byte offset off. The reader resumes transparently
// (REST+RETR on a fresh connection) when the connection drops or stalls,
// and holds one connection until it is closed. ctx governs the reader's
// whole life.
func (f *FTP) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	clean, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	r := &ftpReader{f: f, ctx: ctx, name: name, path: f.abs(clean), off: off, size: -1}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// Stat returns the size and modification time of name (SIZE and MDTM), or
// the directory entry from its parent's listing.
func (f *FTP) Stat(ctx context.Context, name string) (Info, error) {
	clean, err := CleanName(name)
	if err != nil {
		return Info{}, err
	}
	full := f.abs(clean)
	var info Info
	err = f.do(ctx, func(c *ftpConn) error {
		size, err := c.sc.FileSize(full)
		if err != nil {
			if !hasCode(err, ftp.StatusFileUnavailable) {
				return err
			}
			// Not a file we may read: a directory, missing, or forbidden.
			e, lerr := f.lookup(c, full)
			if lerr != nil {
				return lerr
			}
			if e == nil {
				return notExist(err)
			}
			if e.Type != ftp.EntryTypeFolder {
				return err
			}
			info = Info{Name: path.Base(full), IsDir: true, ModTime: e.Time}
			return nil
		}
		info = Info{Name: path.Base(full), Size: size}
		if c.sc.IsGetTimeSupported() {
			if t, err := c.sc.GetTime(full); err == nil {
				info.ModTime = t
			}
		}
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", name, f.explain(err))
	}
	return info, nil
}

// List returns the entries of dir, sorted by name; "." and ".." are left
// out. A missing directory lists as empty.
func (f *FTP) List(ctx context.Context, dir string) ([]Info, error) {
	full := f.root
	if dir != "" {
		clean, err := CleanName(dir)
		if err != nil {
			return nil, err
		}
		full = f.abs(clean)
	}
	var entries []*ftp.Entry
	err := f.do(ctx, func(c *ftpConn) error {
		var err error
		entries, err = c.sc.List(full)
		if hasCode(err, ftp.StatusFileUnavailable) {
			entries, err = nil, nil // pure-ftpd: 550 for a missing directory
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, f.explain(err))
	}
	out := make([]Info, 0, len(entries))
	for _, e := range entries {
		if e.Name == "." || e.Name == ".." || e.Name == "" || strings.Contains(e.Name, "/") {
			continue
		}
		out = append(out, Info{Name: e.Name, Size: int64(e.Size), IsDir: e.Type == ftp.EntryTypeFolder, ModTime: e.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes name, then the parent directories it leaves empty (up to
// the remote's root).
func (f *FTP) Delete(ctx context.Context, name string) error {
	clean, err := CleanName(name)
	if err != nil {
		return err
	}
	full := f.abs(clean)
	err = f.do(ctx, func(c *ftpConn) error {
		err := c.sc.Delete(full)
		if hasCode(err, ftp.StatusFileUnavailable) {
			if e, lerr := f.lookup(c, full); lerr == nil && e == nil {
				return notExist(err)
			}
		}
		if err != nil {
			return err
		}
		for d := path.Dir(full); d != f.root && strings.HasPrefix(d, f.root); d = path.Dir(d) {
			if c.sc.RemoveDir(d) != nil {
				break // not empty
			}
			f.dirs.Delete(d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, f.explain(err))
	}
	return nil
}

// Close quits the idle connections. Readers still open keep theirs until
// they are closed.
func (f *FTP) Close() error {
	f.mu.Lock()
	idle := f.idle
	f.idle, f.closed = nil, true
	f.mu.Unlock()
	for _, ic := range idle {
		ic.c.quit()
	}
	return nil
}

func openFTP(ctx context.Context, u *url.URL, cfg Config) (Backend, error) {
	f, err := newFTP(u, cfg)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", redact(u), err)
	}
	// Connect once now, so a wrong address, password or certificate is
	// reported before any work is done.
	err = f.do(ctx, func(c *ftpConn) error {
		if f.root != "" {
			return nil
		}
		dir, err := c.sc.CurrentDir()
		f.root = path.Clean("/" + dir)
		return err
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("remote %s: %w", redact(u), f.explain(err))
	}
	return f, nil
}

func newFTP(u *url.URL, cfg Config) (*FTP, error) {
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("the url needs a host (ftp://host[:port]/path)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the url must not have a query or fragment")
	}
	f := &FTP{
		user:    cfg.User,
		timeout: cfg.Timeout,
		retries: cfg.Retries,
		backoff: ftpBackoff,
	}
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return nil, fmt.Errorf("do not put the password in the url: use remote.password_file or %s", PasswordEnv)
		}
		if f.user == "" {
			f.user = u.User.Username()
		}
	}
	if f.user == "" {
		return nil, errors.New("no user: set remote.user (or ftp://user@host/...)")
	}
	pw, err := readPassword(cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	if pw == "" && f.user != "anonymous" && f.user != "ftp" {
		return nil, fmt.Errorf("no password: set remote.password_file or the environment variable %s", PasswordEnv)
	}
	f.password = pw

	port := u.Port()
	switch u.Scheme {
	case SchemeFTP:
		if cfg.TLSCA != "" || cfg.TLSInsecure {
			return nil, errors.New("tls_ca or tls_insecure_skip_verify is set but the url is ftp:// (unencrypted); use ftps:// or ftps+implicit://")
		}
	case SchemeFTPSImplicit:
		f.implicit = true
		if port == "" {
			port = "990"
		}
	}
	if port == "" {
		port = "21"
	}
	f.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme != SchemeFTP {
		if f.tls, err = tlsConfig(u.Hostname(), cfg); err != nil {
			return nil, err
		}
	}
	if u.Path != "" {
		f.root = path.Clean("/" + u.Path)
	}
	if f.timeout <= 0 {
		f.timeout = DefaultFTPTimeout
	}
	if f.retries <= 0 {
		f.retries = DefaultFTPRetries
	}
	n := cfg.Connections
	if n <= 0 {
		n = DefaultFTPConnections
	}
	f.uploads = make(chan struct{}, n)
	f.maxIdle = max(n, 2)
	return f, nil
}

// ftpBackoff is the first pause between retries; it doubles up to
// maxBackoff. Tests shorten it.
var ftpBackoff = time.Second

const maxBackoff = 30 * time.Second

// tailCheck is how many bytes at the end of a leftover name.part are
// compared with the source before an upload resumes it.
const tailCheck = 256 << 10

func readPassword(file string) (string, error) {
	if file == "" {
		return os.Getenv(PasswordEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

func tlsConfig(host string, cfg Config) (*tls.Config, error) {
	conf := &tls.Config{
		// A fixed ServerName and a session cache let data connections
		// resume the control connection's TLS session, which vsftpd
		// requires (require_ssl_reuse) and Go keys by ServerName.
		ServerName:         host,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca %s: no PEM certificate in the file", cfg.TLSCA)
		}
		conf.RootCAs = pool
	}
	if cfg.TLSInsecure {
		conf.InsecureSkipVerify = true
		slog.Warn("remote: tls_insecure_skip_verify is set: the FTPS server's certificate is NOT verified, so anyone on the network path can read the password and the backups' metadata and tamper with uploads; use tls_ca instead", "server", host)
	}
	return conf, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func (f *FTP) abs(clean string) string { return path.Join(f.root, clean) }

// do runs op on a connection, retrying transient failures with backoff.
func (f *FTP) do(ctx context.Context, op func(c *ftpConn) error) error {
	for attempt := 1; ; attempt++ {
		err := f.once(ctx, op)
		if err == nil || ctx.Err() != nil || !retryable(err) || attempt >= f.retries {
			return err
		}
		if serr := f.sleep(ctx, attempt); serr != nil {
			return err
		}
	}
}

// once runs op on one connection. A cancelled ctx closes the connection,
// which interrupts whatever op is waiting for.
func (f *FTP) once(ctx context.Context, op func(c *ftpConn) error) error {
	c, err := f.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.kill)
	err = op(c)
	if !stop() {
		c.kill()
		return ctx.Err()
	}
	f.release(c, err)
	return err
}

func (f *FTP) sleep(ctx context.Context, attempt int) error {
	d := f.backoff << (attempt - 1)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
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

// putOnce is one upload attempt.
func (f *FTP) putOnce(c *ftpConn, full, tmp string, src *upload, first bool) error {
	if err := f.mkdirAll(c, path.Dir(full)); err != nil {
		return err
	}
	var off int64
	if src.rs != nil {
		size, err := c.sc.FileSize(tmp)
		if err == nil && size > 0 && size <= src.size && (!first || f.sameTail(c, tmp, src, size)) {
			off = size
		}
		if _, err := src.rs.Seek(src.start+off, io.SeekStart); err != nil {
			return &readError{err}
		}
	}
	sent := src.sent
	err := c.sc.StorFrom(tmp, src, uint64(off))
	if off == 0 && src.sent == sent && (hasCode(err, ftp.StatusFileUnavailable) || hasCode(err, ftp.StatusBadFileName)) {
		// The directory may have been removed by a Delete since we made
		// it: make it again and retry once.
		f.forgetDirs(path.Dir(full))
		if err := f.mkdirAll(c, path.Dir(full)); err != nil {
			return err
		}
		err = c.sc.StorFrom(tmp, src, 0)
	}
	if err != nil {
		return err
	}
	want := off + src.sent - sent
	if src.rs != nil && want != src.size {
		return &readError{fmt.Errorf("the source has %d bytes but %d were read", src.size, want)}
	}
	got, err := c.sc.FileSize(tmp)
	if err != nil {
		return err
	}
	if got != want {
		return &sizeMismatch{got: got, want: want}
	}
	err = c.sc.Rename(tmp, full)
	if hasCode(err, ftp.StatusFileUnavailable) || hasCode(err, ftp.StatusBadFileName) {
		// Some servers refuse to rename over an existing file.
		if c.sc.Delete(full) == nil {
			err = c.sc.Rename(tmp, full)
		}
	}
	return err
}

// sameTail reports whether the last bytes of the server's tmp (size bytes
// long) equal the source's bytes at the same offsets.
func (f *FTP) sameTail(c *ftpConn, tmp string, src *upload, size int64) bool {
	n := min(size, tailCheck)
	resp, err := c.sc.RetrFrom(tmp, uint64(size-n))
	if err != nil {
		return false
	}
	remote := make([]byte, n)
	_, rerr := io.ReadFull(resp, remote)
	if cerr := resp.Close(); rerr == nil && cerr != nil {
		rerr = cerr
	}
	if rerr != nil {
		return false
	}
	local := make([]byte, n)
	if _, err := src.rs.Seek(src.start+size-n, io.SeekStart); err != nil {
		return false
	}
	if _, err := io.ReadFull(src.rs, local); err != nil {
		return false
	}
	return bytes.Equal(local, remote)
}

func (f *FTP) mkdirAll(c *ftpConn, dir string) error {
	if dir == "/" || dir == "." {
		return nil
	}
	if _, ok := f.dirs.Load(dir); ok {
		return nil
	}
	if err := f.mkdirAll(c, path.Dir(dir)); err != nil {
		return err
	}
	// An error reply means it exists or cannot be made; STOR will say which.
	if err := c.sc.MakeDir(dir); err != nil && !isReply(err) {
		return err
	}
	f.dirs.Store(dir, struct{}{})
	return nil
}

func (f *FTP) forgetDirs(dir string) {
	for ; dir != "/" && dir != "."; dir = path.Dir(dir) {
		f.dirs.Delete(dir)
	}
}

// removeTemp deletes an abandoned temporary object, best effort, on a
// context of its own (the caller's may be cancelled).
func (f *FTP) removeTemp(tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	_ = f.once(ctx, func(c *ftpConn) error { return c.sc.Delete(tmp) })
}

// lookup finds full in its parent's listing; nil means it is not there.
func (f *FTP) lookup(c *ftpConn, full string) (*ftp.Entry, error) {
	entries, err := c.sc.List(path.Dir(full))
	if hasCode(err, ftp.StatusFileUnavailable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Name == path.Base(full) {
			return e, nil
		}
	}
	return nil, nil
}

// upload is Put's source: it counts what was read, marks its own errors
// and stops when the context is cancelled (via the killed connection).
type upload struct {
	r     io.Reader
	rs    io.ReadSeeker // nil when r cannot seek
	start int64         // rs's offset when Put was called
	size  int64         // bytes from start to the end of rs
	sent  int64         // bytes read from r so far
}

func newUpload(r io.Reader) (*upload, error) {
	u := &upload{r: r}
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		return u, nil
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return u, nil // a pipe or terminal: not seekable after all
	}
	end, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("seek source: %w", err)
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek source: %w", err)
	}
	u.rs, u.start, u.size = rs, start, end-start
	return u, nil
}

func (u *upload) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.sent += int64(n)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// rewindable reports whether the upload can be tried again.
func (u *upload) rewindable() bool { return u.rs != nil || u.sent == 0 }

// readError is a failure of the source, not of the server: never retried.
type readError struct{ err error }

func (e *readError) Error() string { return "read source: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sizeMismatch says the server stored another size than was sent.
type sizeMismatch struct{ got, want int64 }

func (e *sizeMismatch) Error() string {
	return fmt.Sprintf("the server stored %d bytes of %d sent (the upload was cut short)", e.got, e.want)
}

// ftpReader is Get's reader; it resumes after a dropped connection.
type ftpReader struct {
	f          *FTP
	ctx        context.Context
	name, path string
	off, size  int64
	failures   int

	c    *ftpConn
	stop func() bool
	resp *ftp.Response
}

func (r *ftpReader) Read(p []byte) (int, error) {
	for {
		if r.resp == nil {
			if r.off >= r.size {
				return 0, io.EOF
			}
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.resp.Read(p)
		r.off += int64(n)
		if err == io.EOF && r.off >= r.size {
			r.release(true)
			return n, io.EOF
		}
		if err == nil {
			if n > 0 {
				r.failures = 0
			}
			return n, nil
		}
		// The transfer broke (or ended early): resume from r.off.
		r.release(false)
		if n > 0 {
			return n, nil
		}
		if r.ctx.Err() != nil {
			return 0, fmt.Errorf("get %s: %w", r.name, r.ctx.Err())
		}
		if err == io.EOF {
			err = fmt.Errorf("the server ended the transfer at byte %d of %d: %w", r.off, r.size, io.ErrUnexpectedEOF)
		}
		r.failures++
		if !retryable(err) || r.failures >= r.f.retries {
			return 0, fmt.Errorf("get %s at byte %d: %w", r.name, r.off, r.f.explain(err))
		}
		if serr := r.f.sleep(r.ctx, r.failures); serr != nil {
			return 0, fmt.Errorf("get %s: %w", r.name, serr)
		}
	}
}

func (r *ftpReader) Close() error {
	if r.resp != nil {
		// Abandoning a running transfer: drop the connection rather
		// than wait for the server to notice.
		r.release(false)
	}
	r.size = r.off // further Reads return EOF
	return nil
}

// open starts RETR at r.off on a connection, retrying transient failures.
func (r *ftpReader) open() error {
	for {
		err := r.openOnce()
		if err == nil {
			return nil
		}
		r.failures++
		if r.ctx.Err() != nil {
			err = r.ctx.Err()
		} else if retryable(err) && r.failures < r.f.retries {
			if r.f.sleep(r.ctx, r.failures) == nil {
				continue
			}
			err = r.ctx.Err()
		}
		return fmt.Errorf("get %s: %w", r.name, r.f.explain(err))
	}
}

func (r *ftpReader) openOnce() error {
	c, err := r.f.get(r.ctx)
	if err != nil {
		return err
	}
	r.c, r.stop = c, context.AfterFunc(r.ctx, c.kill)
	if r.size < 0 {
		size, err := c.sc.FileSize(r.path)
		if hasCode(err, ftp.StatusFileUnavailable) {
			if e, lerr := r.f.lookup(c, r.path); lerr == nil && e == nil {
				err = notExist(err)
			}
		}
		if err != nil {
			r.release(isReply(err))
			return err
		}
		r.size = size
	}
	if r.off >= r.size {
		r.release(true)
		return nil
	}
	resp, err := c.sc.RetrFrom(r.path, uint64(r.off))
	if err != nil {
		r.release(isReply(err))
		return err
	}
	r.resp = resp
	return nil
}

// release ends the transfer and gives the connection back (ok) or drops it.
func (r *ftpReader) release(ok bool) {
	if r.c == nil {
		return
	}
	var err error
	if ok && r.resp != nil {
		err = r.resp.Close() // reads the 226
	}
	if r.stop() && ok && err == nil {
		r.f.release(r.c, nil)
	} else {
		r.c.kill()
	}
	r.c, r.stop, r.resp = nil, nil, nil
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
func (f *FTP) get(ctx context.Context) (*ftpConn, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, errors.New("the remote is closed")
		}
		if len(f.idle) == 0 {
			f.mu.Unlock()
			return f.dial(ctx)
		}
		ic := f.idle[len(f.idle)-1]
		f.idle = f.idle[:len(f.idle)-1]
		f.mu.Unlock()
		if time.Since(ic.since) < idleCheck || ic.c.sc.NoOp() == nil {
			return ic.c, nil
		}
		ic.c.kill()
	}
}

// release returns c to the idle pool unless err says it may be out of sync.
func (f *FTP) release(c *ftpConn, err error) {
	if err != nil && !isReply(err) {
		c.kill()
		return
	}
	f.mu.Lock()
	if !f.closed && len(f.idle) < f.maxIdle && !c.isDead() {
		f.idle = append(f.idle, idleConn{c, time.Now()})
		c = nil
	}
	f.mu.Unlock()
	if c != nil {
		c.quit()
	}
}

// dial connects and logs in. Every network read and write on the session
// gets a deadline of f.timeout (the watchdog for a server that stops
// answering); TLS is layered here because the library does not wrap
// connections that come from a custom dial function.
func (f *FTP) dial(ctx context.Context) (*ftpConn, error) {
	c := &ftpConn{}
	dialer := &net.Dialer{Timeout: f.timeout}
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
		var nc net.Conn = &watchConn{Conn: raw, timeout: f.timeout}
		switch {
		case f.tls == nil:
			return nc, nil
		case control && f.implicit:
			tc := tls.Client(nc, f.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, &tlsError{err}
			}
			return tc, nil
		case control:
			return nc, nil // explicit: the library starts TLS after AUTH TLS
		default:
			return &tlsData{Conn: tls.Client(nc, f.tls), timeout: f.timeout}, nil
		}
	}
	opts := []ftp.DialOption{ftp.DialWithDialFunc(dialFunc)}
	if f.tls != nil {
		if f.implicit {
			opts = append(opts, ftp.DialWithTLS(f.tls))
		} else {
			opts = append(opts, ftp.DialWithExplicitTLS(f.tls))
		}
	}
	stop := context.AfterFunc(ctx, c.kill)
	defer stop()
	sc, err := ftp.Dial(f.addr, opts...)
	if err != nil {
		c.kill()
		return nil, f.dialError(err)
	}
	c.sc = sc
	if err := sc.Login(f.user, f.password); err != nil {
		c.kill()
		switch {
		case isTLSError(err):
			return nil, f.dialError(err)
		case errors.As(err, new(net.Error)), errors.Is(err, io.EOF):
			return nil, fmt.Errorf("login: %w", err)
		}
		// A reply (530 and the like, or USER refused outright).
		hint := "check remote.user and the password"
		if low := strings.ToLower(replyText(err)); f.tls == nil && (strings.Contains(low, "encrypt") || strings.Contains(low, "tls") || strings.Contains(low, "ssl")) {
			hint = "the server requires FTPS: use ftps://"
		}
		return nil, &ftpError{fmt.Sprintf("login refused for user %q: %s (%s)", f.user, replyText(err), hint), err}
	}
	return c, nil
}

func (f *FTP) dialError(err error) error {
	var oe *net.OpError
	switch {
	case isTLSError(err):
		msg := fmt.Sprintf("TLS handshake with %s failed: %v", f.addr, tlsReason(err))
		switch {
		case errors.As(err, new(x509.HostnameError)):
			msg += " (the certificate is for another name: put a name it was issued for in remote.url)"
		case errors.As(err, new(*tls.CertificateVerificationError)):
			msg += " (the server's certificate does not verify: set remote.tls_ca to the CA that signed it)"
		}
		return &ftpError{msg, err}
	case errors.As(err, &oe) && oe.Op == "dial":
		return &ftpError{fmt.Sprintf("cannot connect to %s: %v", f.addr, oe.Err), err}
	case isReply(err) && f.tls != nil && !f.implicit && !hasCode(err, ftp.StatusNotAvailable):
		return &ftpError{fmt.Sprintf("the server at %s refused AUTH TLS: %s (does it support explicit FTPS?)", f.addr, replyText(err)), err}
	case isReply(err):
		return &ftpError{fmt.Sprintf("the server at %s refused the session: %s", f.addr, replyText(err)), err}
	}
	return &ftpError{fmt.Sprintf("cannot start a session with %s: %v", f.addr, err), err}
}

// explain turns a failure into one line that says what to do.
func (f *FTP) explain(err error) error {
	var fe *ftpError
	if err == nil || errors.As(err, &fe) || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var tp *textproto.Error
	switch {
	case errors.As(err, &tp) && isDiskFull(err) && tp.Code == ftp.StatusActionAborted:
		return &ftpError{fmt.Sprintf("the server could not write the file, its disk is probably full or the quota exceeded: %s", replyText(err)), err}
	case isDiskFull(err):
		return &ftpError{fmt.Sprintf("the server's disk is full or the quota is exceeded: %s", replyText(err)), err}
	case hasCode(err, ftp.StatusFileUnavailable) || hasCode(err, ftp.StatusBadFileName):
		return &ftpError{fmt.Sprintf("permission denied or no such directory: %s", replyText(err)), err}
	case hasCode(err, ftp.StatusNotAvailable):
		return &ftpError{fmt.Sprintf("the server closed the session: %s", replyText(err)), err}
	case isTimeout(err):
		return &ftpError{fmt.Sprintf("the server %s did not answer for %v (it is hung or overloaded; try again later or raise remote.timeout)", f.addr, f.timeout), err}
	}
	if msg := err.Error(); strings.Contains(msg, "\n") { // errors.Join: keep one line
		return &ftpError{strings.ReplaceAll(msg, "\n", "; "), err}
	}
	return err
}

// ftpError carries a message meant for the user and the original error.
type ftpError struct {
	msg string
	err error
}

func (e *ftpError) Error() string { return e.msg }
func (e *ftpError) Unwrap() error { return e.err }

func notExist(reply error) error {
	return fmt.Errorf("%w (%s)", fs.ErrNotExist, replyText(reply))
}

func replyText(err error) string {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		// Multi-line replies (pure-ftpd's "451 Error during write to file /
		// Transfer aborted / ...") become one line.
		return fmt.Sprintf("%d %s", tp.Code, strings.ReplaceAll(strings.TrimSpace(tp.Msg), "\n", "; "))
	}
	return err.Error()
}

func hasCode(err error, code int) bool {
	var tp *textproto.Error
	return errors.As(err, &tp) && tp.Code == code
}

// isReply reports whether err is only the server's reply to a command, so
// the connection is still usable.
func isReply(err error) bool {
	var tp *textproto.Error
	if !errors.As(err, &tp) {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !isReply(e) {
				return false
			}
		}
	}
	return !errors.As(err, new(*readError)) && !errors.As(err, new(net.Error))
}

// isDiskFull recognizes "no space" replies: 452 and 552 by the RFC, and
// vsftpd's "451 Failure writing to local file".
func isDiskFull(err error) bool {
	var tp *textproto.Error
	if !errors.As(err, &tp) {
		return false
	}
	msg := strings.ToLower(tp.Msg)
	return tp.Code == ftp.Status452 || tp.Code == ftp.StatusExceededStorage ||
		(tp.Code == ftp.StatusActionAborted && (strings.Contains(msg, "writ") || strings.Contains(msg, "space") || strings.Contains(msg, "quota")))
}

// retryable reports whether err is transient: a dropped, refused or stalled
// connection, a short upload, or a 4xx reply other than "disk full".
func retryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, new(*readError)), isCertError(err), errors.As(err, new(tls.AlertError)),
		isDiskFull(err), errors.Is(err, fs.ErrNotExist):
		return false
	case isDNSNotFound(err):
		return false
	case errors.As(err, new(*sizeMismatch)), errors.As(err, new(net.Error)),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code >= 400 && tp.Code < 500
	}
	return false
}

func isDNSNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// isTLSError reports a failure of TLS itself, to name it in messages.
func isTLSError(err error) bool {
	return errors.As(err, new(*tlsError)) || isCertError(err) ||
		errors.As(err, new(tls.AlertError)) || errors.As(err, new(tls.RecordHeaderError))
}

// isCertError reports a certificate that does not verify: never retried.
// (Other TLS failures may be transient: vsftpd, for one, writes a plaintext
// "500 OOPS" on the TLS control connection when its session dies.)
func isCertError(err error) bool {
	return errors.As(err, new(*tls.CertificateVerificationError)) ||
		errors.As(err, new(x509.UnknownAuthorityError)) || errors.As(err, new(x509.HostnameError)) ||
		errors.As(err, new(x509.CertificateInvalidError))
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
