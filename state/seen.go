package state

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/backtory/backtory/internal/atomicfile"
)

// Seen returns the newest set id this host wrote or saw of a source, or ""
// when there is none (or it cannot be read).
func (d *Dir) Seen(host, source string) string {
	raw, err := os.ReadFile(d.SeenFile(host, source))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
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
