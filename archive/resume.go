package archive

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/backtory/backtory/internal/atomicfile"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/rsyncdelta"
)

// A resumable full (docs/format.md §9, "resume/") keeps, in a local
// directory of its own, the file table and the block signatures of what it
// archived so far (plain, appended) and a checkpoint: the volumes uploaded
// and confirmed, the last archived path, and the lengths of the two local
// files at that moment. The remote holds the volumes in the set's directory,
// without a manifest: an unfinished set. The next run checks the checkpoint
// against the remote, drops what came after it, and walks on after the last
// archived path; the table and signatures objects are built from the local
// files at the end, so the finished set is the same as an uninterrupted one.

// Resume makes a full resumable; see BackupOptions.Resume.
type Resume struct {
	// Dir is the source's own local directory for the checkpoint.
	Dir string
	// Fingerprint is what must not change between the interrupted run and
	// the one that resumes it (the config and keys that shape the set).
	Fingerprint string
	// From, if set, is the checkpoint to resume (from CheckResume).
	From *Checkpoint
	// Checkpointed, if set, is called after each checkpoint is saved with
	// the number of volumes it holds (a fault point for tests).
	Checkpointed func(volumes int)
}

// Checkpoint is the saved state of an interrupted full.
type Checkpoint struct {
	Format      int         `json:"format"`
	ID          string      `json:"id"`
	Host        string      `json:"host"`
	Source      string      `json:"source"`
	Fingerprint string      `json:"fingerprint"`
	Snapshot    string      `json:"snapshot"`
	Started     time.Time   `json:"started"`
	After       Name        `json:"after"` // the last archived path
	Volumes     []ObjectRef `json:"volumes"`
	TableSize   int64       `json:"table_size"` // bytes of checkpointFiles that hold the entries so far
	SigsSize    int64       `json:"sigs_size"`  // bytes of checkpointSigs
	Stats       Stats       `json:"stats"`
}

// Names of the files in Resume.Dir.
const (
	checkpointName  = "checkpoint.json"
	checkpointFiles = "files.jsonl"
	checkpointSigs  = "sigs"
	checkpointVer   = 1
)

