package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/backtory/backtory/internal/atomicfile"
)

func init() { registerScheme("file", openLocal) }

// Local is the backend for a directory on a local filesystem (file:///path).
type Local struct {
	root  string
	conns int
}

func openLocal(_ context.Context, u *url.URL, cfg Config, _ *slog.Logger) (Backend, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, &ConfigError{fmt.Errorf("remote url %q: a file:// url needs an absolute path (file:///srv/backups)", u.Redacted())}
	}
	l, err := NewLocal(u.Path)
	if err != nil && !isNoSpace(err) {
		return nil, &ConfigError{err}
	}
	if err != nil {
		return nil, err
	}
	l.conns = cfg.connections()
	return l, nil
}

// NewLocal returns a backend storing objects under the directory root,
// which is created if missing. It fails if root cannot be written.
func NewLocal(root string) (*Local, error) {
	if root == "" || !filepath.IsAbs(root) {
		return nil, fmt.Errorf("remote directory %q: must be an absolute path", root)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("remote directory: %w", err)
	}
	probe, err := os.CreateTemp(root, ".backtory-probe-*")
	if err != nil {
		return nil, fmt.Errorf("remote directory %s is not writable: %w", root, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Local{root: root, conns: Config{}.connections()}, nil
}

// isNoSpace reports a full filesystem or an exceeded quota: a failure of
// the run, not of the configuration.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (l *Local) path(name string) (string, error) {
	c, err := CleanName(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(c)), nil
}

// Put writes name.part, fsyncs it, renames it to name and fsyncs the directory.
func (l *Local) Put(ctx context.Context, name string, r io.Reader) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	tmp := TempName(p)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put %s: %w", name, err)
	}
	return atomicfile.SyncDir(dir)
}

// Get opens name at offset off.
func (l *Local) Get(_ context.Context, name string, off int64) (io.ReadCloser, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
	}
	return f, nil
}

// Stat returns the size of name.
func (l *Local) Stat(_ context.Context, name string) (Info, error) {
	p, err := l.path(name)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	return Info{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir(), ModTime: fi.ModTime()}, nil
}

// List returns the entries of dir, sorted by name.
func (l *Local) List(_ context.Context, dir string) ([]Info, error) {
	p := l.root
	if dir != "" {
		var err error
		if p, err = l.path(dir); err != nil {
			return nil, err
		}
	}
	ents, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	out := make([]Info, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Info{Name: e.Name(), Size: fi.Size(), IsDir: fi.IsDir(), ModTime: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes name; an empty parent directory is removed too.
func (l *Local) Delete(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	// Remove now-empty directories up to the root; errors mean "not empty".
	for d := filepath.Dir(p); d != l.root && len(d) > len(l.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// Close does nothing for a local directory.
func (l *Local) Close() error { return nil }

// Capabilities: Put always starts over (it rewrites name.part).
func (l *Local) Capabilities() Capabilities { return Capabilities{Connections: l.conns} }

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
