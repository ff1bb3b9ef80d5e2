package rsyncdelta

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPatchFiles patches file to file, the copy_file_range path, and
// checks it against the same patch through plain readers and writers.
func TestPatchFiles(t *testing.T) {
	dir := t.TempDir()
	old := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{4}).Read(old)
	basisPath := filepath.Join(dir, "basis")
	if err := os.WriteFile(basisPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	new := append(append(bytes.Clone(old[100_000:900_000]), "middle"...), old[:200_000]...)
	sig := signature(t, testKey(), old, 4096)
	d, _ := delta(t, sig, new)

	patchFile := func(d []byte) ([]byte, error) {
		basis, err := os.Open(basisPath)
		if err != nil {
			t.Fatal(err)
		}
		defer basis.Close()
		out, err := os.Create(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		perr := Patch(basis, bytes.NewReader(d), out)
		got, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		return got, perr
	}
	got, err := patchFile(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, new) {
		t.Fatal("file-to-file patch differs from the new file")
	}

	// A long copy that runs past the end of the basis fails in the kernel
	// path too.
	// COPY_N4_N4 pos 0xf0000 len 0x20000: starts inside the 1 MiB basis.
	bad, _ := hex.DecodeString("72730236" + "0178" + "4f" + "000f0000" + "00020000" + "00")
	if _, err := patchFile(bad); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Fatalf("copy past the end: %v", err)
	}
}
