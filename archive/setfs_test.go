package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/backtory/backtory/archive"
)

// TestSetFSReadsEveryFile reads every regular file of a full and a
// differential, sealed and not, through SetFS: whole, and at offsets
// (forward, backward, across frames), against the tree that was saved.
func TestSetFSReadsEveryFile(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		name := "unsealed"
		if sealed {
			name = "sealed"
		}
		t.Run(name, func(t *testing.T) {
			sr := newSealedRepo(t)
			r := sr.testRepo
			if !sealed {
				r = newTestRepo(t, nil)
				sr = &sealedRepo{testRepo: r}
				sr.full = r.backup("").ID
				sr.fullCopy = copyTree(t, r.src)
				os.WriteFile(filepath.Join(r.src, "etc/hosts"), []byte("changed\n"), 0o644)
				f, _ := os.OpenFile(filepath.Join(r.src, "data/sparse"), os.O_WRONLY, 0)
				f.WriteAt([]byte("edited in place"), 50<<20)
				f.Close()
				os.Remove(filepath.Join(r.src, "tiny"))
				sr.diff = r.backup(sr.full).ID
				sr.diffCopy = copyTree(t, r.src)
			}
			cache, err := archive.NewVolumeCache(filepath.Join(t.TempDir(), "cache"), 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ id, tree string }{{sr.full, sr.fullCopy}, {sr.diff, sr.diffCopy}} {
				s, err := r.repo().OpenSet(context.Background(), c.id, cache)
				if err != nil {
					t.Fatal(err)
				}
				compareSetFS(t, s, c.tree)
			}
			if sealed && cache.Size() == 0 {
				t.Error("sealed volumes were not cached")
			}
			if !sealed && cache.Size() != 0 {
				t.Error("unsealed volumes were cached")
			}
			if err := cache.RemoveAll(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func compareSetFS(t *testing.T, s *archive.SetFS, tree string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		e, ok := s.Lookup(rel)
		if !ok {
			t.Errorf("%s: %s missing", s.Manifest().ID, rel)
			return nil
		}
		n++
		if !d.Type().IsRegular() {
			return nil
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := s.Open(rel)
		if err != nil {
			t.Errorf("open %s: %v", rel, err)
			return nil
		}
		defer f.Close()
		if e := s.Resolve(e); e.Size != int64(len(want)) {
			t.Errorf("%s: size %d, want %d", rel, e.Size, len(want))
		}
		got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s of %s: read whole: %v, equal %v", rel, s.Manifest().ID, err, bytes.Equal(got, want))
		}
		// Backward and forward at offsets, across the frames of big files.
		for _, off := range []int64{int64(len(want)) / 2, 1, int64(len(want)) - 3, int64(len(want)) / 3, 9 << 20} {
			if off < 0 || off >= int64(len(want)) {
				continue
			}
			buf := make([]byte, 4096)
			k, err := f.ReadAt(buf, off)
			if (err != nil && err != io.EOF) || !bytes.Equal(buf[:k], want[off:off+int64(k)]) || k != min(4096, len(want)-int(off)) {
				t.Errorf("%s of %s at %d: %d bytes, %v", rel, s.Manifest().ID, off, k, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d paths compared", n)
	}
}

// TestSetFSConcurrentReaders reads the same files from many goroutines.
func TestSetFSConcurrentReaders(t *testing.T) {
	r := newTestRepo(t, nil)
	id := r.backup("").ID
	s, err := r.repo().OpenSet(context.Background(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(r.src, "data/random.bin"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.Open("data/random.bin")
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
			if err == nil && !bytes.Equal(got, want) {
				err = errors.New("content differs")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestSetFSMissingVolume: files of a missing volume fail, the others read.
func TestSetFSMissingVolume(t *testing.T) {
	r := newTestRepo(t, nil)
	m := r.backup("")
	if len(m.Volumes) < 2 {
		t.Fatalf("want several volumes, got %d", len(m.Volumes))
	}
	if err := os.Remove(filepath.Join(r.setDir(m.ID), m.Volumes[0].Name)); err != nil {
		t.Fatal(err)
	}
	s, err := r.repo().OpenSet(context.Background(), m.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed int
	for _, p := range []string{"empty", "tiny", "etc/hosts", "etc/text.conf", "data/random.bin", "data/sparse", "links/a"} {
		e, _ := s.Lookup(p)
		f, err := s.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		f.Close()
		switch {
		case e.Volume == 1 && e.Size > 0 && err == nil:
			t.Errorf("%s of the missing volume was read", p)
		case e.Volume != 1 && err != nil:
			t.Errorf("%s of volume %d: %v", p, e.Volume, err)
		case err == nil:
			ok++
		default:
			failed++
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("%d files read, %d failed: want some of each", ok, failed)
	}
}

// TestSetFSReadsFormat1 rewrites an unsealed full as format 1 wrote it (no
// frame offsets in the table, format 1 in the manifest): SetFS reads it
// from the start of each volume.
func TestSetFSReadsFormat1(t *testing.T) {
	r := newTestRepo(t, nil)
	m := r.backup("")
	dir := r.setDir(m.ID)
	raw, err := os.ReadFile(filepath.Join(dir, m.Files.Name))
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zstd.NewReader(nil)
	plain, err := zr.DecodeAll(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var old bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(plain), []byte("\n")) {
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		delete(e, "frame")
		delete(e, "skip")
		delete(e, "frames")
		b, _ := json.Marshal(e)
		old.Write(append(b, '\n'))
	}
	zw, _ := zstd.NewWriter(nil)
	table := zw.EncodeAll(old.Bytes(), nil)
	if err := os.WriteFile(filepath.Join(dir, m.Files.Name), table, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(table)
	m.Format, m.Files.Size, m.Files.SHA256 = 1, int64(len(table)), hex.EncodeToString(sum[:])
	mb, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mb, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := r.repo().OpenSet(context.Background(), m.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Manifest().Format != 1 {
		t.Fatalf("format %d", s.Manifest().Format)
	}
	if e, _ := s.Lookup("data/sparse"); e.Frame != 0 || len(e.Frames) != 0 {
		t.Fatalf("frames left in the table: %+v", e)
	}
	compareSetFS(t, s, r.src)
}

// TestVolumeCacheCap: the opened sealed volumes on disk never pass the
// cache's size, the least recently used is evicted, and a volume larger
// than the whole cache is refused.
func TestVolumeCacheCap(t *testing.T) {
	sr := newSealedRepo(t)
	ctx := context.Background()
	m, _, err := sr.repo().Manifest(ctx, sr.full)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Volumes) < 2 {
		t.Fatalf("want 2 volumes or more, got %d", len(m.Volumes))
	}
	var biggest int64
	for _, v := range m.Volumes {
		biggest = max(biggest, v.Size)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	// Room for one volume: reading the next one must evict the last.
	cache, err := archive.NewVolumeCache(dir, biggest)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sr.repo().OpenSet(ctx, sr.full, cache)
	if err != nil {
		t.Fatal(err)
	}
	vols := map[int]bool{}
	err = filepath.WalkDir(sr.fullCopy, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(sr.fullCopy, p)
		e, _ := s.Lookup(rel)
		if e = s.Resolve(e); e.Size == 0 {
			return nil
		}
		vols[e.Volume] = true
		f, err := s.Open(rel)
		if err != nil {
			return err
		}
		want, _ := os.ReadFile(p)
		got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v", rel, err)
		}
		var onDisk int64
		entries, _ := os.ReadDir(dir)
		for _, de := range entries {
			if fi, err := de.Info(); err == nil {
				onDisk += fi.Size()
			}
		}
		if onDisk > biggest || cache.Size() > biggest {
			t.Errorf("after %s: %d bytes on disk, %d counted, cap %d", rel, onDisk, cache.Size(), biggest)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 2 {
		t.Fatalf("read files of %d volumes: the cap was not exercised", len(vols))
	}

	small, err := archive.NewVolumeCache(filepath.Join(t.TempDir(), "small"), biggest/4)
	if err != nil {
		t.Fatal(err)
	}
	s, err = sr.repo().OpenSet(ctx, sr.full, small)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Open("data/random.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 10), 0); err == nil || !strings.Contains(err.Error(), "no room") {
		t.Errorf("a volume larger than the cache: %v", err)
	}
	f.Close()
}
