package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SchemeSFTP is the URL scheme of an SFTP server:
// sftp://USER@HOST[:PORT]/PATH, PATH absolute on the server (as the user
// sees it, inside a chroot), or /~/PATH relative to the login directory.
const SchemeSFTP = "sftp"

// Defaults for the zero values of Config, and the known_hosts file read
// when Config.KnownHosts is empty.
const (
	DefaultSFTPTimeout     = 60 * time.Second
	DefaultSFTPConnections = 2
	DefaultSFTPRetries     = 5
	DefaultKnownHosts      = "/etc/backtory/known_hosts"
)

func init() { registerScheme(SchemeSFTP, openSFTP) }

// SFTP is the backend for an SFTP server (OpenSSH's internal-sftp or
// sftp-server, a storage box): one attempt per operation; Open wraps it in
// WithRetry (with sftpTransient). Each operation runs on an SSH connection
// of its own from a small pool; up to Config.Connections uploads run in
// parallel. A connection whose server stops answering keepalives for
// Config.Timeout is closed.
type SFTP struct {
	pool    *sftpPool
	root    string // absolute directory on the server
	conns   int
	uploads chan struct{} // a token per running upload

	dirs dirCache // directories known to exist on the server
}

// Put uploads r to name.part, checks its size, flushes it to disk where the
// server offers fsync@openssh.com and renames it to name
// (posix-rename@openssh.com where offered). When r is an io.ReadSeeker and
// a name.part is there (left by a failed try or an earlier run), the upload
// continues it once its tail matches r; otherwise the partial name.part of
// a failed Put is removed.
func (s *SFTP) Put(ctx context.Context, name string, r io.Reader) error {
	clean, src, done, err := beginPut(ctx, name, r, s.uploads)
	if err != nil {
		return err
	}
	defer done()

	full := s.abs(clean)
	tmp := TempName(full)
	err = s.pool.run(ctx, func(c *sftpConn) error { return s.put(c, full, tmp, src) })
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if abandonPartial(src, err, errors.As(err, new(*diskFullError))) {
		// The partial object cannot be resumed (or takes space the server
		// lacks): remove it, best effort.
		s.removeTemp(tmp)
	}
	return fmt.Errorf("put %s: %w", name, s.explain(err))
}

// Get opens name at byte offset off. The reader holds one connection
// until it is closed; a transfer that ends before the object's size fails
// with io.ErrUnexpectedEOF. ctx governs the reader's whole life.
func (s *SFTP) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	clean, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	r := &sftpReader{s: s, ctx: ctx, name: name, off: off}
	if err := r.open(s.abs(clean)); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("get %s: %w", name, s.explain(err))
	}
	return r, nil
}

