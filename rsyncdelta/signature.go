package rsyncdelta

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"
)

// Signature format constants; the layout is documented in docs/rsyncdelta.md.
const (
	sigMagic     = 0x52444B31 // "RDK1"
	sigVersion   = 1
	macBLAKE3    = 1 // strong sum: keyed BLAKE3, truncated to sumLen
	weakRK32     = 1 // weak sum: keyed Rabin-Karp, 32 bits
	sigHeaderLen = 64
	sigSealLen   = 16
	weakLen      = 4

	// SumLen is the length of the strong sum (the truncated MAC) of each
	// block in the signatures this package writes. Readers accept 12..32.
	SumLen    = 16
	minSumLen = 12
	maxSumLen = 32

	// MaxBlocks bounds the number of blocks in a signature (64 TiB at the
	// largest block length), and so the memory a signature can claim.
	MaxBlocks = 1 << 26
)

// A Signature describes a basis file block by block. It is read with
// ReadSignature and used by Delta; it holds about 20 bytes per block plus an
// index of about 10 bytes per block.
type Signature struct {
	blockLen int
	size     int64
	sumLen   int
	keys     *sigKeys
	weak     []uint32 // weak sum of each block
	tags     []byte   // strong sums, sumLen bytes per block

	// index of the full-length blocks by weak sum
	filter []uint64 // one bit per bucket of weak sums: any block there?
	fshift uint
	table  []uint32 // open addressing; block index + 1, 0 = empty
	tshift uint
}

// BlockLen returns the signature's block length.
func (s *Signature) BlockLen() int { return s.blockLen }

// Size returns the length of the basis file the signature was made from.
func (s *Signature) Size() int64 { return s.size }

// Blocks returns the number of blocks, the last one possibly short.
func (s *Signature) Blocks() int { return len(s.weak) }

// SignatureSize returns the exact length of the encoded signature of a basis
// of size bytes at blockLen, so a container can frame it before writing it.
func SignatureSize(size int64, blockLen int) int64 {
	return sigHeaderLen + blockCount(size, blockLen)*(weakLen+SumLen) + sigSealLen
}

// A SignatureWriter computes the signature of a basis file fed to it with
// Write, and writes the encoded signature to an underlying writer.
type SignatureWriter struct {
	w        io.Writer
	keys     *sigKeys
	header   [sigHeaderLen]byte
	blockLen int
	size     int64 // declared size, -1 if unknown
	written  int64
	seal     *blake3.Hasher
	macs     []*blake3.Hasher // one per worker
	buf      []byte           // basis bytes being gathered, less than one batch
	out      []byte           // encoded entries of one batch
	body     []byte           // the whole body, only when size is unknown
	err      error
	closed   bool

	// Gathered batches are signed by a goroutine, started with the first
	// one, while the caller gathers the next batch; a write that carries a
	// whole batch is signed in place once that goroutine is idle.
	jobs   chan []byte // batches to sign
	free   chan []byte // batch buffers back from the goroutine
	busy   sync.WaitGroup
	done   chan struct{} // closed when the goroutine has finished
	failed atomic.Bool   // the goroutine failed with herr
	herr   error
}

