package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/backtory/backtory/internal/atomicfile"
)

// Seen returns the newest set id this host wrote or saw of a source, or ""
// when it has no record of one. A record that cannot be read, or is empty,
// is an error (saying how to reset it): the rollback check fails closed.
// Whether a non-empty record is a set id is the caller's to check.
func (d *Dir) Seen(host, source string) (string, error) {
	p := d.SeenFile(host, source)
	raw, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("the record of the newest set seen of %s: %w (if the remote is known good, delete %s to record its newest set anew)", source, err, p)
	}
	id := strings.TrimSpace(string(raw))
	if id == "" {
		return "", fmt.Errorf("the record of the newest set seen of %s, %s, is empty: refusing to run without the rollback check (if the remote is known good, delete %s to record its newest set anew)", source, p, p)
	}
	return id, nil
}

// SeenFile is the file that keeps what Seen returns; deleting it restarts
// the rollback protection of the source from the remote's newest set.
func (d *Dir) SeenFile(host, source string) string {
	return filepath.Join(d.root, "seen", host, source)
}

// Remember records id as the newest set seen of a source.
func (d *Dir) Remember(host, source, id string) error {
	p := d.SeenFile(host, source)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, []byte(id+"\n"), 0o600)
}
