package rsyncdelta

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

type filePair struct {
	name     string
	old, new []byte
}

// corpus returns the file pairs the interop tests run on.
func corpus(t testing.TB) []filePair {
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	base := rnd(300_000)
	blocks := func(b []byte, n int) [][]byte {
		var out [][]byte
		for len(b) > 0 {
			k := min(n, len(b))
			out = append(out, b[:k])
			b = b[k:]
		}
		return out
	}
	shuffled := blocks(base, 1024)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	edited := bytes.Clone(base)
	for range 30 {
		p := rng.IntN(len(edited) - 100)
		copy(edited[p:], rnd(1+rng.IntN(50)))
	}
	scattered := bytes.Clone(base)
	for range 20 {
		p := rng.IntN(len(scattered))
		switch rng.IntN(3) {
		case 0:
			scattered = cat(scattered[:p], rnd(1+rng.IntN(3000)), scattered[p:])
		case 1:
			q := min(len(scattered), p+1+rng.IntN(3000))
			scattered = cat(scattered[:p], scattered[q:])
		default:
			copy(scattered[p:], rnd(1+rng.IntN(3000)))
		}
	}
	long := rnd(8 << 20) // runs longer than parallelAfter, broken mid-batch
	longEdited := bytes.Clone(long)
	copy(longEdited[3<<20+12345:], "edit one")
	longEdited = cat(longEdited[:6<<20+777], []byte("inserted"), longEdited[6<<20+777:])
	zeros := make([]byte, 4<<20)
	zerosEdited := bytes.Clone(zeros)
	copy(zerosEdited[1<<20:], rnd(5000))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 20000)
	textEdited := cat(text[:400_000], []byte("a new line\n"), text[400_000:])
	pairs := []filePair{
		{"empty-empty", nil, nil},
		{"empty-1", nil, []byte{7}},
		{"1-empty", []byte{7}, nil},
		{"1-same", []byte{7}, []byte{7}},
		{"1-other", []byte{7}, []byte{8}},
		{"short-same", base[:100], base[:100]},
		{"short-edited", base[:100], cat(base[:50], []byte("x"), base[51:100])},
		{"short-grows", base[:100], base[:5000]},
		{"unchanged", base, base},
		{"appended", base[:200_000], base},
		{"appended-to-unaligned", base[:200_123], base},
		{"truncated", base, base[:150_000]},
		{"truncated-unaligned", base, base[:150_001]},
		{"inserted", base, cat(base[:100_000], []byte("INSERTED"), base[100_000:])},
		{"deleted", base, cat(base[:100_000], base[100_500:])},
		{"prepended", base, cat([]byte("header"), base)},
		{"shuffled-blocks", base, bytes.Join(shuffled, nil)},
		{"in-place-edits", base, edited},
		{"scattered-edits", base, scattered},
		{"long-runs-edited", long, longEdited},
		{"all-zero", zeros, zeros},
		{"all-zero-edited", zeros, zerosEdited},
		{"zero-to-random", zeros[:300_000], base},
		{"random-unrelated", base, rnd(300_000)},
		{"text-line-inserted", text, textEdited},
		{"duplicate-blocks", cat(base[:8192], base[:8192], base[:8192]), cat(base[:8192], base[:8192], base[:8192], base[:8192])},
	}
	for _, bin := range [][2]string{
		{"/usr/local/go/pkg/tool/linux_amd64/vet", "/usr/local/go/pkg/tool/linux_amd64/cover"},
		{"/usr/bin/rdiff", "/usr/bin/cmp"},
	} {
		a, err1 := os.ReadFile(bin[0])
		b, err2 := os.ReadFile(bin[1])
		if err1 != nil || err2 != nil {
			continue
		}
		name := filepath.Base(bin[0]) + "-" + filepath.Base(bin[1])
		pairs = append(pairs, filePair{"binaries-" + name, a, b})
		patched := bytes.Clone(a)
		copy(patched[len(a)/3:], []byte("patched"))
		pairs = append(pairs, filePair{"binary-patched-" + filepath.Base(bin[0]), a, patched})
		grown := cat(a[:len(a)/2], b[:min(len(b), 1000)], a[len(a)/2:len(a)*3/4], a[len(a)*4/5:])
		pairs = append(pairs, filePair{"binary-spliced-" + filepath.Base(bin[0]), a, grown})
	}
	return pairs
}

