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

// FTP is the backend for an FTP or FTPS server: the protocol, one attempt
// per operation. Open wraps it in WithRetry (with ftpTransient). It is safe
// for concurrent use: up to Config.Connections uploads run in parallel,
// each on its own control connection from the pool (ftppool.go); other
// operations reuse idle connections or open their own.
type FTP struct {
	pool    *ftpPool
	root    string        // absolute directory on the server
	conns   int           // Capabilities.Connections
	uploads chan struct{} // a token per running upload

	dirs dirCache // directories known to exist on the server
}

// Put uploads r to name.part, checks the server's SIZE against the bytes
// sent and renames name.part to name. When r is an io.ReadSeeker and a
// name.part is there (left by a failed try or an earlier run), the upload
// resumes where it ends (REST) once its tail matches r; otherwise the
// partial name.part of a failed Put is removed.
func (f *FTP) Put(ctx context.Context, name string, r io.Reader) error {
	clean, src, done, err := beginPut(ctx, name, r, f.uploads)
	if err != nil {
		return err
	}
	defer done()

	full := f.abs(clean)
	tmp := TempName(full)
	err = f.pool.run(ctx, func(c *ftpConn) error { return f.put(c, full, tmp, src) })
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if abandonPartial(src, err, isDiskFull(err)) {
		// The partial object cannot be resumed (or takes space the server
		// lacks): remove it, best effort.
		f.removeTemp(tmp)
	}
	return fmt.Errorf("put %s: %w", name, f.explain(err))
}

