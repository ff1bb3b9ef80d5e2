// Package archive writes and reads backup sets: it walks a tree, writes
// its files into volumes (PAX tar, compressed, then sealed), writes the
// set's file table and manifest, and reads them back to list, verify and
// restore. It stores objects through a remote.Backend and leaves sealing
// to a Sealer supplied by the caller. docs/format.md is its specification.
package archive

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// FormatVersion is the version of the set format this package writes.
const FormatVersion = 1

// Set kinds.
const (
	KindFull = "full"
	KindDiff = "diff"
)

// Manifest describes one set. It is the last object written: a set
// without a manifest does not exist.
type Manifest struct {
	Format      int       `json:"format"`
	ID          string    `json:"id"` // "full-20261122T030000Z"
	Kind        string    `json:"kind"`
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

// Sealer encrypts and signs objects, and opens them again. The reader
// Open returns yields io.EOF only after everything was verified; any
// failure is an error from Read. A nil Sealer stores objects as they are.
type Sealer interface {
	Seal(dst io.Writer) (io.WriteCloser, error)
	Open(src io.Reader) (io.Reader, error)
}

// Compression is how volumes and tables are compressed.
type Compression struct {
	Kind  string // "zstd" or "none"
	Level int    // zstd level 1..19
}

// ParseCompression reads "zstd", "zstd:N" or "none".
func ParseCompression(s string) (Compression, error) {
	switch {
	case s == "" || s == "zstd":
		return Compression{Kind: "zstd", Level: 3}, nil
	case s == "none":
		return Compression{Kind: "none"}, nil
	case strings.HasPrefix(s, "zstd:"):
		n, err := strconv.Atoi(s[5:])
		if err != nil || n < 1 || n > 19 {
			return Compression{}, fmt.Errorf("compression %q: level must be 1..19", s)
		}
		return Compression{Kind: "zstd", Level: n}, nil
	}
	return Compression{}, fmt.Errorf("compression %q: want zstd, zstd:N or none", s)
}

// String returns the form ParseCompression reads.
func (c Compression) String() string {
	if c.Kind == "none" {
		return "none"
	}
	return fmt.Sprintf("zstd:%d", c.Level)
}

// ext is the object name suffix for this compression and sealing.
func objectExt(compressed, sealed bool) string {
	ext := ""
	if compressed {
		ext = ".zst"
	}
	if sealed {
		ext += ".pgp"
	}
	return ext
}

// SetDir is the directory of a set on the remote.
func SetDir(host, source, id string) string { return path.Join(host, source, id) }

// NewSetID returns the id of a set of the given kind started at t.
func NewSetID(kind string, t time.Time) string {
	return kind + "-" + t.UTC().Format("20060102T150405Z")
}

// ParseSetID returns the kind and time of a set id, or ok=false.
func ParseSetID(id string) (kind string, t time.Time, ok bool) {
	k, ts, found := strings.Cut(id, "-")
	if !found || (k != KindFull && k != KindDiff) {
		return "", time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", ts)
	if err != nil {
		return "", time.Time{}, false
	}
	return k, t, true
}