func testKey() []byte { return bytes.Repeat([]byte{0x42}, KeySize) }

// signature returns our signature of old.
func signature(t testing.TB, key, old []byte, blockLen int) *Signature {
	t.Helper()
	var sig bytes.Buffer
	sw, err := NewSignatureWriter(&sig, key, blockLen, int64(len(old)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Write(old); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := int64(sig.Len()), SignatureSize(int64(len(old)), sw.BlockLen()); got != want {
		t.Fatalf("signature is %d bytes, SignatureSize says %d", got, want)
	}
	s, err := ReadSignature(&sig, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func delta(t testing.TB, sig *Signature, new []byte) ([]byte, DeltaStats) {
	t.Helper()
	var d bytes.Buffer
	st, err := Delta(sig, bytes.NewReader(new), &d)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeltaBytes != int64(d.Len()) || st.LiteralBytes+st.CopyBytes != int64(len(new)) {
		t.Fatalf("stats %+v do not add up: delta %d bytes, new file %d", st, d.Len(), len(new))
	}
	return d.Bytes(), st
}

func TestInteropWithRdiff(t *testing.T) {
	rdiff := testenv.NeedTool(t, "rdiff")
	key := testKey()
	dir := t.TempDir()
	run := func(t *testing.T, args ...string) {
		t.Helper()
		out, err := exec.Command(rdiff, append([]string{"--force"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rdiff %v: %v\n%s", args, err, out)
		}
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, p := range corpus(t) {
		for _, bl := range []int{BlockLen(int64(len(p.old))), 333, 4096} {
			t.Run(fmt.Sprintf("%s/b%d", p.name, bl), func(t *testing.T) {
				oldPath := write("old", p.old)
				sig := signature(t, key, p.old, bl)
				ours, st := delta(t, sig, p.new)

				// rdiff applies our delta.
				deltaPath := write("ours.delta", ours)
				outPath := filepath.Join(dir, "out")
				run(t, "patch", oldPath, deltaPath, outPath)
				if got, _ := os.ReadFile(outPath); !bytes.Equal(got, p.new) {
					t.Fatalf("rdiff patch of our delta: output differs from the new file (%d vs %d bytes)", len(got), len(p.new))
				}
				// We apply our delta.
				var out bytes.Buffer
				if err := Patch(bytes.NewReader(p.old), bytes.NewReader(ours), &out); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), p.new) {
					t.Fatal("our patch of our delta: output differs from the new file")
				}
				// We apply rdiff's delta made at the same block length, and ours is no larger.
				newPath := write("new", p.new)
				sigPath := filepath.Join(dir, "rdiff.sig")
				theirsPath := filepath.Join(dir, "rdiff.delta")
				run(t, "-b", fmt.Sprint(bl), "signature", oldPath, sigPath)
				run(t, "delta", sigPath, newPath, theirsPath)
				theirs, err := os.ReadFile(theirsPath)
				if err != nil {
					t.Fatal(err)
				}
				out.Reset()
				if err := Patch(bytes.NewReader(p.old), bytes.NewReader(theirs), &out); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), p.new) {
					t.Fatal("our patch of rdiff's delta: output differs from the new file")
				}
				// Greedy matchers can part ways on repetitive data (we also
				// match the short last block mid-file, for appended files),
				// so allow one block of difference; in practice ours is
				// smaller, see the benchmark.
				if len(ours) > len(theirs)+bl+16 {
					t.Errorf("our delta is %d bytes, rdiff's %d (%+v)", len(ours), len(theirs), st)
				}
				t.Logf("delta %d bytes (rdiff %d), literal %d, copied %d", len(ours), len(theirs), st.LiteralBytes, st.CopyBytes)
			})
		}
	}
}
