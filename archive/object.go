package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/backtory/backtory/remote"
)

// objectWriter spools one object to a local file: bytes written to it are
// compressed (optionally), then sealed (optionally) in a goroutine of its
// own, hashed and written to the spool. Close returns the finished object.
type objectWriter struct {
	name    string
	file    *os.File
	hash    hash.Hash
	counter *countWriter // stored bytes so far
	zw      *zstd.Encoder
	pw      *io.PipeWriter
	done    chan error
	w       io.Writer // where callers write
	// Frames (format 2): plain counts the bytes callers wrote, framed the
	// bytes that came out of the compressor (before sealing); a frame
	// starts at offset frameC of the compressed stream, at frameU of the
	// plain one.
	plain          *countWriter
	framed         *countWriter
	frameC, frameU int64
}

// spooled is an object ready for upload.
type spooled struct {
	ref  ObjectRef
	path string
}

func newObjectWriter(dir, name string, comp Compression, sealer Sealer) (*objectWriter, error) {
	f, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", name, err)
	}
	o := &objectWriter{name: name, file: f, hash: sha256.New()}
	o.counter = &countWriter{w: io.MultiWriter(f, o.hash)}
	var sink io.Writer = o.counter
	if sealer != nil {
		// Seal in a goroutine of its own so that it runs beside compression.
		pr, pw := io.Pipe()
		o.pw = pw
		o.done = make(chan error, 1)
		go func() {
			sw, err := sealer.Seal(o.counter)
			if err == nil {
				_, err = io.CopyBuffer(sw, pr, make([]byte, 256<<10))
				if cerr := sw.Close(); err == nil {
					err = cerr
				}
			}
			pr.CloseWithError(err)
			o.done <- err
		}()
		sink = pw
	}
	o.framed = &countWriter{w: sink}
	sink = o.framed
	if comp.Kind == "zstd" {
		zw, err := zstd.NewWriter(sink, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(comp.Level)),
			zstd.WithEncoderConcurrency(2), zstd.WithWindowSize(4<<20))
		if err != nil {
			o.abort()
			return nil, err
		}
		o.zw = zw
		sink = zw
	}
	o.plain = &countWriter{w: sink}
	o.w = o.plain
	return o, nil
}

// endFrame ends the current zstd frame and starts the next one, so that a
// reader can start decompressing at frameC (the compressed offset, in the
// opened object) without reading what comes before.
func (o *objectWriter) endFrame() error {
	if o.zw != nil {
		if err := o.zw.Close(); err != nil {
			return err
		}
		o.zw.Reset(o.framed)
	}
	o.frameC, o.frameU = o.framed.n.Load(), o.plain.n.Load()
	return nil
}

func (o *objectWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// stored returns about how many bytes the object has on the remote so far.
func (o *objectWriter) stored() int64 { return o.counter.n.Load() }

// Close finishes the object and returns it, spooled.
func (o *objectWriter) Close() (spooled, error) {
	err := func() error {
		if o.zw != nil {
			if err := o.zw.Close(); err != nil {
				return err
			}
		}
		if o.pw != nil {
			o.pw.Close()
			if err := <-o.done; err != nil {
				return fmt.Errorf("seal: %w", err)
			}
		}
		return o.file.Close()
	}()
	if err != nil {
		o.abort()
		return spooled{}, fmt.Errorf("write %s: %w", o.name, err)
	}
	return spooled{
		ref:  ObjectRef{Name: o.name, Size: o.counter.n.Load(), SHA256: hex.EncodeToString(o.hash.Sum(nil))},
		path: o.file.Name(),
	}, nil
}

// abort drops the spool.
func (o *objectWriter) abort() {
	if o.pw != nil {
		o.pw.CloseWithError(fmt.Errorf("aborted"))
		<-o.done
		o.pw = nil
	}
	o.file.Close()
	os.Remove(o.file.Name())
}

// countWriter counts the bytes written through it; the count may be read
// while another goroutine writes (the zstd encoder's).
type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// uploader uploads spooled objects in the background, a few at a time,
// and deletes each spool file after its upload.
type uploader struct {
	ctx    context.Context
	cancel context.CancelFunc
	b      remote.Backend
	dir    string
	queue  chan spooled
	errc   chan error
	n      int
	closed bool // the queue was closed by wait
	err    error
	// uploaded, if set, is told the name of each object once it is on
	// the remote (set before the first add).
	uploaded func(name string)
}

func newUploader(ctx context.Context, b remote.Backend, dir string, workers int) *uploader {
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	u := &uploader{ctx: ctx, cancel: cancel, b: b, dir: dir, queue: make(chan spooled, 1), errc: make(chan error, workers), n: workers}
	queue := u.queue // the workers' own copy: wait marks u.queue closed
	for i := 0; i < workers; i++ {
		go func() {
			var first error
			for s := range queue {
				if first == nil {
					first = u.put(s)
					if first != nil {
						cancel()
					}
				}
				os.Remove(s.path)
			}
			u.errc <- first
		}()
	}
	return u
}

func (u *uploader) put(s spooled) error {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	name := objectPath(u.dir, s.ref.Name)
	if err := u.b.Put(u.ctx, name, f); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	if u.uploaded != nil {
		u.uploaded(s.ref.Name)
	}
	return nil
}

// add queues s; it blocks while the workers are busy, which bounds the
// spool to a few volumes.
func (u *uploader) add(s spooled) error {
	if u.closed {
		os.Remove(s.path)
		return fmt.Errorf("upload %s: the uploads were stopped", s.ref.Name)
	}
	select {
	case u.queue <- s:
		return nil
	case <-u.ctx.Done():
		os.Remove(s.path)
		if err := u.wait(); err != nil {
			return err
		}
		return u.ctx.Err()
	}
}

// wait returns the first upload error after all queued uploads finished.
func (u *uploader) wait() error {
	if !u.closed {
		close(u.queue)
		u.closed = true
		for i := 0; i < u.n; i++ {
			// The first failure cancels the others: report it, not theirs.
			if err := <-u.errc; err != nil && (u.err == nil || errors.Is(u.err, context.Canceled)) {
				u.err = err
			}
		}
		u.cancel()
	}
	return u.err
}
