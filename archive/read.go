package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/backtory/backtory/remote"
)

// maxManifest bounds the size of a manifest object read into memory.
const maxManifest = 64 << 20

// Reader reads the sets of one source from a remote.
type Reader struct {
	Backend  remote.Backend
	Sealer   Sealer // nil reads unsealed sets only
	SpoolDir string // local directory for downloaded objects
	Host     string
	Source   string
}

// SetIDs returns the ids of the complete sets (those with a manifest) of
// the source, oldest first.
func (r *Reader) SetIDs(ctx context.Context) ([]string, error) {
	dir := path.Join(r.Host, r.Source)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	type set struct {
		id string
		t  int64
	}
	var sets []set
	for _, i := range infos {
		_, t, ok := ParseSetID(i.Name)
		if !i.IsDir || !ok {
			continue
		}
		objs, err := r.Backend.List(ctx, path.Join(dir, i.Name))
		if err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", dir, i.Name, err)
		}
		for _, o := range objs {
			if o.Name == ManifestName(false) || o.Name == ManifestName(true) {
				sets = append(sets, set{i.Name, t.UnixNano()})
				break
			}
		}
	}
	sort.Slice(sets, func(i, j int) bool {
		if sets[i].t != sets[j].t {
			return sets[i].t < sets[j].t
		}
		return sets[i].id > sets[j].id // a full before a diff of the same second
	})
	ids := make([]string, len(sets))
	for i, s := range sets {
		ids[i] = s.id
	}
	return ids, nil
}