// CheckResume returns the checkpoint in dir that a full of r may resume,
// or nil. A checkpoint that cannot be resumed (another fingerprint or
// snapshot, local files shorter than it says, a volume missing or of
// another size on the remote, a set that has a manifest) is discarded with
// its unfinished set, and reason says why in one line.
func (r *Repository) CheckResume(ctx context.Context, dir, fingerprint, snapshot string) (ck *Checkpoint, reason string, err error) {
	ck, err = loadCheckpoint(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err == nil {
		if reason, err = r.resumable(ctx, ck, dir, fingerprint, snapshot); err != nil {
			// The remote cannot say: keep the checkpoint for a later run.
			return nil, "", err
		}
		if reason == "" {
			return ck, "", nil
		}
	} else {
		reason = fmt.Sprintf("its checkpoint cannot be read (%v)", err)
	}
	if ck != nil && ck.Host == r.Host && ck.Source == r.Source && reason != reasonComplete {
		if _, _, ok := ParseSetID(ck.ID); ok {
			r.removeSet(SetDir(r.Host, r.Source, ck.ID))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, reason, fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil, reason, nil
}

// resumable returns why ck cannot be resumed, or ""; an error when the
// remote cannot be listed.
func (r *Repository) resumable(ctx context.Context, ck *Checkpoint, dir, fingerprint, snapshot string) (string, error) {
	switch {
	case ck.Format != checkpointVer:
		return fmt.Sprintf("its checkpoint has format %d", ck.Format), nil
	case ck.Host != r.Host || ck.Source != r.Source:
		return "its checkpoint is of another host or source", nil
	case ck.Fingerprint != fingerprint:
		return "the configuration or the keys changed since it was interrupted", nil
	case ck.Snapshot != snapshot:
		return fmt.Sprintf("it read %q, which this run cannot read again", ck.Snapshot), nil
	}
	if k, _, ok := ParseSetID(ck.ID); !ok || k != KindFull {
		return fmt.Sprintf("its checkpoint names %q, not a full", ck.ID), nil
	}
	for name, size := range map[string]int64{checkpointFiles: ck.TableSize, checkpointSigs: ck.SigsSize} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Size() < size {
			return fmt.Sprintf("its local %s is missing or shorter than the checkpoint says", name), nil
		}
	}
	sd := SetDir(r.Host, r.Source, ck.ID)
	infos, err := r.Backend.List(ctx, sd)
	if err != nil && !remote.IsNotExist(err) {
		return "", fmt.Errorf("list %s (the interrupted full to resume): %w", sd, err)
	}
	size := map[string]int64{}
	for _, i := range infos {
		if isManifest(i.Name) {
			return reasonComplete, nil
		}
		size[i.Name] = i.Size
	}
	for _, v := range ck.Volumes {
		if got, ok := size[v.Name]; !ok || got != v.Size {
			return fmt.Sprintf("the remote does not hold %s/%s as the checkpoint says", sd, v.Name), nil
		}
	}
	return "", nil
}

// reasonComplete is why a checkpoint of a set that was committed (a run
// killed between its manifest and removing the checkpoint) is dropped:
// its set is kept.
const reasonComplete = "its set on the remote is complete (it has a manifest)"

func loadCheckpoint(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if err != nil {
		return nil, err
	}
	var ck Checkpoint
	if err := json.Unmarshal(b, &ck); err != nil {
		return nil, fmt.Errorf("%s: %w", checkpointName, err)
	}
	return &ck, nil
}

// ReadCheckpoint returns the checkpoint saved in dir, unchecked (for a dry
// run: CheckResume decides whether it is resumed); an error wrapping
// fs.ErrNotExist when there is none.
func ReadCheckpoint(dir string) (*Checkpoint, error) { return loadCheckpoint(dir) }

// checkpointer writes a full's table and signatures to local files and
// saves a checkpoint once every volume up to a boundary is uploaded.
type checkpointer struct {
	opt   *Resume
	table *os.File
	tabN  *countWriter
	sigs  *os.File
	sigsN *countWriter
	sigsW *bufio.Writer

	mu       sync.Mutex
	uploaded map[string]bool
	pending  []Checkpoint // boundaries not yet saved, oldest first
	saved    int          // volumes in the last saved checkpoint
	err      error        // the first failure to save one
}

// openCheckpointer opens the local files, truncated to ck's lengths when
// resuming, else empty.
func openCheckpointer(opt *Resume) (*checkpointer, error) {
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	c := &checkpointer{opt: opt, uploaded: map[string]bool{}}
	var tsize, ssize int64
	if opt.From != nil {
		tsize, ssize = opt.From.TableSize, opt.From.SigsSize
		c.saved = len(opt.From.Volumes)
	} else {
		os.Remove(filepath.Join(opt.Dir, checkpointName))
	}
	var err error
	if c.table, err = openTruncated(filepath.Join(opt.Dir, checkpointFiles), tsize); err != nil {
		return nil, err
	}
	if c.sigs, err = openTruncated(filepath.Join(opt.Dir, checkpointSigs), ssize); err != nil {
		c.table.Close()
		return nil, err
	}
	c.tabN = &countWriter{w: c.table}
	c.tabN.n.Store(tsize)
	c.sigsN = &countWriter{w: c.sigs}
	c.sigsN.n.Store(ssize)
	c.sigsW = bufio.NewWriterSize(c.sigsN, 256<<10)
	return c, nil
}

func openTruncated(p string, size int64) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		if err = f.Truncate(size); err == nil {
			_, err = f.Seek(size, io.SeekStart)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return f, nil
}

// sigsKey reads the MAC key at the start of a resumed full's signatures.
func (c *checkpointer) sigsKey() ([]byte, error) {
	head := make([]byte, len(sigsMagic)+rsyncdelta.KeySize)
	if _, err := c.sigs.ReadAt(head, 0); err != nil || string(head[:len(sigsMagic)]) != sigsMagic {
		return nil, fmt.Errorf("checkpoint: the local signatures do not start with a key")
	}
	return head[len(sigsMagic):], nil
}

// boundary is called when a volume closed: the local files are synced and
// ck (the set's state at that moment) waits for its volumes' uploads.
func (c *checkpointer) boundary(ck Checkpoint) error {
	if err := c.sigsW.Flush(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := c.table.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := c.sigs.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	ck.TableSize, ck.SigsSize = c.tabN.n.Load(), c.sigsN.n.Load()
	c.mu.Lock()
	c.pending = append(c.pending, ck)
	c.mu.Unlock()
	c.advance()
	return nil
}

// done is told by the uploader that an object is on the remote.
func (c *checkpointer) done(name string) {
	c.mu.Lock()
	c.uploaded[name] = true
	c.mu.Unlock()
	c.advance()
}

// advance saves the newest pending checkpoint whose volumes are all
// uploaded.
func (c *checkpointer) advance() {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := -1
	for i, ck := range c.pending {
		all := true
		for _, v := range ck.Volumes[c.saved:] {
			if !c.uploaded[v.Name] {
				all = false
				break
			}
		}
		if !all {
			break
		}
		best = i
	}
	if best < 0 || c.err != nil {
		return
	}
	ck := c.pending[best]
	c.pending = c.pending[best+1:]
	b, err := json.MarshalIndent(ck, "", " ")
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(c.opt.Dir, checkpointName), append(b, '\n'), 0o600)
	}
	if err != nil {
		c.err = fmt.Errorf("save checkpoint: %w", err)
		return
	}
	c.saved = len(ck.Volumes)
	if c.opt.Checkpointed != nil {
		c.opt.Checkpointed(c.saved)
	}
}

// savedVolumes returns how many volumes the saved checkpoint holds.
func (c *checkpointer) savedVolumes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saved
}

// finish copies the local table and signatures into the set's objects.
func (c *checkpointer) finish(table, sigs io.Writer) error {
	if err := c.sigsW.Flush(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for _, x := range []struct {
		f *os.File
		w io.Writer
	}{{c.table, table}, {c.sigs, sigs}} {
		if _, err := x.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if _, err := io.CopyBuffer(x.w, x.f, make([]byte, 1<<20)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	return nil
}

func (c *checkpointer) close() {
	c.table.Close()
	c.sigs.Close()
}

// confirmLinks keeps of links (the first names of multiply-linked files met
// in the part of the tree a resumed full skips) those that the local table
// holds as regular files of the same inode: a hardlink entry never names a
// path archived as something else.
func (c *checkpointer) confirmLinks(links map[devIno]string) error {
	if len(links) == 0 {
		return nil
	}
	want := make(map[string]devIno, len(links))
	for k, p := range links {
		want[p] = k
	}
	confirmed := make(map[devIno]bool, len(links))
	tr := NewTableReader(io.NewSectionReader(c.table, 0, c.tabN.n.Load()))
	for {
		e, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("checkpoint: local table: %w", err)
		}
		if k, ok := want[string(e.Path)]; ok && e.Type == TypeFile && e.Inode == k.ino {
			confirmed[k] = true
		}
	}
	for k := range links {
		if !confirmed[k] {
			delete(links, k)
		}
	}
	return nil
}
