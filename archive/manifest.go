package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// FormatVersion is the version of the set format this package writes.
// It reads every version from 1 to FormatVersion. Version 2 added the
// frame offsets of each entry (random access) and deltas against another
// path (renamed and moved files).
const FormatVersion = 2

// formatFrames is the first format whose tables say where each file's
// entry starts in its volume (Entry.Frame, Skip, Frames).
const formatFrames = 2

// ErrNewerFormat is the error of a set written in a format newer than
// FormatVersion, by a newer backtory: the set is not damaged, this reader
// is too old.
var ErrNewerFormat = errors.New("set from a newer backtory")

// Kind is a set's kind: a full, or a differential against a full.
type Kind string

// Set kinds.
const (
	KindFull Kind = "full"
	KindDiff Kind = "diff"
)

// Manifest describes one set. It is the last object written: a set
// without a manifest does not exist.
type Manifest struct {
	Format      int       `json:"format"`
	ID          string    `json:"id"` // "full-20261122T030000Z"
	Kind        Kind      `json:"kind"`
	Host        string    `json:"host"`
	Source      string    `json:"source"`
	SourcePath  string    `json:"source_path"`
	Snapshot    string    `json:"snapshot"` // snapshot name, or "none: live tree"
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Tool        string    `json:"tool"`
	Compression string    `json:"compression"` // "zstd" or "none"
	Sealed      bool      `json:"sealed"`
	// Base names the full a differential is taken against.
	Base    *BaseRef    `json:"base,omitempty"`
	Files   ObjectRef   `json:"files"`
	Sigs    *ObjectRef  `json:"sigs,omitempty"`
	Layout  *ObjectRef  `json:"layout,omitempty"`
	Volumes []ObjectRef `json:"volumes"`
	Stats   Stats       `json:"stats"`
	// ExcludeSHA256 identifies the excludes (and cross_mounts) the walk
	// applied: a differential uses a change list only against a full made
	// with the same.
	ExcludeSHA256 string `json:"exclude_sha256,omitempty"`
	// Scan says how a differential found what changed: "walk", or the
	// snapshot provider's change list ("zfs diff").
	Scan string `json:"scan,omitempty"`
}

// BaseRef names a differential's full by id and by its manifest's hash.
type BaseRef struct {
	ID             string `json:"id"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// ObjectRef names an object of the set with its size and the SHA-256 of
// its stored (sealed) bytes.
type ObjectRef struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Stats counts what a set holds.
type Stats struct {
	Entries     int   `json:"entries"`      // paths in the file table
	Files       int   `json:"files"`        // regular files
	Bytes       int64 `json:"bytes"`        // content bytes of the tree
	StoredBytes int64 `json:"stored_bytes"` // bytes of all objects of the set
	Changed     int   `json:"changed,omitempty"`
	Warnings    int   `json:"warnings,omitempty"`
}

// ManifestHash is the SHA-256 of a manifest's stored bytes, by which a
// differential names its full.
func ManifestHash(stored []byte) string {
	h := sha256.Sum256(stored)
	return hex.EncodeToString(h[:])
}

// maxManifest bounds the size of a manifest object read into memory.
const maxManifest = 64 << 20

// encodeManifest returns the stored bytes of m: its JSON, sealed when
// sealer is not nil.
func encodeManifest(m *Manifest, sealer Sealer) ([]byte, error) {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if sealer == nil {
		return raw, nil
	}
	var buf bytes.Buffer
	sw, err := sealer.Seal(&buf)
	if err != nil {
		return nil, fmt.Errorf("seal manifest: %w", err)
	}
	if _, err := sw.Write(raw); err != nil {
		sw.Close()
		return nil, fmt.Errorf("seal manifest: %w", err)
	}
	if err := sw.Close(); err != nil {
		return nil, fmt.Errorf("seal manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeManifest opens a manifest's stored bytes (when sealer is not nil)
// and parses them.
func decodeManifest(stored []byte, sealer Sealer) (*Manifest, error) {
	raw := stored
	if sealer != nil {
		pr, err := sealer.Open(bytes.NewReader(stored))
		if err == nil {
			raw, err = io.ReadAll(pr)
		}
		if err != nil {
			return nil, err
		}
	}
	return parseManifest(raw)
}

// parseManifest decodes and checks a manifest's plaintext.
func parseManifest(raw []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	if m.Format > FormatVersion {
		return nil, fmt.Errorf("%w: format %d is not supported by this version (want 1..%d): upgrade backtory", ErrNewerFormat, m.Format, FormatVersion)
	}
	if m.Format < 1 {
		return nil, fmt.Errorf("format %d: no such format version", m.Format)
	}
	if m.Kind != KindFull && m.Kind != KindDiff {
		return nil, fmt.Errorf("unknown kind %q", m.Kind)
	}
	if (m.Kind == KindDiff) != (m.Base != nil) {
		return nil, fmt.Errorf("a %s with base %v", m.Kind, m.Base)
	}
	refs := append([]ObjectRef{m.Files}, m.Volumes...)
	for _, r := range refs {
		if r.Name == "" || strings.ContainsAny(r.Name, "/\x00") || r.Size < 0 || len(r.SHA256) != 64 {
			return nil, fmt.Errorf("bad object reference %+v", r)
		}
	}
	return &m, nil
}
