package remote

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKey is what an SFTP server offers as its host key, and what the
// known_hosts file says about it.
type HostKey struct {
	Addr       string // host:port
	KnownHosts string // the file checked
	Key        ssh.PublicKey
	// Known: known_hosts has this key for Addr. Changed: it has another
	// one (Err says which).
	Known, Changed bool
	Err            *HostKeyError
}

// ScanHostKey connects to the SFTP server of cfg, reads its host key
// without logging in, and checks it against cfg's known_hosts file.
func ScanHostKey(ctx context.Context, cfg Config) (*HostKey, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("remote url %q: %w", cfg.URL, err)
	}
	if u.Scheme != SchemeSFTP {
		return nil, fmt.Errorf("remote url %s: host keys are for sftp:// remotes only", redact(u))
	}
	if u.Hostname() == "" {
		return nil, errors.New("the url needs a host (sftp://user@host[:port]/path)")
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	hk := &HostKey{Addr: net.JoinHostPort(u.Hostname(), port), KnownHosts: cfg.KnownHosts}
	if hk.KnownHosts == "" {
		hk.KnownHosts = DefaultKnownHosts
	}
	check, algos, err := hostKeyCheck(hk.KnownHosts, hk.Addr)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultSFTPTimeout
	}
	errGotKey := errors.New("got the host key")
	conf := &ssh.ClientConfig{
		User:              "backtory-host-key-scan",
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			hk.Key = key
			err := check(host, remote, key)
			var e *HostKeyError
			switch {
			case err == nil:
				hk.Known = true
			case errors.As(err, &e) && e.Changed:
				hk.Changed, hk.Err = true, e
			case errors.As(err, &e):
			default:
				return err
			}
			return errGotKey
		},
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", hk.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the SFTP server %s: %w", hk.Addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	_, _, _, err = ssh.NewClientConn(nc, hk.Addr, conf)
	if hk.Key == nil || !errors.Is(err, errGotKey) {
		return nil, fmt.Errorf("read the host key of %s: %w", hk.Addr, err)
	}
	return hk, nil
}

// TrustHostKey records key as the host key of addr in the known_hosts
// file (made, mode 0644, with its directory if missing), in OpenSSH's
// format, so that ssh, sftp and scp read it too.
func TrustHostKey(file, addr string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("known_hosts %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("known_hosts %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("known_hosts %s: %w", file, err)
	}
	return nil
}

// hostKeyCheck returns the host key callback for addr from the known_hosts
// file (a missing file knows no host), and the key algorithms to ask the
// server for: those of the keys known for addr, so that a server with
// several keys is checked against the one we know.
func hostKeyCheck(file, addr string) (ssh.HostKeyCallback, []string, error) {
	kh, err := knownhosts.New(file)
	if errors.Is(err, fs.ErrNotExist) {
		kh = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	} else if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	known := knownKeys(kh, addr)
	check := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := kh(host, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke):
			e := &HostKeyError{Addr: addr, KnownHosts: file, Key: key, Changed: len(ke.Want) > 0}
			for _, w := range ke.Want {
				e.Want = append(e.Want, knownKey{Key: w.Key, Line: w.Line})
			}
			return e
		case errors.As(err, &re):
			return fmt.Errorf("the SFTP server %s offers %s, which %s marks as revoked: refusing to connect", addr, KeyString(key), file)
		}
		return err
	}
	var algos []string
	for _, k := range known {
		switch t := k.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return check, algos, nil
}

// knownKeys returns the keys kh holds for addr: it asks about a key no
// server has and reads the ones kh wanted instead.
func knownKeys(kh ssh.HostKeyCallback, addr string) []ssh.PublicKey {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil
	}
	remote, _ := net.ResolveTCPAddr("tcp", addr)
	if remote == nil {
		remote = &net.TCPAddr{}
	}
	var ke *knownhosts.KeyError
	if !errors.As(kh(addr, remote, probe), &ke) {
		return nil
	}
	keys := make([]ssh.PublicKey, len(ke.Want))
	for i, w := range ke.Want {
		keys[i] = w.Key
	}
	return keys
}

// knownHostsPattern is how known_hosts (and ssh-keygen -R) names addr.
func knownHostsPattern(addr string) string { return knownhosts.Normalize(addr) }
