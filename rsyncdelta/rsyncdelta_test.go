package rsyncdelta

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func TestBlockLen(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want int
	}{
		{-1, DefaultBlockLen},
		{0, 1 << 10},
		{1, 1 << 10},
		{1 << 20, 1 << 10},
		{16 << 20, 1 << 10},
		{32 << 20, 2 << 10},
		{64<<20 - 1, 2 << 10},
		{64 << 20, 8 << 10},
		{100 << 20, 8 << 10},
		{1 << 30, 8 << 10},
		{16 << 30, 32 << 10},
		{1 << 40, 64 << 10},
		{1 << 62, 64 << 10},
	} {
		if got := BlockLen(tc.size); got != tc.want {
			t.Errorf("BlockLen(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestISqrt(t *testing.T) {
	for _, x := range []uint64{0, 1, 2, 3, 4, 15, 16, 17, 1 << 30, 1<<62 + 12345, 1<<64 - 1} {
		r := isqrt(x)
		if r*r > x || (r+1)*(r+1) <= x && r+1 != 1<<32 {
			t.Errorf("isqrt(%d) = %d", x, r)
		}
	}
}

func TestKeyID(t *testing.T) {
	a, b := KeyID(testKey()), KeyID(bytes.Repeat([]byte{1}, KeySize))
	if a == b || a != KeyID(testKey()) {
		t.Fatalf("key ids %x %x", a, b)
	}
}

// TestWeakRolls checks that rolling the weak sum gives the sum of the window.
func TestWeakRolls(t *testing.T) {
	data := []byte(strings.Repeat("rolling sums must roll; ", 100))
	for _, bl := range []int{1, 7, 8, 64, 333} {
		k := deriveKeys(testKey(), [16]byte{9}, bl)
		h := k.weak.sum(data[:bl])
		for i := 0; i+bl < len(data); i++ {
			h = k.weak.roll(h, data[i], data[i+bl])
			if want := k.weak.sum(data[i+1 : i+1+bl]); h != want {
				t.Fatalf("block %d: rolled sum at %d is %x, want %x", bl, i+1, h, want)
			}
		}
	}
}

func encodeSig(t testing.TB, key, basis []byte, blockLen int, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw, err := NewSignatureWriter(&buf, key, blockLen, size)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes exercise the batching.
	for p := basis; len(p) > 0; {
		n := min(len(p), 1+len(p)/3)
		if _, err := sw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSignatureRoundTrip(t *testing.T) {
	key := testKey()
	basis := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
	for _, tc := range []struct {
		size, blockLen int
	}{{0, 1024}, {1, 64}, {1000, 64}, {1024, 1024}, {1025, 1024}, {len(basis), 0}, {len(basis), 3 << 20 / 4}} {
		b := basis[:tc.size]
		for _, declared := range []int64{int64(tc.size), -1} {
			enc := encodeSig(t, key, b, tc.blockLen, declared)
			bl := tc.blockLen
			if bl == 0 {
				bl = BlockLen(declared)
			}
			if int64(len(enc)) != SignatureSize(int64(tc.size), bl) {
				t.Errorf("size %d: encoded %d bytes, SignatureSize %d", tc.size, len(enc), SignatureSize(int64(tc.size), bl))
			}
			// Two signatures back to back: each read takes exactly its own bytes.
			r := bytes.NewReader(append(bytes.Clone(enc), enc...))
			for range 2 {
				s, err := ReadSignature(r, key)
				if err != nil {
					t.Fatalf("size %d: %v", tc.size, err)
				}
				if s.Size() != int64(tc.size) || s.BlockLen() != bl || s.Blocks() != int(blockCount(int64(tc.size), bl)) {
					t.Fatalf("size %d: read size %d, block length %d, %d blocks", tc.size, s.Size(), s.BlockLen(), s.Blocks())
				}
			}
			if r.Len() != 0 {
				t.Fatalf("%d bytes left over", r.Len())
			}
		}
	}
}

func TestSignatureErrors(t *testing.T) {
	key := testKey()
	basis := bytes.Repeat([]byte("abc"), 1000)
	good := encodeSig(t, key, basis, 256, int64(len(basis)))

	if _, err := ReadSignature(bytes.NewReader(good), bytes.Repeat([]byte{7}, KeySize)); !errors.Is(err, ErrWrongKey) {
		t.Errorf("wrong key: got %v", err)
	}
	if _, err := ReadSignature(bytes.NewReader(good), key[:16]); err == nil {
		t.Error("short key accepted")
	}
	// Every single-bit flip and every truncation is an error.
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		if _, err := ReadSignature(bytes.NewReader(bad), key); err == nil {
			t.Fatalf("bit flip at byte %d accepted", i)
		}
	}
	for n := range len(good) {
		if _, err := ReadSignature(bytes.NewReader(good[:n]), key); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}

	// The writer checks the declared size.
	for _, tc := range []struct {
		name     string
		declared int64
		write    int
	}{{"short", 100, 99}, {"long", 100, 101}} {
		sw, err := NewSignatureWriter(io.Discard, key, 64, tc.declared)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := sw.Write(make([]byte, tc.write))
		if cerr := sw.Close(); werr == nil && cerr == nil {
			t.Errorf("%s: %d bytes written for a declared %d accepted", tc.name, tc.write, tc.declared)
		}
	}
	for _, bl := range []int{1, MinBlockLen - 1, MaxBlockLen + 1} {
		if _, err := NewSignatureWriter(io.Discard, key, bl, 10); err == nil {
			t.Errorf("block length %d accepted", bl)
		}
	}
}

// TestHeaderChecks builds headers with one bad field each; all must be
// rejected before the body is read.
func TestHeaderChecks(t *testing.T) {
	id := KeyID(testKey())
	mk := func(f func(b []byte)) []byte {
		b := make([]byte, sigHeaderLen)
		putHeader(b, 1024, SumLen, 10_000, id, [16]byte{})
		f(b)
		return b
	}
	for name, hdr := range map[string][]byte{
		"magic":          mk(func(b []byte) { b[0] = 'X' }),
		"version":        mk(func(b []byte) { b[4] = 2 }),
		"mac":            mk(func(b []byte) { b[5] = 9 }),
		"weak":           mk(func(b []byte) { b[6] = 9 }),
		"sum length low": mk(func(b []byte) { b[7] = 4 }),
		"sum length big": mk(func(b []byte) { b[7] = 200 }),
		"block zero":     mk(func(b []byte) { clear(b[8:12]) }),
		"block huge":     mk(func(b []byte) { b[8] = 0x10 }),
		"count":          mk(func(b []byte) { b[27]++ }),
		"count huge":     mk(func(b []byte) { b[20] = 1; b[12] = 1 }),
		"reserved":       mk(func(b []byte) { b[60] = 1 }),
	} {
		_, err := ReadSignature(bytes.NewReader(hdr), testKey())
		if err == nil || strings.Contains(err.Error(), "blocks: unexpected EOF") {
			t.Errorf("%s: got %v, want a header error", name, err)
		}
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	key := testKey()
	for _, p := range corpus(t) {
		t.Run(p.name, func(t *testing.T) {
			sig := signature(t, key, p.old, 0)
			d, _ := delta(t, sig, p.new)
			var out bytes.Buffer
			if err := Patch(bytes.NewReader(p.old), bytes.NewReader(d), &out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), p.new) {
				t.Fatal("patched output differs from the new file")
			}
		})
	}
}

// TestDeltaMemory checks that a delta's buffers do not grow with the new
// file: 256 MiB of input through a delta allocates a few MiB.
func TestDeltaMemory(t *testing.T) {
	if testing.Short() {
		// Not a missing component: 256 MiB through a delta is slow for -short.
		t.Skip("short")
	}
	sig := signature(t, testKey(), make([]byte, 1<<20), 4096)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if _, err := Delta(sig, io.LimitReader(zeroReader{}, 256<<20), io.Discard); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 32<<20 {
		t.Fatalf("a 256 MiB delta allocated %d MiB", grew>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// failWriter fails once more than n bytes have been written to it.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestSignatureWriteErrors(t *testing.T) {
	basis := make([]byte, 5<<20)
	for _, failAfter := range []int{0, 100, 30_000} {
		sw, err := NewSignatureWriter(&failWriter{failAfter}, testKey(), 1024, int64(len(basis)))
		if err != nil {
			if failAfter == 0 {
				continue // the header write failed
			}
			t.Fatal(err)
		}
		var werr error
		for p := basis; len(p) > 0 && werr == nil; p = p[64<<10:] {
			_, werr = sw.Write(p[:64<<10])
		}
		if cerr := sw.Close(); cerr == nil || !strings.Contains(cerr.Error(), "disk full") {
			t.Errorf("fail after %d: Close = %v (Write = %v)", failAfter, cerr, werr)
		}
	}
}

// TestSmallFilesAllocateLittle checks that signing and deltas of small files
// do not allocate the buffers meant for large ones (a backup signs every
// file).
func TestSmallFilesAllocateLittle(t *testing.T) {
	key := testKey()
	old := bytes.Repeat([]byte("small file "), 300)
	sig := signature(t, key, old, 0)
	sigAllocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sw, _ := NewSignatureWriter(io.Discard, key, 0, int64(len(old)))
			sw.Write(old)
			sw.Close()
		}
	})
	deltaAllocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Delta(sig, bytes.NewReader(old), io.Discard)
		}
	})
	if n := sigAllocs.AllocedBytesPerOp(); n > 128<<10 {
		t.Errorf("signature of a %d-byte file allocates %d bytes", len(old), n)
	}
	if n := deltaAllocs.AllocedBytesPerOp(); n > 512<<10 {
		t.Errorf("delta of a %d-byte file allocates %d bytes", len(old), n)
	}
	t.Logf("signature %d B/op, delta %d B/op", sigAllocs.AllocedBytesPerOp(), deltaAllocs.AllocedBytesPerOp())
}

// TestSignatureWriteSizes mixes small writes (gathered and signed on the
// writer's goroutine) with writes of whole batches (signed in place): the
// signature must describe the basis exactly, so its delta is one COPY.
func TestSignatureWriteSizes(t *testing.T) {
	basis := make([]byte, 7<<20+123)
	rand.NewChaCha8([32]byte{8}).Read(basis)
	for _, sizes := range [][]int{
		{100 << 10, 3 << 20, 700 << 10, 1 << 20},
		{1 << 20, 1 << 20, 5, 2 << 20},
		{4 << 20},
	} {
		var enc bytes.Buffer
		sw, err := NewSignatureWriter(&enc, testKey(), 4096, int64(len(basis)))
		if err != nil {
			t.Fatal(err)
		}
		p := basis
		for _, n := range sizes {
			if _, err := sw.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if _, err := sw.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		sig, err := ReadSignature(&enc, testKey())
		if err != nil {
			t.Fatal(err)
		}
		d, st := delta(t, sig, basis)
		if len(d) != 11 || st.CopyBytes != int64(len(basis)) {
			t.Errorf("writes %v: delta of the basis itself is %d bytes (%+v), want one COPY", sizes, len(d), st)
		}
	}
}
