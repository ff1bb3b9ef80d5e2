package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/backtory/backtory/internal/atomicfile"
	"github.com/backtory/backtory/remote"
)

// Repository is the sets of one source on a remote: it writes them
// (Backup), reads them (SetIDs, Manifest, Files, Layout, OpenBase),
// restores and verifies them, and deletes them.
type Repository struct {
	Backend  remote.Backend
	Sealer   Sealer // nil writes and reads unsealed sets only
	SpoolDir string // local directory for objects in transit
	Host     string
	Source   string

	// manifests holds the manifests read so far, by set id: a set's
	// manifest never changes once committed, and a run reads a full's
	// several times (decide, the base check, the base, the catalog).
	mu        sync.Mutex
	manifests map[string]readManifest
}

// readManifest is a verified manifest and the hash of its stored bytes.
type readManifest struct {
	m    *Manifest
	hash string
}

// Cache says where local copies of objects are kept between runs: a
// full's signatures, which every differential against it reads.
type Cache interface {
	// Path returns the local file for object of set of host/source.
	Path(host, source, set, object string) string
}

// SetIDs returns the ids of the complete sets (those with a manifest) of
// the source, oldest first.
func (r *Repository) SetIDs(ctx context.Context) ([]string, error) {
	dir := SourceDir(r.Host, r.Source)
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
		sd := SetDir(r.Host, r.Source, i.Name)
		objs, err := r.Backend.List(ctx, sd)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", sd, err)
		}
		for _, o := range objs {
			if isManifest(o.Name) {
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

// Manifest downloads, verifies and parses the manifest of set id, once per
// Repository (later calls return the same, read-only, manifest). It also
// returns the SHA-256 of the manifest's stored bytes, by which a
// differential names its full.
func (r *Repository) Manifest(ctx context.Context, id string) (*Manifest, string, error) {
	r.mu.Lock()
	c, ok := r.manifests[id]
	r.mu.Unlock()
	if ok {
		return c.m, c.hash, nil
	}
	m, hash, err := r.readManifest(ctx, id)
	if err != nil {
		return nil, "", err
	}
	r.mu.Lock()
	if r.manifests == nil {
		r.manifests = map[string]readManifest{}
	}
	r.manifests[id] = readManifest{m, hash}
	r.mu.Unlock()
	return m, hash, nil
}

// readManifest downloads, verifies and parses the manifest of set id.
func (r *Repository) readManifest(ctx context.Context, id string) (*Manifest, string, error) {
	dir := SetDir(r.Host, r.Source, id)
	name := objectPath(dir, ManifestName(r.Sealer != nil))
	rc, err := r.Backend.Get(ctx, name, 0)
	if remote.IsNotExist(err) {
		other := objectPath(dir, ManifestName(r.Sealer == nil))
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
	m, err := decodeManifest(stored, r.Sealer)
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

// Files opens the file table of m. The caller must Close it.
func (r *Repository) Files(ctx context.Context, m *Manifest) (*TableReader, io.Closer, error) {
	rc, err := r.open(ctx, m, m.Files)
	if err != nil {
		return nil, nil, err
	}
	return NewTableReader(rc), rc, nil
}

// Layout returns the layout object of set m, verified and decoded.
func (r *Repository) Layout(ctx context.Context, m *Manifest) ([]byte, error) {
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

// OpenBase opens full id as the base of a differential: its manifest,
// file table and signatures. The signatures are kept in cache.
func (r *Repository) OpenBase(ctx context.Context, id string, cache Cache) (*Base, error) {
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
	f, err := r.cached(ctx, m, *m.Sigs, cache)
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
	b.reopen = func() (*Base, error) { return r.OpenBase(ctx, id, cache) }
	b.openSigs = func() (io.ReadCloser, error) {
		f, err := r.cached(ctx, m, *m.Sigs, cache)
		if err != nil {
			return nil, err
		}
		return r.decode(m, *m.Sigs, f)
	}
	if b.sigs, err = newSigsReader(rc); err != nil {
		b.Close()
		return nil, fmt.Errorf("%s of %s: %w", m.Sigs.Name, id, err)
	}
	return b, nil
}

// Verify checks every object of set m against the manifest: size, hash
// and seal. With deep it also decodes every volume and checks every
// file's content hash against the file table.
func (r *Repository) Verify(ctx context.Context, m *Manifest, deep bool) error {
	return r.VerifyProgress(ctx, m, deep, nil)
}

// VerifyProgress is Verify telling progress, if not nil, about a deep
// check's entries and bytes (see RestoreOptions.Progress). A deep check
// downloads each object once: the decoding pass (a restore that writes
// nothing) checks the table and the volumes it reads as a restore does,
// then the objects it did not read are checked alone.
func (r *Repository) VerifyProgress(ctx context.Context, m *Manifest, deep bool, progress func(entries int, bytes int64)) error {
	refs := m.objects()
	if deep {
		read := map[int]bool{}
		_, err := r.restore(ctx, m, RestoreOptions{DryRun: true, Progress: progress}, func(n int) { read[n] = true })
		if err != nil {
			return err
		}
		refs = refs[:0:0]
		for i, v := range m.Volumes {
			if !read[i+1] {
				refs = append(refs, v)
			}
		}
		if m.Sigs != nil {
			refs = append(refs, *m.Sigs)
		}
		if m.Layout != nil {
			refs = append(refs, *m.Layout)
		}
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
	return nil
}

// ErrDamaged is what the errors of CheckObjects and Verify wrap when an
// object of a set is missing on the remote or differs from the manifest.
var ErrDamaged = errors.New("damaged")

// damagedError is an error that wraps ErrDamaged.
type damagedError string

func (e damagedError) Error() string        { return string(e) }
func (e damagedError) Is(target error) bool { return target == ErrDamaged }

// CheckObjects checks that every object of set m is on the remote with
// the size the manifest gives, from one listing of the set's directory.
// With hashes it downloads each object and checks its hash and seal too
// (Verify). The error wraps ErrDamaged when the set is damaged.
func (r *Repository) CheckObjects(ctx context.Context, m *Manifest, hashes bool) error {
	if hashes {
		return r.Verify(ctx, m, false)
	}
	dir := SetDir(m.Host, m.Source, m.ID)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil && !remote.IsNotExist(err) {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	size := make(map[string]int64, len(infos))
	for _, i := range infos {
		size[i.Name] = i.Size
	}
	for _, ref := range m.objects() {
		got, ok := size[ref.Name]
		switch {
		case !ok:
			return damagedError(fmt.Sprintf("%s is missing on the remote", objectPath(dir, ref.Name)))
		case got != ref.Size:
			return damagedError(fmt.Sprintf("%s has %d bytes on the remote, its manifest says %d", objectPath(dir, ref.Name), got, ref.Size))
		}
	}
	return nil
}

// objects lists every object of set m but its manifest.
func (m *Manifest) objects() []ObjectRef {
	refs := append([]ObjectRef{m.Files}, m.Volumes...)
	if m.Sigs != nil {
		refs = append(refs, *m.Sigs)
	}
	if m.Layout != nil {
		refs = append(refs, *m.Layout)
	}
	return refs
}

// Leftover is an incomplete set, or a temporary object, that an
// interrupted run left on the remote.
type Leftover struct {
	Dir     string // the set's directory
	Objects []string
	ModTime time.Time // the newest object's time
	// Unfinished says it is a full without a manifest, which a later run
	// may resume (a checkpoint in its state_dir names it); Removable
	// says when it may be removed.
	Unfinished bool
	ID         string // the set id of Dir
}

// Leftovers lists the directories of sets without a manifest and the
// temporary upload objects (remote.TempSuffix) inside complete sets.
func (r *Repository) Leftovers(ctx context.Context) ([]Leftover, error) {
	dir := SourceDir(r.Host, r.Source)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []Leftover
	for _, i := range infos {
		if _, _, ok := ParseSetID(i.Name); !ok || !i.IsDir {
			continue
		}
		sd := SetDir(r.Host, r.Source, i.Name)
		objs, err := r.Backend.List(ctx, sd)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", sd, err)
		}
		complete := false
		for _, o := range objs {
			if isManifest(o.Name) {
				complete = true
			}
		}
		kind, _, _ := ParseSetID(i.Name)
		l := Leftover{Dir: sd, ID: i.Name, Unfinished: !complete && kind == KindFull}
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

// Removable says whether prune may remove leftover l, given the complete
// sets (ids, oldest first) and the time now: an unfinished full only once a
// newer full is complete (until then the next backup resumes it), anything
// else once its newest object is older than grace.
func (l Leftover) Removable(ids []string, now time.Time, grace time.Duration) bool {
	if l.Unfinished {
		for _, id := range ids {
			if k, _, _ := ParseSetID(id); k == KindFull && id > l.ID {
				return true
			}
		}
		return false
	}
	return now.Sub(l.ModTime) >= grace
}

// SetExists reports whether the remote holds anything under set id's
// directory: a complete set, or an incomplete one of an interrupted run.
func (r *Repository) SetExists(ctx context.Context, id string) (bool, error) {
	dir := SetDir(r.Host, r.Source, id)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil && !remote.IsNotExist(err) {
		return false, fmt.Errorf("list %s: %w", dir, err)
	}
	return len(infos) > 0, nil
}

// DeleteSet removes set id: its manifest first, so that from the first
// deletion on the set no longer exists, then every other object, then its
// run record and those of the failed runs before it (runs.go).
func (r *Repository) DeleteSet(ctx context.Context, id string) error {
	r.mu.Lock()
	delete(r.manifests, id)
	r.mu.Unlock()
	dir := SetDir(r.Host, r.Source, id)
	objs, err := r.Backend.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	sort.SliceStable(objs, func(i, j int) bool { return isManifest(objs[i].Name) && !isManifest(objs[j].Name) })
	for _, o := range objs {
		name := objectPath(dir, o.Name)
		if err := r.Backend.Delete(ctx, name); err != nil && !remote.IsNotExist(err) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	return r.deleteRunRecords(ctx, id)
}

// fetch downloads an object of set m into the spool and checks its size
// and hash against the manifest. The returned file is positioned at 0;
// closing it removes it.
func (r *Repository) fetch(ctx context.Context, m *Manifest, ref ObjectRef) (*spoolFile, error) {
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
func (r *Repository) download(ctx context.Context, m *Manifest, ref ObjectRef, f *os.File) error {
	name := objectPath(SetDir(m.Host, m.Source, m.ID), ref.Name)
	rc, err := r.Backend.Get(ctx, name, 0)
	if remote.IsNotExist(err) {
		return damagedError(fmt.Sprintf("%s is missing on the remote", name))
	}
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
		return damagedError(fmt.Sprintf("%s: does not match its manifest (size %d, want %d; or hash differs): the object is damaged or was replaced", name, n, ref.Size))
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// cached returns a verified local copy of an object, kept in cache for
// later runs (a full's signatures); a missing or damaged copy is fetched
// again. The copy holds the stored (sealed) bytes.
func (r *Repository) cached(ctx context.Context, m *Manifest, ref ObjectRef, cache Cache) (*os.File, error) {
	p := cache.Path(m.Host, m.Source, m.ID, ref.Name)
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
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
	if err := atomicfile.Commit(tmp, p); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("cache %s: %w", p, err)
	}
	return tmp, nil
}

type spoolFile struct{ *os.File }

func (s *spoolFile) Close() error {
	s.File.Close()
	return os.Remove(s.Name())
}

// open fetches and verifies an object, then returns its plaintext: opened
// (signature and integrity are checked at its end) and decompressed.
func (r *Repository) open(ctx context.Context, m *Manifest, ref ObjectRef) (io.ReadCloser, error) {
	sf, err := r.fetch(ctx, m, ref)
	if err != nil {
		return nil, err
	}
	return r.decode(m, ref, sf)
}

// decode opens and decompresses a verified local copy of an object; closing
// the result closes f.
func (r *Repository) decode(m *Manifest, ref ObjectRef, f io.ReadCloser) (*objectReader, error) {
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