// Manifest downloads, verifies and parses the manifest of set id. It also
// returns the SHA-256 of the manifest's stored bytes, by which a
// differential names its full.
func (r *Reader) Manifest(ctx context.Context, id string) (*Manifest, string, error) {
	dir := SetDir(r.Host, r.Source, id)
	name := dir + "/" + ManifestName(r.Sealer != nil)
	rc, err := r.Backend.Get(ctx, name, 0)
	if remote.IsNotExist(err) {
		other := dir + "/" + ManifestName(r.Sealer == nil)
		if _, serr := r.Backend.Stat(ctx, other); serr == nil {
			if r.Sealer != nil {
				return nil, "", fmt.Errorf("set %s is not sealed, but encryption is configured: refusing to trust it", id)
			}
			return nil, "", fmt.Errorf("set %s is sealed: configure encryption with the keys to read it", id)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("read manifest of %s: %w", id, err)
	}
	stored, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	rc.Close()
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", name, err)
	}
	if len(stored) > maxManifest {
		return nil, "", fmt.Errorf("%s: manifest larger than %d bytes", name, maxManifest)
	}
	raw := stored
	if r.Sealer != nil {
		pr, err := r.Sealer.Open(bytes.NewReader(stored))
		if err == nil {
			raw, err = io.ReadAll(pr)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if m.ID != id || m.Host != r.Host || m.Source != r.Source {
		return nil, "", fmt.Errorf("%s: manifest is of set %s/%s/%s, not of this set: it was moved or swapped", name, m.Host, m.Source, m.ID)
	}
	if m.Sealed != (r.Sealer != nil) {
		return nil, "", fmt.Errorf("%s: manifest says sealed=%v, which does not match its name", name, m.Sealed)
	}
	return m, ManifestHash(stored), nil
}

// parseManifest decodes and checks a manifest's plaintext.
func parseManifest(raw []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	if m.Format < 1 || m.Format > FormatVersion {
		return nil, fmt.Errorf("format %d is not supported by this version (want 1..%d): upgrade backtory", m.Format, FormatVersion)
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

// fetch downloads an object of set m into the spool and checks its size
// and hash against the manifest. The returned file is positioned at 0;
// closing it removes it.
func (r *Reader) fetch(ctx context.Context, m *Manifest, ref ObjectRef) (*spoolFile, error) {
	f, err := os.CreateTemp(r.SpoolDir, "fetch-*")
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	sf := &spoolFile{f}
	if err := r.download(ctx, m, ref, f); err != nil {
		sf.Close()
		return nil, err
	}
	return sf, nil
}

// download copies an object into f, checks it and rewinds f.
func (r *Reader) download(ctx context.Context, m *Manifest, ref ObjectRef, f *os.File) error {
	name := SetDir(m.Host, m.Source, m.ID) + "/" + ref.Name
	rc, err := r.Backend.Get(ctx, name, 0)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	if n != ref.Size || hex.EncodeToString(h.Sum(nil)) != ref.SHA256 {
		return fmt.Errorf("%s: does not match its manifest (size %d, want %d; or hash differs): the object is damaged or was replaced", name, n, ref.Size)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// cached returns a verified local copy of an object, kept in dir for
// later runs (a full's signatures); a missing or damaged copy is fetched
// again. The copy holds the stored (sealed) bytes.
func (r *Reader) cached(ctx context.Context, m *Manifest, ref ObjectRef, dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	p := filepath.Join(dir, m.ID+"."+ref.Name)
	if f, err := os.Open(p); err == nil {
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err == nil && n == ref.Size && hex.EncodeToString(h.Sum(nil)) == ref.SHA256 {
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				return f, nil
			}
		}
		f.Close()
	}
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := r.download(ctx, m, ref, tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("cache: %w", err)
	}
	return tmp, nil
}

// OpenBase opens full id as the base of a differential: its manifest,
// file table and signatures. The signatures are cached in cacheDir.
func (r *Reader) OpenBase(ctx context.Context, id, cacheDir string) (*Base, error) {
	m, hash, err := r.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Kind != KindFull || m.Sigs == nil {
		return nil, fmt.Errorf("set %s is not a full with signatures: it cannot be the base of a differential", id)
	}
	b := &Base{Manifest: m, ManifestHash: hash}
	files, fc, err := r.Files(ctx, m)
	if err != nil {
		return nil, err
	}
	b.files = files
	b.closers = append(b.closers, fc)
	f, err := r.cached(ctx, m, *m.Sigs, filepath.Join(cacheDir, m.Host, m.Source))
	if err != nil {
		b.Close()
		return nil, err
	}
	rc, err := r.decode(m, *m.Sigs, f)
	if err != nil {
		f.Close()
		b.Close()
		return nil, err
	}
	b.closers = append(b.closers, rc)
	if b.sigs, err = newSigsReader(rc); err != nil {
		b.Close()
		return nil, fmt.Errorf("%s of %s: %w", m.Sigs.Name, id, err)
	}
	return b, nil
}

type spoolFile struct{ *os.File }

func (s *spoolFile) Close() error {
	s.File.Close()
	return os.Remove(s.Name())
}

// open fetches and verifies an object, then returns its plaintext: opened
// (signature and integrity are checked at its end) and decompressed.
func (r *Reader) open(ctx context.Context, m *Manifest, ref ObjectRef) (io.ReadCloser, error) {
	sf, err := r.fetch(ctx, m, ref)
	if err != nil {
		return nil, err
	}
	return r.decode(m, ref, sf)
}

// decode opens and decompresses a verified local copy of an object; closing
// the result closes f.
func (r *Reader) decode(m *Manifest, ref ObjectRef, f io.ReadCloser) (*objectReader, error) {
	var rd io.Reader = bufio.NewReaderSize(f, 256<<10)
	var err error
	if r.Sealer != nil {
		if rd, err = r.Sealer.Open(rd); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", ref.Name, err)
		}
	}
	oc := &objectReader{name: ref.Name, r: rd, raw: rd, closers: []io.Closer{f}}
	if m.Compression == "zstd" {
		zr, err := zstd.NewReader(rd, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			f.Close()
			return nil, err
		}
		oc.r = zr
		oc.closers = append([]io.Closer{closerFunc(func() error { zr.Close(); return nil })}, oc.closers...)
	}
	return oc, nil
}

// objectReader names its object in errors and drains the end of its
// stream on EOF so that the seal's final checks run.
type objectReader struct {
	name    string
	r       io.Reader // plaintext
	raw     io.Reader // opened but still compressed
	closers []io.Closer
}

func (o *objectReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", o.name, err)
	}
	return n, err
}

// finish reads what is left (zstd may stop before the seal's trailer) and
// reports any verification failure.
func (o *objectReader) finish() error {
	if _, err := io.Copy(io.Discard, o.r); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	if _, err := io.Copy(io.Discard, o.raw); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

func (o *objectReader) Close() error {
	for _, c := range o.closers {
		c.Close()
	}
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Files opens the file table of m. The caller must Close it.
func (r *Reader) Files(ctx context.Context, m *Manifest) (*TableReader, io.Closer, error) {
	rc, err := r.open(ctx, m, m.Files)
	if err != nil {
		return nil, nil, err
	}
	return NewTableReader(rc), rc, nil
}

// ErrNotEmpty is returned by Restore when the target holds files.
var ErrNotEmpty = errors.New("restore target is not empty (use --force to restore into it anyway)")

// Verify checks every object of set m against the manifest: size, hash
// and seal. With deep it also decodes every volume and checks every
// file's content hash against the file table.
func (r *Reader) Verify(ctx context.Context, m *Manifest, deep bool) error {
	refs := append([]ObjectRef{m.Files}, m.Volumes...)
	if m.Sigs != nil {
		refs = append(refs, *m.Sigs)
	}
	if m.Layout != nil {
		refs = append(refs, *m.Layout)
	}
	for _, ref := range refs {
		rc, err := r.open(ctx, m, ref)
		if err != nil {
			return err
		}
		err = rc.(*objectReader).finish()
		rc.Close()
		if err != nil {
			return err
		}
	}
	if deep {
		_, err := r.Restore(ctx, m, RestoreOptions{DryRun: true})
		return err
	}
	return nil
}

// Layout returns the layout object of set m, verified and decoded.
func (r *Reader) Layout(ctx context.Context, m *Manifest) ([]byte, error) {
	if m.Layout == nil {
		return nil, fmt.Errorf("set %s has no layout", m.ID)
	}
	rc, err := r.open(ctx, m, *m.Layout)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest))
	if err != nil {
		return nil, err
	}
	if err := rc.(*objectReader).finish(); err != nil {
		return nil, err
	}
	return b, nil
}

// Leftover is an incomplete set, or a temporary object, that an
// interrupted run left on the remote.
type Leftover struct {
	Dir     string // the set's directory
	Objects []string
	ModTime time.Time // the newest object's time
}

// Leftovers lists the directories of sets without a manifest and the
// temporary upload objects (remote.TempSuffix) inside complete sets.
func (r *Reader) Leftovers(ctx context.Context) ([]Leftover, error) {
	dir := path.Join(r.Host, r.Source)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []Leftover
	for _, i := range infos {
		if _, _, ok := ParseSetID(i.Name); !ok || !i.IsDir {
			continue
		}
		sd := path.Join(dir, i.Name)
		objs, err := r.Backend.List(ctx, sd)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", sd, err)
		}
		complete := false
		for _, o := range objs {
			if o.Name == ManifestName(false) || o.Name == ManifestName(true) {
				complete = true
			}
		}
		l := Leftover{Dir: sd}
		for _, o := range objs {
			if !complete || remote.IsTemp(o.Name) {
				l.Objects = append(l.Objects, o.Name)
				if o.ModTime.After(l.ModTime) {
					l.ModTime = o.ModTime
				}
			}
		}
		if len(l.Objects) > 0 {
			out = append(out, l)
		}
	}
	return out, nil
}

// DeleteSet removes set id: its manifest first, so that from the first
// deletion on the set no longer exists, then every other object.
func DeleteSet(ctx context.Context, b remote.Backend, host, source, id string) error {
	dir := SetDir(host, source, id)
	objs, err := b.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	sort.SliceStable(objs, func(i, j int) bool {
		return strings.HasPrefix(objs[i].Name, "manifest.") && !strings.HasPrefix(objs[j].Name, "manifest.")
	})
	for _, o := range objs {
		if err := b.Delete(ctx, dir+"/"+o.Name); err != nil && !remote.IsNotExist(err) {
			return fmt.Errorf("delete %s/%s: %w", dir, o.Name, err)
		}
	}
	return nil
}