// Stat returns the size and modification time of name.
func (s *SFTP) Stat(ctx context.Context, name string) (Info, error) {
	clean, err := CleanName(name)
	if err != nil {
		return Info{}, err
	}
	var info Info
	err = s.pool.run(ctx, func(c *sftpConn) error {
		fi, err := c.sc.Stat(s.abs(clean))
		if err != nil {
			return pathErr("stat", s.abs(clean), err)
		}
		info = Info{Name: path.Base(clean), Size: fi.Size(), IsDir: fi.IsDir(), ModTime: fi.ModTime()}
		if fi.IsDir() {
			info.Size = 0
		}
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", name, s.explain(err))
	}
	return info, nil
}

// List returns the entries of dir, sorted by name. A missing directory
// lists as empty.
func (s *SFTP) List(ctx context.Context, dir string) ([]Info, error) {
	full := s.root
	if dir != "" {
		clean, err := CleanName(dir)
		if err != nil {
			return nil, err
		}
		full = s.abs(clean)
	}
	var out []Info
	err := s.pool.run(ctx, func(c *sftpConn) error {
		fis, err := c.sc.ReadDirContext(ctx, full)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return pathErr("list", full, err)
		}
		out = make([]Info, 0, len(fis))
		for _, fi := range fis {
			if n := fi.Name(); n == "." || n == ".." || n == "" || strings.Contains(n, "/") {
				continue
			}
			i := Info{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir(), ModTime: fi.ModTime()}
			if i.IsDir {
				i.Size = 0
			}
			out = append(out, i)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, s.explain(err))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes name, then the parent directories it leaves empty (up to
// the remote's root).
func (s *SFTP) Delete(ctx context.Context, name string) error {
	clean, err := CleanName(name)
	if err != nil {
		return err
	}
	full := s.abs(clean)
	err = s.pool.run(ctx, func(c *sftpConn) error {
		if err := c.sc.Remove(full); err != nil {
			return pathErr("delete", full, err)
		}
		s.dirs.removeEmptyParents(s.root, full, c.sc.RemoveDirectory)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, s.explain(err))
	}
	return nil
}

// Close closes the idle connections. Readers still open keep theirs until
// they are closed.
func (s *SFTP) Close() error {
	s.pool.close()
	return nil
}

// Capabilities: an interrupted Put from an io.ReadSeeker resumes.
func (s *SFTP) Capabilities() Capabilities {
	return Capabilities{Connections: s.conns, ResumablePut: true}
}

// HostKeyError says that the server's host key is not the one known_hosts
// has for it (Changed), or that known_hosts has none (first contact). Its
// message is one line that says what to do.
type HostKeyError struct {
	Addr       string        // host:port
	KnownHosts string        // the file
	Key        ssh.PublicKey // what the server offered
	Changed    bool
	Want       []knownKey // the keys known_hosts has for Addr (Changed)
}

type knownKey struct {
	Key  ssh.PublicKey
	Line int
}

func (e *HostKeyError) Error() string {
	got := KeyString(e.Key)
	if !e.Changed {
		return fmt.Sprintf("the SFTP server %s is not in %s (never accepted silently): it offers %s; if that is the server's key (ask its admin, or run ssh-keygen -lf on its host key), trust it with: backtory remote trust --fingerprint %s",
			e.Addr, e.KnownHosts, got, Fingerprint(e.Key))
	}
	var had []string
	for _, k := range e.Want {
		had = append(had, fmt.Sprintf("%s (line %d)", KeyString(k.Key), k.Line))
	}
	return fmt.Sprintf("WARNING: THE HOST KEY OF THE SFTP SERVER %s HAS CHANGED: %s has %s, the server now offers %s; someone may be intercepting the connection, so nothing was sent. Only if the server was reinstalled or re-keyed: ssh-keygen -R '%s' -f %s, then backtory remote trust",
		e.Addr, e.KnownHosts, strings.Join(had, ", "), got, knownHostsPattern(e.Addr), e.KnownHosts)
}

// KeyString is a host key as people compare it: its type and SHA-256
// fingerprint, as ssh-keygen -l prints them.
func KeyString(k ssh.PublicKey) string {
	return strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(k.Type(), "ssh-"), "ecdsa-sha2-")) + " key " + Fingerprint(k)
}

// Fingerprint is a host key's SHA-256 fingerprint ("SHA256:..."), as
// ssh-keygen -l prints it.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

func openSFTP(ctx context.Context, u *url.URL, cfg Config, log *slog.Logger) (Backend, error) {
	s, err := newSFTP(u, cfg, log)
	if err != nil { // the url, the user, the key: nothing a retry can fix
		return nil, &ConfigError{fmt.Errorf("remote %s: %w", redact(u), err)}
	}
	policy := RetryPolicy{Attempts: cfg.Retries, Backoff: sftpBackoff, MaxBackoff: maxBackoff, Transient: sftpTransient}
	if policy.Attempts <= 0 {
		policy.Attempts = DefaultSFTPRetries
	}
	// Connect once now, so a wrong address, key or host key is reported
	// before any work is done.
	home := s.root == ""
	tilde := strings.HasPrefix(s.root, "/~")
	err = policy.do(ctx, log, "connect", "", func() error {
		return s.pool.run(ctx, func(c *sftpConn) error {
			if !home && !tilde {
				return nil
			}
			wd, err := c.sc.Getwd()
			if err != nil {
				return err
			}
			if home {
				s.root = path.Clean("/" + wd)
			} else {
				s.root = path.Join("/"+wd, strings.TrimPrefix(s.root, "/~"))
			}
			home, tilde = false, false
			return nil
		})
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("remote %s: %w", redact(u), s.explain(err))
	}
	return WithRetry(s, policy, log), nil
}

func newSFTP(u *url.URL, cfg Config, log *slog.Logger) (*SFTP, error) {
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("the url needs a host (sftp://user@host[:port]/path)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the url must not have a query or fragment")
	}
	if cfg.TLSCA != "" || cfg.TLSInsecure {
		return nil, errors.New("tls_ca and tls_insecure_skip_verify are for ftps://; SFTP verifies the server by its host key (known_hosts)")
	}
	user := cfg.User
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return nil, errors.New("do not put the password in the url: use remote.password_file (or better, a key: remote.ssh_key)")
		}
		if user == "" {
			user = u.User.Username()
		}
	}
	if user == "" {
		return nil, errors.New("no user: set remote.user (or sftp://user@host/...)")
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	auth, closeAgent, err := sshAuth(cfg)
	if err != nil {
		return nil, err
	}
	khFile := cfg.KnownHosts
	if khFile == "" {
		khFile = DefaultKnownHosts
	}
	check, algos, err := hostKeyCheck(khFile, addr)
	if err != nil {
		closeAgent()
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultSFTPTimeout
	}
	n := cfg.Connections
	if n <= 0 {
		n = DefaultSFTPConnections
	}
	p := &sftpPool{
		addr: addr, timeout: timeout, maxIdle: max(n, 2), log: log, closeAgent: closeAgent,
		config: &ssh.ClientConfig{
			User:              user,
			Auth:              auth,
			HostKeyCallback:   check,
			HostKeyAlgorithms: algos,
			Timeout:           timeout,
			ClientVersion:     "SSH-2.0-backtory",
		},
	}
	s := &SFTP{pool: p, conns: cfg.connections(), uploads: make(chan struct{}, n)}
	if u.Path != "" && u.Path != "/" {
		s.root = path.Clean("/" + u.Path)
	}
	return s, nil
}

// sftpBackoff is the first pause between retries; it doubles up to
// maxBackoff. Tests shorten it before Open.
var sftpBackoff = time.Second

// sshAuth returns the ways to log in cfg allows: the key file, the agent
// at SSH_AUTH_SOCK, the password file; closeAgent releases the agent's
// socket.
func sshAuth(cfg Config) (_ []ssh.AuthMethod, closeAgent func(), _ error) {
	var methods []ssh.AuthMethod
	closeAgent = func() {}
	if cfg.SSHKey != "" {
		signer, err := readSSHKey(cfg.SSHKey)
		if err != nil {
			return nil, nil, err
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && cfg.SSHKey == "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK=%s: %w", sock, err)
		}
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		closeAgent = func() { conn.Close() }
	}
	if cfg.PasswordFile != "" {
		pw, err := readPassword(cfg.PasswordFile)
		if err != nil {
			closeAgent()
			return nil, nil, err
		}
		methods = append(methods, ssh.Password(pw), ssh.KeyboardInteractive(
			func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, nil, errors.New("no way to log in: set remote.ssh_key (a private key file, mode 0600), run under an ssh-agent (SSH_AUTH_SOCK), or set remote.password_file")
	}
	return methods, closeAgent, nil
}

// readSSHKey reads an unencrypted private key that only its owner may read.
func readSSHKey(file string) (ssh.Signer, error) {
	b, err := readSecretFile("ssh_key", file, 1<<20)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if errors.As(err, new(*ssh.PassphraseMissingError)) {
		return nil, fmt.Errorf("ssh_key %s is protected by a passphrase: load it into an ssh-agent (SSH_AUTH_SOCK) and leave ssh_key empty, or use a key without one (ssh-keygen -t ed25519 -N '')", file)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh_key %s: %w", file, err)
	}
	return signer, nil
}

func (s *SFTP) abs(clean string) string { return path.Join(s.root, clean) }

// put uploads src to tmp, checks its size, syncs it and renames it to full.
func (s *SFTP) put(c *sftpConn, full, tmp string, src *upload) error {
	if err := s.mkdirAll(c, path.Dir(full)); err != nil {
		return err
	}
	var off int64
	if src.rs != nil {
		if fi, err := c.sc.Stat(tmp); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			off = s.resumeAt(c, tmp, src, fi.Size())
			if off > 0 {
				s.pool.log.Debug("remote: continuing a partial upload", "name", tmp, "offset", off, "size", src.size)
			}
		}
		if _, err := src.rs.Seek(src.start+off, io.SeekStart); err != nil {
			return &readError{err}
		}
	}
	flags := os.O_WRONLY | os.O_CREATE
	if off == 0 {
		flags |= os.O_TRUNC
	}
	f, err := c.sc.OpenFile(tmp, flags)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory may have been removed by a Delete since we made
		// it: make it again and retry once.
		s.dirs.forget(path.Dir(full))
		if err := s.mkdirAll(c, path.Dir(full)); err != nil {
			return err
		}
		f, err = c.sc.OpenFile(tmp, flags)
	}
	if err != nil {
		return pathErr("create", tmp, err)
	}
	if off > 0 {
		if err := f.Truncate(off); err != nil {
			f.Close()
			return pathErr("truncate", tmp, err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return pathErr("seek", tmp, err)
		}
	}
	sent := src.sent
	_, err = f.ReadFromWithConcurrency(src, 0)
	if err == nil {
		want := off + src.sent - sent
		if src.rs != nil && want != src.size {
			err = &readError{fmt.Errorf("the source has %d bytes but %d were read", src.size, want)}
		} else {
			err = s.finish(c, f, tmp, want)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = pathErr("close", tmp, cerr)
	}
	if err != nil {
		return s.diskFull(c, tmp, err)
	}
	return s.rename(c, tmp, full)
}

// finish checks that the server holds want bytes of f and flushes them to
// its disk where it offers fsync@openssh.com.
func (s *SFTP) finish(c *sftpConn, f *sftp.File, tmp string, want int64) error {
	fi, err := f.Stat()
	if err != nil {
		return pathErr("stat", tmp, err)
	}
	if fi.Size() != want {
		return &sizeMismatch{got: fi.Size(), want: want}
	}
	if v, ok := c.sc.HasExtension("fsync@openssh.com"); ok && v == "1" {
		if err := f.Sync(); err != nil {
			return pathErr("fsync", tmp, err)
		}
	}
	return nil
}

// rename moves tmp over full: atomically with posix-rename@openssh.com,
// else by removing full first (plain SFTP rename refuses to overwrite).
func (s *SFTP) rename(c *sftpConn, tmp, full string) error {
	if v, ok := c.sc.HasExtension("posix-rename@openssh.com"); ok && v == "1" {
		return pathErr("rename", tmp, c.sc.PosixRename(tmp, full))
	}
	err := c.sc.Rename(tmp, full)
	if err != nil {
		if c.sc.Remove(full) == nil {
			err = c.sc.Rename(tmp, full)
		}
	}
	return pathErr("rename", tmp, err)
}

// resumeAt returns where an upload may continue the server's tmp (size
// bytes long): a little before its end, since the last writes in flight
// may have landed out of order, once the bytes before that match src; 0
// when they do not.
func (s *SFTP) resumeAt(c *sftpConn, tmp string, src *upload, size int64) int64 {
	if size > src.size {
		return 0
	}
	off := max(0, size-sftpInFlight)
	n := min(off, tailCheck)
	if n == 0 {
		return 0
	}
	f, err := c.sc.Open(tmp)
	if err != nil {
		return 0
	}
	defer f.Close()
	remote := make([]byte, n)
	if _, err := f.ReadAt(remote, off-n); err != nil {
		return 0
	}
	local := make([]byte, n)
	if _, err := src.rs.Seek(src.start+off-n, io.SeekStart); err != nil {
		return 0
	}
	if _, err := io.ReadFull(src.rs, local); err != nil || !bytes.Equal(local, remote) {
		return 0
	}
	return off
}

// sftpInFlight bounds the bytes of writes that may be in flight at once
// (pkg/sftp's 64 concurrent requests of 32 KiB).
const sftpInFlight = 64 * 32 << 10

func (s *SFTP) mkdirAll(c *sftpConn, dir string) error {
	return s.dirs.ensure(dir, func(d string) error {
		if err := c.sc.Mkdir(d); err != nil {
			if fi, serr := c.sc.Stat(d); serr != nil || !fi.IsDir() {
				return pathErr("mkdir", d, err)
			}
		}
		return nil
	})
}

// removeTemp deletes an abandoned temporary object, best effort, on a
// context of its own (the caller's may be cancelled).
func (s *SFTP) removeTemp(tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.pool.timeout)
	defer cancel()
	_ = s.pool.run(ctx, func(c *sftpConn) error { return c.sc.Remove(tmp) })
}

// diskFull turns a generic write failure into a diskFullError when the
// server's file system (statvfs@openssh.com) has no room left.
func (s *SFTP) diskFull(c *sftpConn, tmp string, err error) error {
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure {
		return err
	}
	if _, ok := c.sc.HasExtension("statvfs@openssh.com"); !ok {
		return err
	}
	st, serr := c.sc.StatVFS(path.Dir(tmp))
	if serr != nil {
		return err
	}
	if free := st.Bavail * st.Frsize; free < 1<<20 || st.Favail == 0 {
		return &diskFullError{dir: path.Dir(tmp), free: int64(free), err: err}
	}
	return err
}

// diskFullError: the server has no room for the object. Never retried.
type diskFullError struct {
	dir  string
	free int64
	err  error
}

func (e *diskFullError) Error() string {
	return fmt.Sprintf("the SFTP server's disk is full or the quota is exceeded (%d bytes free in %s): %v", e.free, e.dir, e.err)
}
func (e *diskFullError) Unwrap() error { return e.err }

// pathErr names the operation and path of a failed SFTP request.
func pathErr(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// sftpReader is Get's reader: one open file at off, read through a large
// buffer so that each request to the server fetches many packets at once.
type sftpReader struct {
	s        *SFTP
	ctx      context.Context
	name     string
	off      int64
	size     int64
	c        *sftpConn
	stop     func() bool
	f        *sftp.File
	buf      *bufio.Reader
	finished bool
}

func (r *sftpReader) open(full string) error {
	c, err := r.s.pool.get(r.ctx)
	if err != nil {
		return err
	}
	r.c, r.stop = c, context.AfterFunc(r.ctx, c.kill)
	f, err := c.sc.Open(full)
	if err != nil {
		r.release(isStatus(err))
		return pathErr("open", full, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = errors.New("is a directory")
	}
	if err != nil {
		f.Close()
		r.release(isStatus(err))
		return pathErr("stat", full, err)
	}
	r.size = fi.Size()
	if r.off >= r.size {
		f.Close()
		r.release(true)
		r.finished = true
		return nil
	}
	if _, err := f.Seek(r.off, io.SeekStart); err != nil {
		f.Close()
		r.release(false)
		return err
	}
	r.f, r.buf = f, bufio.NewReaderSize(f, 1<<20)
	return nil
}

func (r *sftpReader) Read(p []byte) (int, error) {
	if r.finished || r.f == nil {
		return 0, io.EOF
	}
	n, err := r.buf.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off >= r.size {
		r.f.Close()
		r.release(true)
		r.finished = true
		return n, io.EOF
	}
	if err == nil {
		return n, nil
	}
	// The transfer broke, or ended early.
	r.release(false)
	r.finished = true
	if r.ctx.Err() != nil {
		return n, fmt.Errorf("get %s: %w", r.name, r.ctx.Err())
	}
	if err == io.EOF {
		err = fmt.Errorf("the server ended the transfer at byte %d of %d: %w", r.off, r.size, io.ErrUnexpectedEOF)
	}
	return n, fmt.Errorf("get %s at byte %d: %w", r.name, r.off, r.s.explain(err))
}

func (r *sftpReader) Close() error {
	r.finished = true
	if r.c != nil {
		// Abandoning a running transfer: drop the connection rather than
		// wait for the answers in flight.
		r.release(false)
	}
	return nil
}

// release gives the connection back (ok) or drops it.
func (r *sftpReader) release(ok bool) {
	if r.c == nil {
		return
	}
	if r.stop() && ok {
		r.s.pool.release(r.c, nil)
	} else {
		r.c.kill()
	}
	r.c, r.stop, r.f = nil, nil, nil
}

// isStatus reports whether err is only the server's answer to a request,
// so the connection is still usable.
func isStatus(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)
}

// explain turns a failure into one line that says what to do.
func (s *SFTP) explain(err error) error {
	if err == nil {
		return nil
	}
	var ue *userError
	var hk *HostKeyError
	var df *diskFullError
	switch {
	case errors.As(err, &ue), errors.As(err, &df):
		return err
	case errors.As(err, &hk): // without x/crypto's "ssh: handshake failed: "
		return &userError{hk.Error(), err}
	case errors.Is(err, fs.ErrPermission):
		return &userError{fmt.Sprintf("the SFTP server refused access (permission denied): %v; check the directory's owner and mode on the server, and that the url's path is inside the account's chroot", err), err}
	case isAuthError(err):
		hint := "check that the key's public half is in the account's authorized_keys"
		if !strings.Contains(err.Error(), "publickey") {
			hint = "check remote.password_file"
		}
		return &userError{fmt.Sprintf("the SFTP server %s refused the login of user %s (%s); %s", s.pool.addr, s.pool.config.User, authDetail(err), hint), err}
	case isTimeout(err) || errors.Is(err, errStalled):
		return &userError{fmt.Sprintf("the SFTP server %s did not answer for %v (it is hung or overloaded; try again later or raise remote.timeout)", s.pool.addr, s.pool.timeout), err}
	case errors.Is(err, sftp.ErrSSHFxConnectionLost):
		return &userError{fmt.Sprintf("the connection to the SFTP server %s was lost (the server or the network went away)", s.pool.addr), err}
	}
	return err
}

func isAuthError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// authDetail is the part of x/crypto's message that names what was tried.
func authDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "attempted methods"); i >= 0 {
		return "tried " + strings.TrimPrefix(msg[i:], "attempted methods ")
	}
	return msg
}

// sftpTransient reports whether err may pass if tried again: a dropped,
// refused or stalled connection, or a short upload; never a host key,
// login, permission, missing object or full disk.
func sftpTransient(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, new(*readError)), errors.As(err, new(*HostKeyError)), errors.As(err, new(*diskFullError)),
		isAuthError(err), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), isDNSNotFound(err):
		return false
	case errors.As(err, new(*sizeMismatch)), errors.As(err, new(net.Error)), errors.Is(err, errStalled),
		errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return true
	}
	return false
}