// NewSignatureWriter returns a writer that signs a basis of exactly size
// bytes (or, if size is negative, of unknown size) at blockLen bytes per
// block (0 means BlockLen(size)), with key. The signature is written to w as
// the basis is written, from another goroutine, so w must not be used until
// Close returns; Close writes the rest and must be called. With an unknown
// size the entries are held in memory (20 bytes per block) until Close.
func NewSignatureWriter(w io.Writer, key []byte, blockLen int, size int64) (*SignatureWriter, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("signature key is %d bytes, want %d", len(key), KeySize)
	}
	if blockLen == 0 {
		blockLen = BlockLen(size)
	}
	if blockLen < MinBlockLen || blockLen > MaxBlockLen {
		return nil, fmt.Errorf("block length %d is outside %d..%d", blockLen, MinBlockLen, MaxBlockLen)
	}
	if size >= 0 && blockCount(size, blockLen) > MaxBlocks {
		return nil, fmt.Errorf("a basis of %d bytes has more than %d blocks of %d bytes; use a larger block length", size, MaxBlocks, blockLen)
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("signature salt: %w", err)
	}
	keys := deriveKeys(key, salt, blockLen)
	workers := min(runtime.GOMAXPROCS(0), 4)
	batch := max(1, (1<<20)/blockLen) * blockLen
	if size >= 0 {
		// A small file needs no more than its own size: backups sign many.
		batch = min(batch, int(max(1, blockCount(size, blockLen)))*blockLen)
	}
	s := &SignatureWriter{
		w:        w,
		keys:     keys,
		blockLen: blockLen,
		size:     size,
		buf:      make([]byte, 0, batch),
		out:      make([]byte, 0, (batch/blockLen)*(weakLen+SumLen)),
	}
	s.seal, _ = blake3.NewKeyed(keys.seal[:])
	for range workers {
		m, _ := blake3.NewKeyed(keys.block[:])
		s.macs = append(s.macs, m)
	}
	putHeader(s.header[:], blockLen, SumLen, max(size, 0), KeyID(key), salt)
	if size >= 0 {
		if err := s.emit(s.header[:]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// BlockLen returns the block length the signature is made with.
func (s *SignatureWriter) BlockLen() int { return s.blockLen }

// Write feeds basis bytes to the signature.
func (s *SignatureWriter) Write(p []byte) (int, error) {
	if s.err == nil && s.failed.Load() {
		s.err = s.herr
	}
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("signature: write after close")
	}
	if s.size >= 0 && s.written+int64(len(p)) > s.size {
		s.err = fmt.Errorf("signature: basis is longer than the declared %d bytes", s.size)
		return 0, s.err
	}
	n := len(p)
	s.written += int64(n)
	batch := cap(s.buf)
	for len(p) > 0 {
		if len(s.buf) == 0 && len(p) >= batch {
			// A whole batch in the caller's buffer: sign it in place
			// rather than copy it.
			if err := s.direct(p[:batch]); err != nil {
				s.err = err
				return 0, err
			}
			p = p[batch:]
			continue
		}
		k := copy(s.buf[len(s.buf):batch], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		if len(s.buf) == batch {
			s.submit()
		}
	}
	return n, nil
}

// Close signs the last blocks and writes the end of the signature. It fails
// if the basis was not exactly the declared size. It does not close the
// underlying writer.
func (s *SignatureWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.err == nil && s.size >= 0 && s.written != s.size {
		s.err = fmt.Errorf("signature: basis is %d bytes, not the declared %d (did the file change while it was read?)", s.written, s.size)
	}
	if s.err == nil && len(s.buf) > 0 {
		if s.jobs != nil {
			s.busy.Add(1)
			s.jobs <- s.buf
		} else {
			s.err = s.flushBatch(s.buf) // a small basis: no goroutine
		}
	}
	if s.jobs != nil {
		close(s.jobs)
		<-s.done
		if s.err == nil && s.failed.Load() {
			s.err = s.herr
		}
	}
	if s.err != nil {
		return s.err
	}
	if s.size < 0 {
		if blockCount(s.written, s.blockLen) > MaxBlocks {
			s.err = fmt.Errorf("signature: a basis of %d bytes has more than %d blocks of %d bytes; use a larger block length", s.written, MaxBlocks, s.blockLen)
			return s.err
		}
		binary.BigEndian.PutUint64(s.header[12:], uint64(s.written))
		binary.BigEndian.PutUint64(s.header[20:], uint64(blockCount(s.written, s.blockLen)))
		if s.err = s.emit(s.header[:]); s.err != nil {
			return s.err
		}
		body := s.body
		s.body = nil
		if s.err = s.emit(body); s.err != nil {
			return s.err
		}
	}
	var sum [32]byte
	s.err = s.write(s.seal.Sum(sum[:0])[:sigSealLen])
	return s.err
}

// ReadSignature reads one encoded signature from r, and no byte more, and
// checks it with key. It checks the header before it allocates anything, a
// wrong key gives an error wrapping ErrWrongKey, and the trailing MAC must
// match, so a signature altered in any bit is rejected.
func ReadSignature(r io.Reader, key []byte) (*Signature, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("signature key is %d bytes, want %d", len(key), KeySize)
	}
	var hdr [sigHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read signature header: %w", noEOF(err))
	}
	h, err := parseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(h.keyID[:], func() []byte { id := KeyID(key); return id[:] }()) != 1 {
		return nil, fmt.Errorf("read signature: %w (key id %x, this key's id %x)", ErrWrongKey, h.keyID, KeyID(key))
	}
	s := &Signature{
		blockLen: h.blockLen,
		size:     h.size,
		sumLen:   h.sumLen,
		keys:     deriveKeys(key, h.salt, h.blockLen),
	}
	seal, _ := blake3.NewKeyed(s.keys.seal[:])
	seal.Write(hdr[:])

	// Read the body in chunks, growing the slices only as data arrives, so
	// a header that lies about the count cannot make us allocate.
	entry := weakLen + h.sumLen
	const chunkEntries = 1 << 14
	chunk := make([]byte, min(h.count, chunkEntries)*entry)
	s.weak = make([]uint32, 0, min(h.count, chunkEntries))
	s.tags = make([]byte, 0, min(h.count, chunkEntries)*h.sumLen)
	for left := h.count; left > 0; {
		n := min(left, chunkEntries)
		buf := chunk[:n*entry]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read signature blocks: %w", noEOF(err))
		}
		seal.Write(buf)
		for i := range n {
			e := buf[i*entry : (i+1)*entry]
			s.weak = append(s.weak, binary.BigEndian.Uint32(e))
			s.tags = append(s.tags, e[weakLen:]...)
		}
		left -= n
	}
	var got [sigSealLen]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return nil, fmt.Errorf("read signature trailer: %w", noEOF(err))
	}
	var want [32]byte
	if subtle.ConstantTimeCompare(got[:], seal.Sum(want[:0])[:sigSealLen]) != 1 {
		return nil, errors.New("read signature: the signature's MAC does not match: it is corrupt or was altered")
	}
	s.buildIndex()
	return s, nil
}

