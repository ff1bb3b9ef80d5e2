package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// runRecord is what `backtory status` knows of a source's last runs: the
// last run's outcome, and the last successful one.
type runRecord struct {
	Host     string    `json:"host"`
	Source   string    `json:"source"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Outcome  string    `json:"outcome"` // success | warning | failure
	Error    string    `json:"error,omitempty"`
	SetID    string    `json:"set,omitempty"`
	Kind     string    `json:"kind,omitempty"`
	Files    int       `json:"files,omitempty"`
	Bytes    int64     `json:"bytes,omitempty"`
	Stored   int64     `json:"stored_bytes,omitempty"`
	Warnings int       `json:"warnings,omitempty"`
	// LastSuccess is the last run that made a set (success or warning).
	LastSuccess *runRecord `json:"last_success,omitempty"`
}

func runRecordPath(cfg *Config, source string) string {
	return filepath.Join(cfg.StateDir, "runs", cfg.Host, source+".json")
}

// saveRunRecord stores rec as the source's last run, keeping the last
// successful one.
func saveRunRecord(cfg *Config, rec runRecord) error {
	p := runRecordPath(cfg, rec.Source)
	if prev, err := loadRunRecord(p); err == nil {
		rec.LastSuccess = prev.LastSuccess
	}
	if rec.Outcome != "failure" {
		ok := rec
		ok.LastSuccess = nil
		rec.LastSuccess = &ok
	}
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func loadRunRecord(p string) (*runRecord, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var rec runRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &rec, nil
}

// loadRunRecords returns the last run of every configured source; a source
// that never ran has a record with an empty Outcome.
func loadRunRecords(cfg *Config) []runRecord {
	var out []runRecord
	for _, s := range cfg.Sources {
		rec, err := loadRunRecord(runRecordPath(cfg, s.Name))
		if err != nil {
			out = append(out, runRecord{Host: cfg.Host, Source: s.Name})
			continue
		}
		out = append(out, *rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}
