package rsyncdelta

import (
	"bytes"
	"encoding/hex"
	"io"
	"testing"
)

// The fuzz targets run their seeds as normal tests; `make fuzz` runs each
// for a few seconds:
//
//	for f in FuzzReadSignature FuzzDeltaReader FuzzPatch FuzzRoundTrip; do go test -run '^$' -fuzz "^$f\$" -fuzztime 10s ./rsyncdelta || exit 1; done

func FuzzReadSignature(f *testing.F) {
	key := testKey()
	for _, n := range []int{0, 1, 100, 5000} {
		basis := bytes.Repeat([]byte{byte(n)}, n)
		sig := encodeSig(f, key, basis, 64, int64(n))
		f.Add(sig)
		f.Add(sig[:len(sig)/2])
	}
	f.Add([]byte("RDK1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSignature(bytes.NewReader(data), key)
		if err != nil {
			return
		}
		// A signature that reads is usable.
		var out bytes.Buffer
		if _, err := Delta(s, bytes.NewReader(data), &out); err != nil {
			t.Fatal(err)
		}
	})
}

func deltaSeeds() [][]byte {
	var seeds [][]byte
	for _, h := range []string{
		"00", "03616263450205" + "00", "4400000000000000016a5400000000000000010000000000000002" + "00",
		"450503450004" + "00", "0178", "55", "4100", "450000", "45050a00", "4d0000",
		"5400000000000000007fffffffffffffff00",
	} {
		b, _ := hex.DecodeString("72730236" + h)
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzDeltaReader(f *testing.F) {
	for _, s := range deltaSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDeltaReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Every command consumes at least one byte, so this ends.
		for range len(data) + 1 {
			op, err := d.Next()
			if err != nil || op.Kind == OpEnd {
				return
			}
			if op.Len <= 0 || op.Pos < 0 || op.Pos+op.Len < op.Pos {
				t.Fatalf("bad op %+v accepted", op)
			}
			if op.Kind == OpLiteral && op.Len%2 == 0 {
				io.Copy(io.Discard, d) // read some literals, skip the others
			}
		}
		t.Fatal("more commands than bytes")
	})
}

func FuzzPatch(f *testing.F) {
	for _, s := range deltaSeeds() {
		f.Add([]byte("0123456789"), s)
	}
	f.Fuzz(func(t *testing.T, basis, delta []byte) {
		// The output is at most the basis times the number of commands.
		cw := &countWriter{}
		if err := Patch(bytes.NewReader(basis), bytes.NewReader(delta), cw); err != nil {
			return
		}
		if cw.n > int64(len(delta))*int64(len(basis)+1) {
			t.Fatalf("%d bytes of output from a %d-byte delta", cw.n, len(delta))
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello world, hello world, hello world"), []byte("hello there world, hello world"), uint16(64))
	f.Add([]byte{}, []byte("x"), uint16(1))
	f.Add(bytes.Repeat([]byte{0}, 1000), bytes.Repeat([]byte{0}, 1500), uint16(100))
	key := testKey()
	f.Fuzz(func(t *testing.T, old, new []byte, bl uint16) {
		blockLen := MinBlockLen + int(bl)%512
		sig := signature(t, key, old, blockLen)
		d, _ := delta(t, sig, new)
		var out bytes.Buffer
		if err := Patch(bytes.NewReader(old), bytes.NewReader(d), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), new) {
			t.Fatalf("round trip differs")
		}
	})
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