// flushBatch signs the blocks of p (whole blocks except at Close) in
// parallel and writes their entries.
func (s *SignatureWriter) flushBatch(p []byte) error {
	bl := s.blockLen
	n := (len(p) + bl - 1) / bl
	entry := weakLen + SumLen
	out := s.out[:n*entry]
	work := func(m *blake3.Hasher, from, to int) {
		var sum [32]byte
		for i := from; i < to; i++ {
			blk := p[i*bl : min((i+1)*bl, len(p))]
			e := out[i*entry : (i+1)*entry]
			binary.BigEndian.PutUint32(e, s.keys.weak.sum(blk))
			m.Reset()
			m.Write(blk)
			copy(e[weakLen:], m.Sum(sum[:0]))
		}
	}
	workers := min(len(s.macs), n)
	if workers <= 1 || len(p) < 128<<10 {
		work(s.macs[0], 0, n)
	} else {
		var wg sync.WaitGroup
		per := (n + workers - 1) / workers
		for k := 1; k < workers; k++ {
			from, to := k*per, min((k+1)*per, n)
			if from >= to {
				continue
			}
			wg.Go(func() { work(s.macs[k], from, to) })
		}
		work(s.macs[0], 0, min(per, n))
		wg.Wait()
	}
	if s.size < 0 {
		s.body = append(s.body, out...)
		return nil
	}
	return s.emit(out)
}

// submit hands the full batch in buf to the signing goroutine, starting
// it the first time, and takes a free buffer for the next batch.
func (s *SignatureWriter) submit() {
	if s.jobs == nil {
		s.jobs = make(chan []byte, 1)
		s.free = make(chan []byte, 2)
		s.done = make(chan struct{})
		s.free <- make([]byte, 0, cap(s.buf))
		go s.sign()
	}
	s.busy.Add(1)
	s.jobs <- s.buf
	s.buf = <-s.free
}

// direct signs p on the caller's goroutine, after the batches before it.
func (s *SignatureWriter) direct(p []byte) error {
	if s.jobs != nil {
		s.busy.Wait()
		if s.failed.Load() {
			return s.herr
		}
	}
	return s.flushBatch(p)
}

// sign signs batches until jobs is closed.
func (s *SignatureWriter) sign() {
	defer close(s.done)
	for p := range s.jobs {
		if !s.failed.Load() {
			if err := s.flushBatch(p); err != nil {
				s.herr = err
				s.failed.Store(true)
			}
		}
		s.free <- p[:0]
		s.busy.Done()
	}
}

// emit writes p to the signature and to its seal.
func (s *SignatureWriter) emit(p []byte) error {
	s.seal.Write(p)
	return s.write(p)
}

func (s *SignatureWriter) write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("write signature: %w", err)
	}
	return nil
}

type sigHeader struct {
	blockLen int
	sumLen   int
	size     int64
	count    int
	keyID    [8]byte
	salt     [16]byte
}

