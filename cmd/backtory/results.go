package main

// The --json results of backup, restore, verify and prune: one JSON object
// per source on stdout, one a line, numbers as numbers. docs/json.md
// documents each field; change them only together with it.

import (
	"encoding/json"
	"io"
	"time"

	"github.com/backtory/backtory/state"
)

// backupJSON is one source's result of `backtory backup --json`.
type backupJSON struct {
	Source      string    `json:"source"`
	Outcome     string    `json:"outcome"` // success, warning or failure
	Error       string    `json:"error,omitempty"`
	Set         string    `json:"set,omitempty"`
	Kind        string    `json:"kind,omitempty"`
	Why         string    `json:"why,omitempty"`
	Entries     int       `json:"entries"`
	Files       int       `json:"files"`
	Changed     int       `json:"changed"`
	Scan        string    `json:"scan,omitempty"` // a differential's: walk or zfs diff
	Bytes       int64     `json:"bytes"`
	ReadBytes   int64     `json:"read_bytes"`
	StoredBytes int64     `json:"stored_bytes"`
	Warnings    int       `json:"warnings"`
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
}

func backupResult(rec state.Run) backupJSON {
	return backupJSON{
		Source: rec.Source, Outcome: rec.Outcome, Error: rec.Error, Set: rec.SetID, Kind: rec.Kind, Why: rec.Why,
		Entries: rec.Entries, Files: rec.Files, Changed: rec.Changed, Scan: rec.Scan, Bytes: rec.Bytes, ReadBytes: rec.Read,
		StoredBytes: rec.Stored, Warnings: rec.Warnings, Started: rec.Started,
		Seconds: rec.Finished.Sub(rec.Started).Round(time.Millisecond).Seconds(),
	}
}

// restoreJSON is the result of `backtory restore --json`.
type restoreJSON struct {
	Source   string  `json:"source"`
	Set      string  `json:"set"`
	Target   string  `json:"target"`
	Entries  int     `json:"entries"`
	Bytes    int64   `json:"bytes"`
	Warnings int     `json:"warnings"`
	Seconds  float64 `json:"seconds"`
}

// verifyJSON is one source's result of `backtory verify --json`.
type verifyJSON struct {
	Source  string          `json:"source"`
	Deep    bool            `json:"deep"`
	Checked int             `json:"checked"` // sets checked
	Damaged []verifyDamaged `json:"damaged"` // sets that failed, empty when none
	Seconds float64         `json:"seconds"`
}

type verifyDamaged struct {
	Set   string `json:"set"`
	Error string `json:"error"`
}

// pruneJSON is one source's result of `backtory prune --json`.
type pruneJSON struct {
	Source    string        `json:"source"`
	DryRun    bool          `json:"dry_run"`
	Sets      int           `json:"sets"` // sets before pruning
	Kept      []prunedSet   `json:"kept"` // with the rule that kept each
	Deleted   []prunedSet   `json:"deleted"`
	Leftovers []prunedExtra `json:"leftovers"`
}

type prunedSet struct {
	Set string `json:"set"`
	Why string `json:"why"`
}

type prunedExtra struct {
	Dir     string `json:"dir"`
	Objects int    `json:"objects"`
}

// writeJSON writes v as one line of JSON to w.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
