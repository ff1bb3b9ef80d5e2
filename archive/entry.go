package archive

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Entry types, as written in the file table.
const (
	TypeFile     = "file"
	TypeDir      = "dir"
	TypeSymlink  = "symlink"
	TypeHardlink = "hardlink" // another name of an earlier "file" entry (Target)
	TypeFIFO     = "fifo"
	TypeChar     = "char"
	TypeBlock    = "block"
)

// Changes of a path in a differential, against its full.
const (
	ChangeUnchanged = "unchanged" // data and metadata as in the full
	ChangeMeta      = "meta"      // data as in the full, metadata changed
	ChangeDelta     = "delta"     // data = rdiff patch of the full's version (of BasePath, if set)
	ChangeWhole     = "whole"     // data stored whole in the differential
	ChangeNew       = "new"       // not in the full (data, if any, stored whole)
)

// Entry is one line of a set's file table: the full state of one path.
type Entry struct {
	Path   Name              `json:"path"` // relative to the source root; "." is the root
	Type   string            `json:"type"`
	Mode   uint32            `json:"mode"` // permission bits with setuid, setgid and sticky (07777)
	UID    int               `json:"uid"`
	GID    int               `json:"gid"`
	User   string            `json:"user,omitempty"`
	Group  string            `json:"group,omitempty"`
	MTime  int64             `json:"mtime"` // nanoseconds since the epoch
	CTime  int64             `json:"ctime,omitempty"`
	Inode  uint64            `json:"ino,omitempty"`
	Size   int64             `json:"size,omitempty"`
	Target Name              `json:"target,omitempty"` // symlink target, or the path a hardlink names
	Major  uint32            `json:"major,omitempty"`
	Minor  uint32            `json:"minor,omitempty"`
	Xattrs map[string][]byte `json:"xattrs,omitempty"` // including system.posix_acl_access/default
	Sparse bool              `json:"sparse,omitempty"`
	Hash   string            `json:"hash,omitempty"` // BLAKE3-256 hex of the content (file)
	Volume int               `json:"vol,omitempty"`  // volume of this set holding the entry
	// In a differential: how the path changed since the full, and which of
	// the full's volumes holds the data (ChangeUnchanged, ChangeMeta) or
	// the patch basis (ChangeDelta).
	Change     string `json:"change,omitempty"`
	BaseVolume int    `json:"base_vol,omitempty"`
	// Where the entry's tar header starts in its volume (format 2, file
	// entries and deltas): the offset of a zstd frame in the opened but
	// still compressed volume, the bytes to skip after decompressing from
	// there, and for large files the compressed offsets of the frames
	// that start at each FrameSpan of content (the k-th at k*FrameSpan).
	Frame  int64   `json:"frame,omitempty"`
	Skip   int64   `json:"skip,omitempty"`
	Frames []int64 `json:"frames,omitempty"`
	// BasePath, in a differential's ChangeDelta entry, is the full's path
	// the delta is against when it is not Path: the file was renamed or
	// moved (format 2).
	BasePath Name `json:"base_path,omitempty"`
	// Warning notes a problem met while archiving (e.g. "changed while read").
	Warning string `json:"warning,omitempty"`

	nlink uint64 // the walk's link count of a file (not stored)
}

// Name is a path as raw bytes: file names on Linux need not be UTF-8. In
// JSON it is a string when it is valid UTF-8, else {"b64": "..."}.
type Name string