func putHeader(b []byte, blockLen, sumLen int, size int64, keyID [8]byte, salt [16]byte) {
	binary.BigEndian.PutUint32(b[0:], sigMagic)
	b[4] = sigVersion
	b[5] = macBLAKE3
	b[6] = weakRK32
	b[7] = byte(sumLen)
	binary.BigEndian.PutUint32(b[8:], uint32(blockLen))
	binary.BigEndian.PutUint64(b[12:], uint64(size))
	binary.BigEndian.PutUint64(b[20:], uint64(blockCount(size, blockLen)))
	copy(b[28:36], keyID[:])
	copy(b[36:52], salt[:])
	clear(b[52:64])
}

// parseHeader checks every field of a signature header.
func parseHeader(b []byte) (sigHeader, error) {
	var h sigHeader
	if m := binary.BigEndian.Uint32(b[0:]); m != sigMagic {
		return h, fmt.Errorf("read signature: bad magic %#08x: not a backtory signature (want %#08x)", m, sigMagic)
	}
	if b[4] != sigVersion {
		return h, fmt.Errorf("read signature: unsupported version %d (this program reads version %d)", b[4], sigVersion)
	}
	if b[5] != macBLAKE3 {
		return h, fmt.Errorf("read signature: unknown strong sum algorithm %d", b[5])
	}
	if b[6] != weakRK32 {
		return h, fmt.Errorf("read signature: unknown weak sum algorithm %d", b[6])
	}
	h.sumLen = int(b[7])
	if h.sumLen < minSumLen || h.sumLen > maxSumLen {
		return h, fmt.Errorf("read signature: strong sum length %d is outside %d..%d", h.sumLen, minSumLen, maxSumLen)
	}
	bl := binary.BigEndian.Uint32(b[8:])
	if bl < MinBlockLen || bl > MaxBlockLen {
		return h, fmt.Errorf("read signature: block length %d is outside %d..%d", bl, MinBlockLen, MaxBlockLen)
	}
	h.blockLen = int(bl)
	size := binary.BigEndian.Uint64(b[12:])
	count := binary.BigEndian.Uint64(b[20:])
	if count > MaxBlocks {
		return h, fmt.Errorf("read signature: %d blocks is more than the limit of %d", count, MaxBlocks)
	}
	if size > uint64(MaxBlocks)*uint64(MaxBlockLen) || uint64(blockCount(int64(size), h.blockLen)) != count {
		return h, fmt.Errorf("read signature: a basis of %d bytes cannot have %d blocks of %d bytes", size, count, bl)
	}
	h.size, h.count = int64(size), int(count)
	copy(h.keyID[:], b[28:36])
	copy(h.salt[:], b[36:52])
	for _, c := range b[52:64] {
		if c != 0 {
			return h, errors.New("read signature: reserved header bytes are not zero")
		}
	}
	return h, nil
}

func blockCount(size int64, blockLen int) int64 {
	return (size + int64(blockLen) - 1) / int64(blockLen)
}

// fullBlocks returns the number of blocks of exactly blockLen bytes.
func (s *Signature) fullBlocks() int {
	return int(s.size / int64(s.blockLen))
}

func (s *Signature) tag(i int) []byte { return s.tags[i*s.sumLen : (i+1)*s.sumLen] }

// buildIndex indexes the full blocks by weak sum. Of blocks with equal weak
// and strong sums only the first is kept (the delta prefers the next block
// after a match anyway, so runs of equal blocks still merge).
func (s *Signature) buildIndex() {
	n := s.fullBlocks()
	tbits := max(4, bitsFor(2*n))
	fbits := min(max(12, bitsFor(32*n)), 26)
	s.table = make([]uint32, 1<<tbits)
	s.tshift = uint(32 - tbits)
	s.filter = make([]uint64, (1<<fbits)/64)
	s.fshift = uint(32 - fbits)
	mask := uint32(len(s.table) - 1)
	for i := range n {
		w := s.weak[i]
		slot := tableSlot(w, s.tshift)
		for {
			e := s.table[slot]
			if e == 0 {
				s.table[slot] = uint32(i + 1)
				f := w >> s.fshift
				s.filter[f/64] |= 1 << (f % 64)
				break
			}
			j := int(e - 1)
			if s.weak[j] == w && bytes.Equal(s.tag(j), s.tag(i)) {
				break // duplicate block
			}
			slot = (slot + 1) & mask
		}
	}
}

func tableSlot(w uint32, shift uint) uint32 { return (w * 0x9E3779B1) >> shift }

// bitsFor returns the number of bits of the smallest power of two >= n.
func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// noEOF turns a clean EOF into ErrUnexpectedEOF: in the middle of a
// structure, running out of input is always an error.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
