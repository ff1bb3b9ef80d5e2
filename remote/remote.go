// Package remote stores backup objects on a remote: a local directory
// (file://), an FTP/FTPS server, an SFTP server or an S3-compatible object
// store. Every backend implements Backend and passes the conformance suite
// in remote/remotetest.
//
// A backend does one attempt per operation and declares what it can do
// (Capabilities). Retrying transient failures is WithRetry's job, a
// wrapper any backend can use; Open applies it to the network backends.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// Backend is a store of named objects. Names are slash-separated paths
// relative to the remote's root ("web1/root/full-…/vol-000001.tar.zst").
// Directories are implicit: Put creates them, List reads them.
//
// Errors for a missing object wrap fs.ErrNotExist.
type Backend interface {
	// Put stores r's bytes under name atomically: the object appears under
	// name complete, or not at all. It is written under TempName(name) first.
	// If r is an io.ReadSeeker the backend may rewind it to retry or resume.
	// An existing object of that name is replaced.
	Put(ctx context.Context, name string, r io.Reader) error
	// Get opens the object for reading, starting at byte offset off.
	Get(ctx context.Context, name string, off int64) (io.ReadCloser, error)
	// Stat returns the object's size.
	Stat(ctx context.Context, name string) (Info, error)
	// List returns the entries directly inside dir ("" is the root), sorted
	// by name. A directory that does not exist lists as empty.
	List(ctx context.Context, dir string) ([]Info, error)
	// Delete removes one object. Deleting a missing object is an error
	// wrapping fs.ErrNotExist.
	Delete(ctx context.Context, name string) error
	// Close releases connections.
	Close() error
	// Capabilities says what the backend can do.
	Capabilities() Capabilities
}

// Capabilities is what a backend declares about itself, so that callers
// need not know which backend they have.
type Capabilities struct {
	// Connections is how many transfers the caller should run at once:
	// the configured Connections or the backend's default, at least 2 (one
	// object waits spooled while another is sent).
	Connections int
	// ResumablePut says that a Put from an io.ReadSeeker that failed
	// half-way leaves its partial object, and the next Put of the same name
	// and content continues it instead of starting over.
	ResumablePut bool
}

// Info describes an object or a directory.
type Info struct {
	Name    string // base name
	Size    int64
	IsDir   bool
	ModTime time.Time
}

// Config selects and configures a backend. URL picks the kind.
type Config struct {
	URL          string        `yaml:"url"`
	User         string        `yaml:"user"`
	PasswordFile string        `yaml:"password_file"` // the password, one line; or the env var BACKTORY_REMOTE_PASSWORD
	TLSCA        string        `yaml:"tls_ca"`        // PEM bundle to verify the server with, instead of the system roots
	TLSInsecure  bool          `yaml:"tls_insecure_skip_verify"`
	Timeout      time.Duration `yaml:"timeout"`     // per network operation; 0 means the backend's default
	Connections  int           `yaml:"connections"` // parallel uploads; 0 means the backend's default
	Retries      int           `yaml:"retries"`     // attempts for transient errors; 0 means the default
	BWLimit      Rate          `yaml:"bwlimit"`     // upload bytes per second over all connections ("10MiB/s"); 0 means no limit

	// SFTP (sftp://user@host[:port]/path).
	SSHKey     string `yaml:"ssh_key"`     // private key file (mode 0600, no passphrase); else the ssh-agent at SSH_AUTH_SOCK
	KnownHosts string `yaml:"known_hosts"` // the server's host key, OpenSSH format; default /etc/backtory/known_hosts
	// S3 (s3:// and s3+http://).
	Region          string `yaml:"region"`           // "" lets the store say (us-east-1 for most)
	Addressing      string `yaml:"addressing"`       // "path" or "virtual" (bucket.host); "" picks virtual for AWS, path elsewhere
	CredentialsFile string `yaml:"credentials_file"` // AWS format, mode 0600; or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
	PartSize        int64  `yaml:"part_size"`        // bytes per multipart part and per upload's buffer; 0 means 16 MiB
}

// connections is Capabilities.Connections for cfg.
func (cfg Config) connections() int { return max(2, cfg.Connections) }

// opener makes a backend for a parsed URL; log is never nil.
type opener func(ctx context.Context, u *url.URL, cfg Config, log *slog.Logger) (Backend, error)

var openers = map[string]opener{}

func registerScheme(scheme string, o opener) { openers[scheme] = o }

// Open returns the backend for cfg.URL, its uploads limited to
// cfg.BWLimit (WithBandwidthLimit). Warnings (an insecure TLS setting)
// and retries go to log; nil discards them.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (Backend, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Error repeats the whole url, password included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &ConfigError{fmt.Errorf("remote url %q: %w", RedactURL(cfg.URL), err)}
	}
	o, ok := openers[u.Scheme]
	if !ok {
		return nil, &ConfigError{fmt.Errorf("remote url %q: unsupported scheme %q (want %s)", RedactURL(cfg.URL), u.Scheme, strings.Join(Schemes(), ", "))}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.BWLimit < 0 {
		return nil, &ConfigError{fmt.Errorf("bwlimit %d must not be negative", cfg.BWLimit)}
	}
	b, err := o(ctx, u, cfg, log)
	if err != nil {
		return nil, err
	}
	return WithBandwidthLimit(b, cfg.BWLimit), nil
}

// ConfigError is an Open failure caused by the remote's configuration (its
// URL, user, password file, TLS settings, a local directory that cannot be
// made), which no retry or later run can fix; any other Open failure (a
// server down or refusing the login, a certificate that does not verify)
// is the remote's.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// RedactURL returns raw with the password of its user info replaced by
// "xxxxx", also when raw does not parse as a URL: every error or log line
// that shows a remote URL shows it through RedactURL.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		return u.Redacted()
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	}
	rest := raw[start:]
	end := len(rest)
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		end = j
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPW := strings.Cut(rest[:at], ":")
	if !hasPW {
		return raw
	}
	return raw[:start] + user + ":xxxxx" + rest[at:]
}

// Schemes lists the URL schemes Open accepts.
func Schemes() []string {
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k+"://")
	}
	sort.Strings(s)
	return s
}

// IsNetwork reports whether the URL points at a remote over a network.
func IsNetwork(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Scheme != "file"
}

// TempSuffix marks objects still being uploaded. Listings show them; they
// are never part of a set and prune removes old ones.
const TempSuffix = ".part"

// TempName is the name an object is uploaded under before its rename.
func TempName(name string) string { return name + TempSuffix }

// IsTemp reports whether name is a temporary upload name.
func IsTemp(name string) bool { return strings.HasSuffix(name, TempSuffix) }

// CleanName checks an object name and returns it in canonical form.
func CleanName(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") {
		return "", fmt.Errorf("bad object name %q", name)
	}
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("bad object name %q", name)
	}
	return c, nil
}

// IsNotExist reports whether err says an object does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
