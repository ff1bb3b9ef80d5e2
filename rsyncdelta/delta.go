package rsyncdelta

import (
	"crypto/subtle"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/zeebo/blake3"
)

// DeltaStats describes a delta that was written.
type DeltaStats struct {
	LiteralBytes int64 // new data carried in the delta
	CopyBytes    int64 // data the delta copies from the basis
	Commands     int64 // commands, END included
	DeltaBytes   int64 // length of the delta
}

// Delta reads newFile once and writes to w a delta in librsync's format that
// turns the basis described by sig into newFile. Memory is the signature's
// plus a window of max(4 MiB, 8 blocks).
//
// Matching is greedy and block-granular like librsync's, with one addition:
// after a match the next block of the basis is tried first, by its MAC
// alone, so unchanged stretches run at hashing speed (on all cores) and runs
// of equal blocks become one COPY.
func Delta(sig *Signature, newFile io.Reader, w io.Writer) (DeltaStats, error) {
	m := newMatcher(sig, newFile, w)
	err := m.run()
	if err == nil {
		err = m.out.end()
	}
	return m.out.stats, err
}

// matcher holds the state of one delta.
type matcher struct {
	sig  *Signature
	bl   int // block length
	full int // number of full-length blocks
	r    io.Reader
	out  *deltaWriter
	macs []*blake3.Hasher // one per worker

	buf []byte // buf[:end] holds new-file data
	end int
	pos int  // start of the window being matched
	lit int  // start of the pending literal (lit <= pos)
	eof bool // r is exhausted

	next     int // block expected at expectAt: the one after the last match
	expectAt int
	batch    int // blocks to verify at once on the expected path
	maxBatch int
	ok       []bool
}

func newMatcher(sig *Signature, r io.Reader, w io.Writer) *matcher {
	bl := sig.blockLen
	m := &matcher{
		sig:      sig,
		bl:       bl,
		full:     sig.fullBlocks(),
		r:        r,
		out:      newDeltaWriter(w),
		buf:      make([]byte, max(4<<20, 8*bl)),
		next:     0,
		batch:    2,
		maxBatch: max(2, (256<<10)/bl),
	}
	m.ok = make([]bool, m.maxBatch)
	for range min(runtime.GOMAXPROCS(0), 4) {
		h, _ := blake3.NewKeyed(sig.keys.block[:])
		m.macs = append(m.macs, h)
	}
	return m
}

func (m *matcher) run() error {
	for {
		ok, err := m.fill(m.bl)
		if err != nil {
			return err
		}
		if !ok {
			m.finish()
			return m.out.err()
		}
		if m.next < m.sig.Blocks() && m.expectAt == m.pos && m.tryExpected() {
			continue
		}
		m.search()
	}
}

// fill makes at least need bytes available at pos, unless the input ends
// first; it reports whether they are there.
func (m *matcher) fill(need int) (bool, error) {
	if m.end-m.pos >= need {
		return true, nil
	}
	if m.eof {
		return false, nil
	}
	if m.lit < m.pos {
		m.out.literal(m.buf[m.lit:m.pos])
	}
	if err := m.out.err(); err != nil {
		return false, err
	}
	n := copy(m.buf, m.buf[m.pos:m.end])
	m.expectAt -= m.pos
	m.pos, m.lit, m.end = 0, 0, n
	for m.end < len(m.buf) && !m.eof {
		k, err := m.r.Read(m.buf[m.end:])
		m.end += k
		if err == io.EOF {
			m.eof = true
		} else if err != nil {
			return false, fmt.Errorf("read new file: %w", err)
		}
	}
	return m.end-m.pos >= need, nil
}

// tryExpected checks the blocks expected at pos, in batches verified in
// parallel, and copies the run that matches. It reports whether any did.
func (m *matcher) tryExpected() bool {
	sig := m.sig
	if m.next >= m.full { // the short last block
		n := int(sig.size) - m.full*m.bl
		if !m.macEqual(m.macs[0], m.buf[m.pos:m.pos+n], m.next) {
			return false
		}
		m.matched(m.pos, m.next, n)
		return true
	}
	k := min(m.batch, (m.end-m.pos)/m.bl, m.full-m.next)
	ok := m.ok[:k]
	check := func(h *blake3.Hasher, from, to int) {
		for i := from; i < to; i++ {
			p := m.pos + i*m.bl
			ok[i] = m.macEqual(h, m.buf[p:p+m.bl], m.next+i)
		}
	}
	workers := min(len(m.macs), k)
	if workers <= 1 || k*m.bl < 64<<10 {
		check(m.macs[0], 0, k)
	} else {
		var wg sync.WaitGroup
		per := (k + workers - 1) / workers
		for w := 1; w < workers; w++ {
			from, to := w*per, min((w+1)*per, k)
			if from < to {
				wg.Go(func() { check(m.macs[w], from, to) })
			}
		}
		check(m.macs[0], 0, min(per, k))
		wg.Wait()
	}
	j := 0
	for j < k && ok[j] {
		m.matched(m.pos, m.next, m.bl)
		j++
	}
	if j == k {
		m.batch = min(2*m.batch, m.maxBatch)
	} else {
		m.batch = 2
		m.expectAt = -1 // known to fail here; search instead
	}
	return j > 0
}

