package archive

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzTableReader feeds arbitrary bytes to the file table reader: it must
// return entries or an error, never panic, and never accept a bad path.
func FuzzTableReader(f *testing.F) {
	var buf bytes.Buffer
	tw := NewTableWriter(&buf)
	for _, e := range []*Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755},
		{Path: "a", Type: TypeFile, Size: 3, Hash: "ab", Volume: 1},
		{Path: "a/big", Type: TypeFile, Size: 9 << 20, Volume: 1, Frame: 100, Skip: 512, Frames: []int64{200, 300}},
		{Path: "a/\xff", Type: TypeSymlink, Target: "../x"},
		{Path: "b", Type: TypeHardlink, Target: "a", Change: ChangeUnchanged, BaseVolume: 1},
	} {
		tw.Write(e)
	}
	tw.Flush()
	f.Add(buf.Bytes())
	f.Add([]byte(`{"path":"../etc/passwd","type":"file"}` + "\n"))
	f.Add([]byte(`{"path":{"b64":"AAE="},"type":"dir"}` + "\n"))
	f.Add([]byte(`{"path":"a","type":"file"}` + "\n" + `{"path":"b","type":"hardlink","target":"../etc/shadow"}` + "\n"))
	f.Add([]byte(`{"path":"b","type":"hardlink","target":"/etc/shadow"}` + "\n"))
	f.Add([]byte(`{"path":"b","type":"hardlink","target":"a/./c"}` + "\n"))
	f.Add([]byte(`{"path":"b","type":"hardlink","target":{"b64":"Li4vZXRj"}}` + "\n"))
	f.Add([]byte(`{"path":"f","type":"file","size":5,"frame":-1,"skip":-3,"frames":[9,3,1]}` + "\n"))
	f.Add([]byte(`{"path":"c","type":"file","change":"delta","base_path":"a/b","base_vol":1}` + "\n"))
	f.Add([]byte(`{"path":"c","type":"file","change":"delta","base_path":"../etc/shadow"}` + "\n"))
	f.Add([]byte(`{"path":"c","type":"file","change":"whole","base_path":"a"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewTableReader(bytes.NewReader(data))
		for i := 0; i < 1000; i++ {
			e, err := r.Next()
			if err != nil {
				if err != io.EOF && err.Error() == "" {
					t.Fatal("empty error")
				}
				return
			}
			p := string(e.Path)
			if e.Frame < 0 || e.Skip < 0 || e.Skip > maxSkip || int64(len(e.Frames)) > e.Size/FrameSpan {
				t.Fatalf("accepted frames of %+v", e)
			}
			for i, f := range e.Frames {
				if f <= e.Frame || (i > 0 && f <= e.Frames[i-1]) {
					t.Fatalf("accepted frame offsets %v after %d", e.Frames, e.Frame)
				}
			}
			if !confined(p) {
				t.Fatalf("accepted path %q", p)
			}
			if bp := string(e.BasePath); bp != "" && (!confined(bp) || bp == "." || e.Change != ChangeDelta) {
				t.Fatalf("accepted base path %q of %q (%s)", bp, p, e.Change)
			}
			if e.Type == TypeHardlink {
				if tg := string(e.Target); !confined(tg) || tg == "." || ComparePaths(tg, p) >= 0 {
					t.Fatalf("accepted hardlink %q to %q", p, tg)
				}
			}
		}
	})
}

// confined says whether p, a relative path, stays below its root: no
// absolute path, no empty, "." or ".." component but "." alone, no NUL.
func confined(p string) bool {
	if p == "." {
		return true
	}
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// FuzzManifest: the manifest parser rejects what it cannot trust.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"id":"full-20260101T000000Z","kind":"full","files":{"name":"files.jsonl.zst","size":1,"sha256":"` + strings.Repeat("a", 64) + `"},"volumes":[]}`))
	f.Add([]byte(`{"format":3}`))
	f.Add([]byte(`{"format":1,"kind":"diff"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data)
		if err != nil {
			return
		}
		if m.Format < 1 || m.Format > FormatVersion || (m.Kind != KindFull && m.Kind != KindDiff) {
			t.Fatalf("accepted %+v", m)
		}
		for _, v := range m.Volumes {
			if strings.Contains(v.Name, "/") {
				t.Fatalf("accepted volume name %q", v.Name)
			}
		}
	})
}

// FuzzSigsHeader: the sigs object's header is checked before use.
func FuzzSigsHeader(f *testing.F) {
	f.Add([]byte(sigsMagic + strings.Repeat("k", 32)))
	f.Add([]byte("backtory-sigs 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := newSigsReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(s.key) != 32 {
			t.Fatalf("key of %d bytes", len(s.key))
		}
		for i := 0; i < 10; i++ {
			if _, err := s.next(); err != nil {
				return
			}
		}
	})
}
