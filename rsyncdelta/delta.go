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
// plus fixed buffers: a window of max(4 MiB, 8 blocks) and 2 MiB of scan
// scratch per core (at most 4). Several Deltas may use one Signature at once.
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

	buf    []byte // buf[:end] holds new-file data
	end    int
	pos    int  // start of the window being matched
	lit    int  // start of the pending literal (lit <= pos)
	eof    bool // r is exhausted
	filled bool // fill has run before

	next     int // block expected at expectAt: the one after the last match
	expectAt int
	runLen   int // bytes matched on the expected path since the last miss
	maxBatch int // most blocks verified at once on the expected path
	ok       []bool
	scanBufs [][]cand // per worker, scratch for scan
	scanOut  [][]cand
}

func newMatcher(sig *Signature, r io.Reader, w io.Writer) *matcher {
	bl := sig.blockLen
	m := &matcher{
		sig:      sig,
		bl:       bl,
		full:     sig.fullBlocks(),
		r:        r,
		out:      newDeltaWriter(w),
		buf:      make([]byte, max(256<<10, 4*bl)), // grown in fill for large files
		maxBatch: max(2, (2<<20)/bl),
	}
	m.ok = make([]bool, m.maxBatch)
	for range min(runtime.GOMAXPROCS(0), 4) {
		h, _ := blake3.NewKeyed(sig.keys.block[:])
		m.macs = append(m.macs, h)
		m.scanBufs = append(m.scanBufs, nil) // allocated as scans need them
	}
	m.scanOut = make([][]cand, len(m.scanBufs))
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
	if m.filled && len(m.buf) < maxWindow(m.bl) {
		// A second fill: the file is larger than the first window, so
		// take the full-size one (small files never allocate it).
		m.buf = append(make([]byte, 0, maxWindow(m.bl)), m.buf[m.pos:m.end]...)
		m.buf = m.buf[:cap(m.buf)]
		m.end -= m.pos
		m.expectAt -= m.pos
		m.pos, m.lit = 0, 0
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
	m.filled = true
	return m.end-m.pos >= need, nil
}

// maxWindow is the size of the window of new-file data of a delta.
func maxWindow(blockLen int) int { return max(4<<20, 8*blockLen) }

// tryExpected checks the blocks expected from pos on and copies the run
// that matches; it reports whether any did. Once a run is longer than
// parallelAfter, the blocks are verified in batches of half the run so far
// (at most 2 MiB), split over the workers: at most a third of the work is
// wasted when the run ends, and short runs never wait for other threads.
func (m *matcher) tryExpected() bool {
	sig := m.sig
	if m.next >= m.full { // the short last block
		n := int(sig.size) - m.full*m.bl
		if !m.macEqual(m.macs[0], m.buf[m.pos:m.pos+n], m.next) {
			m.expectAt = -1
			return false
		}
		m.matched(m.pos, m.next, n)
		return true
	}
	any := false
	for m.next < m.full && m.end-m.pos >= m.bl {
		k := 1
		if len(m.macs) > 1 && m.runLen >= parallelAfter {
			k = min(m.runLen/2/m.bl, m.maxBatch, (m.end-m.pos)/m.bl, m.full-m.next)
		}
		j := m.checkExpected(k)
		for range j {
			m.matched(m.pos, m.next, m.bl)
			m.runLen += m.bl
		}
		any = any || j > 0
		if j < k {
			m.runLen = 0
			m.expectAt = -1 // known to fail here; search instead
			return any
		}
	}
	return any
}

// parallelAfter is the length of a run of expected blocks after which they
// are verified in parallel.
const parallelAfter = 1 << 20

// checkExpected verifies the k blocks expected from pos on (in parallel
// when k > 1) and returns how many match in a row.
func (m *matcher) checkExpected(k int) int {
	workers := min(len(m.macs), k)
	if workers <= 1 {
		m.checkRange(m.macs[0], 0, k)
	} else {
		var wg sync.WaitGroup
		per := (k + workers - 1) / workers
		for w := 1; w < workers; w++ {
			from, to := min(w*per, k), min((w+1)*per, k)
			if from < to {
				wg.Go(func() { m.checkRange(m.macs[w], from, to) })
			}
		}
		m.checkRange(m.macs[0], 0, min(per, k))
		wg.Wait()
	}
	j := 0
	for j < k && m.ok[j] {
		j++
	}
	return j
}

// checkRange sets ok[i] for the expected blocks from to to, with MAC h.
func (m *matcher) checkRange(h *blake3.Hasher, from, to int) {
	for i := from; i < to; i++ {
		p := m.pos + i*m.bl
		m.ok[i] = m.macEqual(h, m.buf[p:p+m.bl], m.next+i)
	}
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

// search looks for a matching block at each window start from pos on, in
// chunks that grow while nothing matches, until a block matches (and is
// copied) or no full window is left in the buffer. Long chunks are scanned
// for candidates on all workers; the candidates are then checked in order,
// so the result is the same as a scan byte by byte.
func (m *matcher) search() {
	limit := m.end - m.bl // last window start in the buffer
	if m.full == 0 {
		m.pos = limit + 1 // no block to find
		return
	}
	chunk := 4 * m.bl
	for start := m.pos; start <= limit; {
		stop := min(start+chunk, limit+1)
		for _, cands := range m.scanAll(start, stop) {
			for _, c := range cands {
				i := int(c.pos)
				if idx := m.lookup(c.h, m.buf[i:i+m.bl]); idx >= 0 {
					m.matched(i, idx, m.bl)
					m.runLen = 0
					return
				}
			}
		}
		start = stop
		chunk = min(2*chunk, len(m.scanBufs)*maxScan)
	}
	m.pos = limit + 1
}

// maxScan is the most window starts one worker scans at a time.
const maxScan = 256 << 10

// scanAll scans [start, stop) for candidates, split over the workers when
// the range is long, and returns each part's candidates in order.
func (m *matcher) scanAll(start, stop int) [][]cand {
	workers := len(m.scanBufs)
	if workers == 1 || stop-start < 128<<10 {
		workers = 1
	}
	per := (stop - start + workers - 1) / workers
	for k := range workers {
		if len(m.scanBufs[k]) < per {
			m.scanBufs[k] = make([]cand, min(maxScan, 2*per))
		}
	}
	if workers == 1 {
		m.scanOut[0] = m.scan(start, stop, m.scanBufs[0])
		return m.scanOut[:1]
	}
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		from, to := min(start+k*per, stop), min(start+(k+1)*per, stop)
		if from == to {
			m.scanOut[k] = nil
			continue
		}
		wg.Go(func() { m.scanOut[k] = m.scan(from, to, m.scanBufs[k]) })
	}
	m.scanOut[0] = m.scan(start, min(start+per, stop), m.scanBufs[0])
	wg.Wait()
	return m.scanOut[:workers]
}

// A cand is a window start whose weak sum passed the filter.
type cand struct {
	pos int32
	h   uint32
}

// scan rolls the weak sum over the window starts [start, stop) and returns
// those that pass the filter. Long ranges are split into four lanes rolled
// in one loop, so the CPU overlaps their multiply chains; candidates are
// recorded without branches.
func (m *matcher) scan(start, stop int, c []cand) []cand {
	bl := m.bl
	w := &m.sig.keys.weak
	t0, out := &w.t[0], &w.out
	filter, fshift := m.sig.filter, m.sig.fshift
	d := m.buf[:m.end]
	count := stop - start
	if count < 8*max(bl, 4096) {
		n := 0
		h := w.sum(d[start : start+bl])
		for i := start; ; i++ {
			f := h >> fshift
			c[n] = cand{int32(i), h}
			n += int(filter[f>>6] >> (f & 63) & 1)
			if i+1 == stop {
				break
			}
			h = h*rkMul + (t0[d[i+bl]] - out[d[i]])
		}
		return c[:n]
	}
	q := count / 4
	pa, pb, pc, pd := start, start+q, start+2*q, start+3*q
	ha, hb, hc, hd := w.sum(d[pa:pa+bl]), w.sum(d[pb:pb+bl]), w.sum(d[pc:pc+bl]), w.sum(d[pd:pd+bl])
	// Lane k records into c[k*(q+1):], lane d (the longest) last, at the end.
	ca, cb, cc, cd := c[0:q], c[q:2*q], c[2*q:3*q], c[3*q:]
	na, nb, nc, nd := 0, 0, 0, 0
	// The bytes leaving (o) and entering (i) each lane's window, sliced to
	// one length so the compiler drops their bounds checks.
	oa, ob, oc, od := d[pa:pa+q-1], d[pb:pb+q-1], d[pc:pc+q-1], d[pd:pd+q-1]
	ia, ib, ic, id := d[pa+bl:pa+bl+q-1], d[pb+bl:pb+bl+q-1], d[pc+bl:pc+bl+q-1], d[pd+bl:pd+bl+q-1]
	ob, oc, od = ob[:len(oa)], oc[:len(oa)], od[:len(oa)]
	ia, ib, ic, id = ia[:len(oa)], ib[:len(oa)], ic[:len(oa)], id[:len(oa)]
	record := func(j int) {
		fa, fb, fc, fd := ha>>fshift, hb>>fshift, hc>>fshift, hd>>fshift
		ca[na] = cand{int32(pa + j), ha}
		na += int(filter[fa>>6] >> (fa & 63) & 1)
		cb[nb] = cand{int32(pb + j), hb}
		nb += int(filter[fb>>6] >> (fb & 63) & 1)
		cc[nc] = cand{int32(pc + j), hc}
		nc += int(filter[fc>>6] >> (fc & 63) & 1)
		cd[nd] = cand{int32(pd + j), hd}
		nd += int(filter[fd>>6] >> (fd & 63) & 1)
	}
	for j := range oa {
		record(j)
		ha = ha*rkMul + (t0[ia[j]] - out[oa[j]])
		hb = hb*rkMul + (t0[ib[j]] - out[ob[j]])
		hc = hc*rkMul + (t0[ic[j]] - out[oc[j]])
		hd = hd*rkMul + (t0[id[j]] - out[od[j]])
	}
	record(q - 1)
	for i := pd + q - 1; i+1 < stop; i++ { // the rest of lane d
		hd = hd*rkMul + (t0[d[i+bl]] - out[d[i]])
		f := hd >> fshift
		cd[nd] = cand{int32(i + 1), hd}
		nd += int(filter[f>>6] >> (f & 63) & 1)
	}
	// Gather the lanes' candidates in order.
	n := na
	n += copy(c[n:], cb[:nb])
	n += copy(c[n:], cc[:nc])
	n += copy(c[n:], cd[:nd])
	return c[:n]
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