// MarshalJSON implements json.Marshaler.
func (n Name) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(n)) {
		return json.Marshal(string(n))
	}
	return json.Marshal(struct {
		B64 string `json:"b64"`
	}{base64.StdEncoding.EncodeToString([]byte(n))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Name) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = Name(s)
		return nil
	}
	var o struct {
		B64 string `json:"b64"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(o.B64)
	if err != nil {
		return fmt.Errorf("bad path encoding: %w", err)
	}
	*n = Name(raw)
	return nil
}

// ComparePaths orders paths the way the walk visits them: component by
// component, so "a/b" comes before "a.b". It returns -1, 0 or +1.
func ComparePaths(a, b string) int {
	if a == b {
		return 0
	}
	if a == "." {
		return -1
	}
	if b == "." {
		return 1
	}
	for {
		ai := strings.IndexByte(a, '/')
		bi := strings.IndexByte(b, '/')
		ac, bc := a, b
		if ai >= 0 {
			ac = a[:ai]
		}
		if bi >= 0 {
			bc = b[:bi]
		}
		if ac != bc {
			if ac < bc {
				return -1
			}
			return 1
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// TableWriter writes a file table: one JSON object per line.
type TableWriter struct {
	w    *bufio.Writer
	enc  *json.Encoder
	last string
	n    int
}

// NewTableWriter returns a TableWriter writing to w.
func NewTableWriter(w io.Writer) *TableWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &TableWriter{w: bw, enc: enc}
}

// Write appends e; entries must come in ComparePaths order.
func (t *TableWriter) Write(e *Entry) error {
	if t.n > 0 && ComparePaths(t.last, string(e.Path)) >= 0 {
		return fmt.Errorf("file table: %q after %q is out of order", e.Path, t.last)
	}
	t.last = string(e.Path)
	t.n++
	return t.enc.Encode(e)
}

// Count returns the number of entries written.
func (t *TableWriter) Count() int { return t.n }

// Flush writes buffered lines.
func (t *TableWriter) Flush() error { return t.w.Flush() }

// maxLine bounds one file table line (a path of 4 KiB, xattrs of 64 KiB each...).
const maxLine = 16 << 20

// TableReader reads a file table written by TableWriter.
type TableReader struct {
	s    *bufio.Scanner
	last string
	n    int
}

// NewTableReader returns a reader of the table in r.
func NewTableReader(r io.Reader) *TableReader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), maxLine)
	return &TableReader{s: s}
}

// Next returns the next entry, or io.EOF after the last one.
func (t *TableReader) Next() (*Entry, error) {
	if !t.s.Scan() {
		if err := t.s.Err(); err != nil {
			return nil, fmt.Errorf("file table line %d: %w", t.n+1, err)
		}
		return nil, io.EOF
	}
	t.n++
	var e Entry
	if err := json.Unmarshal(t.s.Bytes(), &e); err != nil {
		return nil, fmt.Errorf("file table line %d: %w", t.n, err)
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("file table line %d: %w", t.n, err)
	}
	if t.n > 1 && ComparePaths(t.last, string(e.Path)) >= 0 {
		return nil, fmt.Errorf("file table line %d: %q after %q is out of order", t.n, e.Path, t.last)
	}
	t.last = string(e.Path)
	return &e, nil
}

// check rejects entries that a restore must not act on.
func (e *Entry) check() error {
	p := string(e.Path)
	if err := checkPath(p); err != nil {
		return err
	}
	switch e.Type {
	case TypeFile, TypeDir, TypeSymlink, TypeFIFO, TypeChar, TypeBlock:
	case TypeHardlink:
		if err := checkPath(string(e.Target)); err != nil || e.Target == "." {
			return fmt.Errorf("hardlink %q: bad target %q", p, e.Target)
		}
		if ComparePaths(string(e.Target), p) >= 0 {
			return fmt.Errorf("hardlink %q names a later path %q", p, e.Target)
		}
	default:
		return fmt.Errorf("%q: unknown type %q", p, e.Type)
	}
	switch e.Change {
	case "", ChangeUnchanged, ChangeMeta, ChangeDelta, ChangeWhole, ChangeNew:
	default:
		return fmt.Errorf("%q: unknown change %q", p, e.Change)
	}
	if e.BasePath != "" {
		if e.Change != ChangeDelta || e.Type != TypeFile {
			return fmt.Errorf("%q: a base path on a %s %s entry", p, e.Change, e.Type)
		}
		if err := checkPath(string(e.BasePath)); err != nil || e.BasePath == "." || e.BasePath == e.Path {
			return fmt.Errorf("%q: bad base path %q", p, e.BasePath)
		}
	}
	if e.Size < 0 || e.Mode&^0o7777 != 0 {
		return fmt.Errorf("%q: bad size or mode", p)
	}
	if e.Frame < 0 || e.Skip < 0 || e.Skip > maxSkip || int64(len(e.Frames)) > e.Size/FrameSpan {
		return fmt.Errorf("%q: bad frame offsets", p)
	}
	last := e.Frame
	for _, f := range e.Frames {
		if f <= last {
			return fmt.Errorf("%q: frame offsets out of order", p)
		}
		last = f
	}
	return nil
}