// matched records that block idx, n bytes long, matches at new-file
// offset at, and moves past it.
func (m *matcher) matched(at, idx, n int) {
	if m.lit < at {
		m.out.literal(m.buf[m.lit:at])
	}
	m.out.copy(int64(idx)*int64(m.bl), int64(n))
	m.pos = at + n
	m.lit = m.pos
	m.next = idx + 1
	m.expectAt = m.pos
}

// search rolls the weak sum over the buffer from pos until a block matches
// (and is copied) or no full window is left in the buffer.
func (m *matcher) search() {
	sig := m.sig
	bl := m.bl
	w := &sig.keys.weak
	data := m.buf[:m.end]
	filter, fshift := sig.filter, sig.fshift
	limit := m.end - bl // last window start in the buffer
	h := w.sum(data[m.pos : m.pos+bl])
	for i := m.pos; ; i++ {
		f := h >> fshift
		if filter[f>>6]&(1<<(f&63)) != 0 {
			if idx := m.lookup(h, data[i:i+bl]); idx >= 0 {
				m.matched(i, idx, bl)
				return
			}
		}
		if i == limit {
			m.pos = limit + 1
			return
		}
		h = h*rkMul + w.t[0][data[i+bl]] - w.out[data[i]]
	}
}

// lookup returns the index of a full block with weak sum h and the same MAC
// as window, preferring the expected next block, or -1.
func (m *matcher) lookup(h uint32, window []byte) int {
	sig := m.sig
	var sum [32]byte
	var mac []byte
	if m.next < m.full && sig.weak[m.next] == h {
		mac = m.mac(m.macs[0], window, &sum)
		if subtle.ConstantTimeCompare(mac[:sig.sumLen], sig.tag(m.next)) == 1 {
			return m.next
		}
	}
	mask := uint32(len(sig.table) - 1)
	for slot := tableSlot(h, sig.tshift); ; slot = (slot + 1) & mask {
		e := sig.table[slot]
		if e == 0 {
			return -1
		}
		j := int(e - 1)
		if sig.weak[j] != h {
			continue
		}
		if mac == nil {
			mac = m.mac(m.macs[0], window, &sum)
		}
		if subtle.ConstantTimeCompare(mac[:sig.sumLen], sig.tag(j)) == 1 {
			return j
		}
	}
}

// finish handles the last bytes, fewer than a block: the basis's short last
// block may match there, right after the previous match or at the very end
// (as in librsync); the rest is literal.
func (m *matcher) finish() {
	sig := m.sig
	last := sig.Blocks() - 1
	n := int(sig.size) - m.full*m.bl // length of the short last block, or 0
	if n > 0 && m.end-m.pos >= n {
		switch {
		case m.next == last && m.expectAt == m.pos && m.macEqual(m.macs[0], m.buf[m.pos:m.pos+n], last):
			m.matched(m.pos, last, n)
		case sig.weak[last] == sig.keys.weak.sum(m.buf[m.end-n:m.end]) && m.macEqual(m.macs[0], m.buf[m.end-n:m.end], last):
			m.matched(m.end-n, last, n)
		}
	}
	if m.lit < m.end {
		m.out.literal(m.buf[m.lit:m.end])
	}
	m.pos, m.lit = m.end, m.end
}

func (m *matcher) mac(h *blake3.Hasher, p []byte, sum *[32]byte) []byte {
	h.Reset()
	h.Write(p)
	return h.Sum(sum[:0])
}

func (m *matcher) macEqual(h *blake3.Hasher, p []byte, idx int) bool {
	var sum [32]byte
	mac := m.mac(h, p, &sum)
	return subtle.ConstantTimeCompare(mac[:m.sig.sumLen], m.sig.tag(idx)) == 1
}