// Get opens name at byte offset off (SIZE, then REST+RETR). The reader
// holds one connection until it is closed; a transfer that ends before
// SIZE bytes fails with io.ErrUnexpectedEOF. ctx governs the reader's
// whole life.
func (f *FTP) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	clean, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	r := &ftpReader{f: f, ctx: ctx, name: name, path: f.abs(clean), off: off}
	if err := r.open(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("get %s: %w", name, f.explain(err))
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
	err = f.pool.run(ctx, func(c *ftpConn) error {
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
	err := f.pool.run(ctx, func(c *ftpConn) error {
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
	err = f.pool.run(ctx, func(c *ftpConn) error {
		err := c.sc.Delete(full)
		if hasCode(err, ftp.StatusFileUnavailable) {
			if e, lerr := f.lookup(c, full); lerr == nil && e == nil {
				return notExist(err)
			}
		}
		if err != nil {
			return err
		}
		f.dirs.removeEmptyParents(f.root, full, c.sc.RemoveDir)
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
	f.pool.close()
	return nil
}

// Capabilities: an interrupted Put from an io.ReadSeeker resumes.
func (f *FTP) Capabilities() Capabilities {
	return Capabilities{Connections: f.conns, ResumablePut: true}
}

func openFTP(ctx context.Context, u *url.URL, cfg Config, log *slog.Logger) (Backend, error) {
	f, err := newFTP(u, cfg, log)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("remote %s: %w", redact(u), err)}
	}
	policy := policyFor(cfg, DefaultFTPRetries, ftpBackoff, ftpTransient)
	// Connect once now, so a wrong address, password or certificate is
	// reported before any work is done.
	err = policy.do(ctx, log, "connect", "", func() error {
		return f.pool.run(ctx, func(c *ftpConn) error {
			if f.root != "" {
				return nil
			}
			dir, err := c.sc.CurrentDir()
			f.root = path.Clean("/" + dir)
			return err
		})
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("remote %s: %w", redact(u), f.explain(err))
	}
	return WithRetry(f, policy, log), nil
}

func newFTP(u *url.URL, cfg Config, log *slog.Logger) (*FTP, error) {
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("the url needs a host (ftp://host[:port]/path)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the url must not have a query or fragment")
	}
	p := &ftpPool{user: cfg.User, timeout: cfg.Timeout}
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return nil, fmt.Errorf("do not put the password in the url: use remote.password_file or %s", PasswordEnv)
		}
		if p.user == "" {
			p.user = u.User.Username()
		}
	}
	if p.user == "" {
		return nil, errors.New("no user: set remote.user (or ftp://user@host/...)")
	}
	pw, err := readPassword(cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	if pw == "" && p.user != "anonymous" && p.user != "ftp" {
		return nil, fmt.Errorf("no password: set remote.password_file or the environment variable %s", PasswordEnv)
	}
	p.password = pw

	port := u.Port()
	switch u.Scheme {
	case SchemeFTP:
		if cfg.TLSCA != "" || cfg.TLSInsecure {
			return nil, errors.New("tls_ca or tls_insecure_skip_verify is set but the url is ftp:// (unencrypted); use ftps:// or ftps+implicit://")
		}
		if pw != "" {
			log.Warn("remote: the url is ftp:// (unencrypted): the password crosses the network in clear, and anyone on the path can read and change what is stored; use ftps:// (explicit TLS) or ftps+implicit://", "server", u.Hostname())
		}
	case SchemeFTPSImplicit:
		p.implicit = true
		if port == "" {
			port = "990"
		}
	}
	if port == "" {
		port = "21"
	}
	p.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme != SchemeFTP {
		if p.tls, err = tlsConfig(u.Hostname(), cfg, log); err != nil {
			return nil, err
		}
	}
	if p.timeout <= 0 {
		p.timeout = DefaultFTPTimeout
	}
	n := cfg.Connections
	if n <= 0 {
		n = DefaultFTPConnections
	}
	p.maxIdle = max(n, 2)
	f := &FTP{pool: p, conns: cfg.connections(), uploads: make(chan struct{}, n)}
	if u.Path != "" {
		f.root = path.Clean("/" + u.Path)
	}
	return f, nil
}

// ftpBackoff is the first pause between retries; it doubles up to
// maxBackoff. Tests shorten it before Open.
var ftpBackoff = time.Second

const maxBackoff = 30 * time.Second

// tailCheck is how many bytes at the end of a leftover name.part are
// compared with the source before an upload resumes it.
const tailCheck = 256 << 10

func readPassword(file string) (string, error) {
	if file == "" {
		return os.Getenv(PasswordEnv), nil
	}
	b, err := readSecretFile("password file", file, 64<<10)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

func tlsConfig(host string, cfg Config, log *slog.Logger) (*tls.Config, error) {
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
		log.Warn("remote: tls_insecure_skip_verify is set: the FTPS server's certificate is NOT verified, so anyone on the network path can read the password and the backups' metadata and tamper with uploads; use tls_ca instead", "server", host)
	}
	return conf, nil
}

func redact(u *url.URL) string { return RedactURL(u.String()) }

func (f *FTP) abs(clean string) string { return path.Join(f.root, clean) }

// put uploads src to tmp, checks its size and renames it to full.
func (f *FTP) put(c *ftpConn, full, tmp string, src *upload) error {
	if err := f.mkdirAll(c, path.Dir(full)); err != nil {
		return err
	}
	var off int64
	if src.rs != nil {
		size, err := c.sc.FileSize(tmp)
		if err == nil && size > 0 && size <= src.size && f.sameTail(c, tmp, src, size) {
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
		f.dirs.forget(path.Dir(full))
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
	return f.dirs.ensure(dir, func(d string) error {
		// An error reply means it exists or cannot be made; STOR will say which.
		if err := c.sc.MakeDir(d); err != nil && !isReply(err) {
			return err
		}
		return nil
	})
}

// removeTemp deletes an abandoned temporary object, best effort, on a
// context of its own (the caller's may be cancelled).
func (f *FTP) removeTemp(tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), f.pool.timeout)
	defer cancel()
	_ = f.pool.run(ctx, func(c *ftpConn) error { return c.sc.Delete(tmp) })
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

// readError is a failure of the source, not of the server: never retried.
type readError struct{ err error }

func (e *readError) Error() string { return "read source: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sizeMismatch says the server stored another size than was sent.
type sizeMismatch struct{ got, want int64 }

func (e *sizeMismatch) Error() string {
	return fmt.Sprintf("the server stored %d bytes of %d sent (the upload was cut short)", e.got, e.want)
}

// ftpReader is Get's reader: one RETR from off.
type ftpReader struct {
	f          *FTP
	ctx        context.Context
	name, path string
	off, size  int64

	c    *ftpConn
	stop func() bool
	resp *ftp.Response
}

func (r *ftpReader) Read(p []byte) (int, error) {
	if r.resp == nil {
		return 0, io.EOF
	}
	n, err := r.resp.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off >= r.size {
		r.release(true)
		return n, io.EOF
	}
	if err == nil {
		return n, nil
	}
	// The transfer broke, or ended early.
	r.release(false)
	if r.ctx.Err() != nil {
		return n, fmt.Errorf("get %s: %w", r.name, r.ctx.Err())
	}
	if err == io.EOF {
		err = fmt.Errorf("the server ended the transfer at byte %d of %d: %w", r.off, r.size, io.ErrUnexpectedEOF)
	}
	return n, fmt.Errorf("get %s at byte %d: %w", r.name, r.off, r.f.explain(err))
}

func (r *ftpReader) Close() error {
	if r.resp != nil {
		// Abandoning a running transfer: drop the connection rather
		// than wait for the server to notice.
		r.release(false)
	}
	return nil
}

// open asks for the size and starts RETR at r.off on a connection.
func (r *ftpReader) open() error {
	c, err := r.f.pool.get(r.ctx)
	if err != nil {
		return err
	}
	r.c, r.stop = c, context.AfterFunc(r.ctx, c.kill)
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
		r.f.pool.release(r.c, nil)
	} else {
		r.c.kill()
	}
	r.c, r.stop, r.resp = nil, nil, nil
}

// explain turns a failure into one line that says what to do.
func (f *FTP) explain(err error) error {
	var fe *userError
	if err == nil || errors.As(err, &fe) || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var tp *textproto.Error
	switch {
	case errors.As(err, &tp) && isDiskFull(err) && tp.Code == ftp.StatusActionAborted:
		return &userError{fmt.Sprintf("the server could not write the file, its disk is probably full or the quota exceeded: %s", replyText(err)), err}
	case isDiskFull(err):
		return &userError{fmt.Sprintf("the server's disk is full or the quota is exceeded: %s", replyText(err)), err}
	case hasCode(err, ftp.StatusFileUnavailable) || hasCode(err, ftp.StatusBadFileName):
		return &userError{fmt.Sprintf("permission denied or no such directory: %s", replyText(err)), err}
	case hasCode(err, ftp.StatusNotAvailable):
		return &userError{fmt.Sprintf("the server closed the session: %s", replyText(err)), err}
	case isTimeout(err):
		return &userError{fmt.Sprintf("the server %s did not answer for %v (it is hung or overloaded; try again later or raise remote.timeout)", f.pool.addr, f.pool.timeout), err}
	}
	if msg := err.Error(); strings.Contains(msg, "\n") { // errors.Join: keep one line
		return &userError{strings.ReplaceAll(msg, "\n", "; "), err}
	}
	return err
}

// userError carries a message meant for the user and the original error.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

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

// ftpTransient reports whether err is transient: a dropped, refused or stalled
// connection, a short upload, or a 4xx reply other than "disk full".
func ftpTransient(err error) bool {
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
