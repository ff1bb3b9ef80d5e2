package state

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/backtory/backtory/internal/atomicfile"
)

// completionFile caches the set ids and times that shell completion
// offers, so that a tab press never waits for the remote.
const completionFile = "completion-sets"

// Completion returns the cached completion words and when they were
// written; os.ErrNotExist when there are none.
func (d *Dir) Completion() ([]byte, time.Time, error) {
	p := filepath.Join(d.root, completionFile)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read completion cache: %w", err)
	}
	return b, fi.ModTime(), nil
}

// SetCompletion replaces the cached completion words.
func (d *Dir) SetCompletion(words []byte) error {
	if err := os.MkdirAll(d.root, 0o700); err != nil {
		return fmt.Errorf("completion cache: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(d.root, completionFile), words, 0o600); err != nil {
		return fmt.Errorf("completion cache: %w", err)
	}
	return nil
}
