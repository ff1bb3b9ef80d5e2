// Package archive writes and reads backup sets: it walks a tree, writes
// its files into volumes (PAX tar, compressed, then sealed), writes the
// set's file table and manifest, and reads them back to list, verify and
// restore. It stores objects through a remote.Backend and leaves sealing
// to a Sealer supplied by the caller. docs/format.md is its specification.
//
// To read a set at random instead of restoring it (a mount, a browser):
//
//	cache, _ := archive.NewVolumeCache(dir, maxBytes) // opened sealed volumes; RemoveAll when done
//	s, err := repo.OpenSet(ctx, id, cache)           // reads the set's (and its full's) file table
//	e, ok := s.Lookup("etc/hosts")                   // the table entry; s.Resolve follows a hardlink
//	names, err := s.ReadDir("etc")                   // sorted names; s.Links gives stat's link count
//	f, err := s.Open("etc/hosts")                    // an io.ReaderAt of the content; Close it
package archive

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

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
