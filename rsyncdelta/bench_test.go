package rsyncdelta

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// The benchmarks run on 64 MiB of random data at 8 KiB blocks (the block
// length BlockLen picks for 1 GiB). bench/rsyncdelta.sh compares the
// command with rdiff on 1 GiB files.
const benchSize = 64 << 20
const benchBlockLen = 8 << 10

var benchData = sync.OnceValues(func() (old, edited []byte) {
	src := rand.NewChaCha8([32]byte{1})
	old = make([]byte, benchSize)
	src.Read(old)
	edited = scatterEdits(src, old, 0.01)
	return old, edited
})

// scatterEdits returns a copy of b where about frac of the bytes are
// overwritten, inserted or deleted, in edits of 1..20000 bytes (like the
// research data set: about 1000 edits per GiB).
func scatterEdits(src *rand.ChaCha8, b []byte, frac float64) []byte {
	rng := rand.New(src)
	edits := max(1, int(float64(len(b))*frac/10000))
	out := make([]byte, 0, len(b)+len(b)/50)
	step := len(b) / edits
	for i := 0; i < len(b); {
		next := min(len(b), i+step/2+rng.IntN(step))
		out = append(out, b[i:next]...)
		i = next
		if i >= len(b) {
			break
		}
		n := 1 + rng.IntN(20000)
		lit := make([]byte, n)
		src.Read(lit)
		switch rng.IntN(3) {
		case 0: // overwrite
			out = append(out, lit...)
			i = min(len(b), i+n)
		case 1: // insert
			out = append(out, lit...)
		default: // delete
			i = min(len(b), i+n)
		}
	}
	return out
}

func benchSig(b testing.TB, old []byte) *Signature {
	b.Helper()
	return signature(b, testKey(), old, benchBlockLen)
}

func BenchmarkSignature(b *testing.B) {
	old, _ := benchData()
	b.SetBytes(int64(len(old)))
	for b.Loop() {
		sw, err := NewSignatureWriter(io.Discard, testKey(), benchBlockLen, int64(len(old)))
		if err != nil {
			b.Fatal(err)
		}
		for p := old; len(p) > 0; p = p[min(len(p), 256<<10):] {
			sw.Write(p[:min(len(p), 256<<10)])
		}
		if err := sw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDelta(b *testing.B, new []byte) {
	old, _ := benchData()
	sig := benchSig(b, old)
	b.SetBytes(int64(len(new)))
	var st DeltaStats
	for b.Loop() {
		var err error
		st, err = Delta(sig, bytes.NewReader(new), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.DeltaBytes), "delta-bytes")
}

func BenchmarkDeltaUnchanged(b *testing.B) {
	old, _ := benchData()
	benchDelta(b, old)
}

func BenchmarkDeltaEdited(b *testing.B) {
	_, edited := benchData()
	benchDelta(b, edited)
}

func BenchmarkDeltaNoMatch(b *testing.B) {
	other := make([]byte, benchSize)
	rand.NewChaCha8([32]byte{2}).Read(other)
	benchDelta(b, other)
}

func BenchmarkPatch(b *testing.B) {
	old, edited := benchData()
	sig := benchSig(b, old)
	var d bytes.Buffer
	if _, err := Delta(sig, bytes.NewReader(edited), &d); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(edited)))
	for b.Loop() {
		if err := Patch(bytes.NewReader(old), bytes.NewReader(d.Bytes()), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
