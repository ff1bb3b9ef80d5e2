package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/backtory/backtory/internal/atomicfile"
)

// Run is what the host knows of a source's last runs (for `backtory
// status` and the metrics): the last run's outcome, and the last
// successful one.
type Run struct {
	Host     string    `json:"host"`
	Source   string    `json:"source"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Outcome  string    `json:"outcome"` // success | warning | failure; "" for a source that never ran
	Error    string    `json:"error,omitempty"`
	SetID    string    `json:"set,omitempty"`
	Kind     string    `json:"kind,omitempty"`
	Why      string    `json:"why,omitempty"` // why a full or a differential
	Entries  int       `json:"entries,omitempty"`
	Files    int       `json:"files,omitempty"`
	Changed  int       `json:"changed,omitempty"` // a differential's new and changed paths
	Scan     string    `json:"scan,omitempty"`    // how a differential found the changes: walk, zfs diff
	Bytes    int64     `json:"bytes,omitempty"`
	Read     int64     `json:"read_bytes,omitempty"` // content bytes read from the tree
	Stored   int64     `json:"stored_bytes,omitempty"`
	Warnings int       `json:"warnings,omitempty"`
	// Log is the run's log lines (info and above) in the record uploaded
	// beside the sets for a failed or warning run; never kept in state_dir.
	Log []string `json:"log,omitempty"`
	// LastSuccess is the last run that made a set (success or warning).
	LastSuccess *Run `json:"last_success,omitempty"`
	// LastFailure is the last run that failed.
	LastFailure *Run `json:"last_failure,omitempty"`
}

// SaveRun stores rec as the last run of rec.Source of rec.Host, keeping
// the last successful one and the last failed one.
func (d *Dir) SaveRun(rec Run) error {
	p := d.runFile(rec.Host, rec.Source)
	if prev, err := loadRun(p); err == nil {
		rec.LastSuccess, rec.LastFailure = prev.LastSuccess, prev.LastFailure
	}
	self := rec
	self.LastSuccess, self.LastFailure = nil, nil
	if rec.Outcome != "failure" {
		rec.LastSuccess = &self
	} else {
		rec.LastFailure = &self
	}
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(raw, '\n'), 0o600)
}

// Runs returns the last run of each of sources, sorted by source; a
// source whose record is missing or unreadable has a Run with an empty
// Outcome. The error is not nil when the host's records cannot be read at
// all (the records are still returned, each as never run).
func (d *Dir) Runs(host string, sources []string) ([]Run, error) {
	var dirErr error
	if _, err := os.ReadDir(filepath.Join(d.root, "runs", host)); err != nil && !errors.Is(err, os.ErrNotExist) {
		dirErr = err
	}
	out := make([]Run, 0, len(sources))
	for _, s := range sources {
		rec, err := loadRun(d.runFile(host, s))
		if err != nil {
			out = append(out, Run{Host: host, Source: s})
			continue
		}
		out = append(out, *rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out, dirErr
}

func (d *Dir) runFile(host, source string) string {
	return filepath.Join(d.root, "runs", host, source+".json")
}

func loadRun(p string) (*Run, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var rec Run
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &rec, nil
}
