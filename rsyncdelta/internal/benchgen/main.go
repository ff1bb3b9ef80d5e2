// Command benchgen writes the file pairs bench/rsyncdelta.sh measures:
// old.bin (random), new.bin (old.bin with about 1% of its bytes changed by
// scattered overwrites, inserts and deletes of 1..20000 bytes, about one
// edit per MiB) and rand.bin (random, unrelated to old.bin). It streams,
// so memory stays small whatever the size.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	size := flag.Int64("size", 1<<30, "size of old.bin and rand.bin in bytes")
	dir := flag.String("dir", ".", "where to write the files")
	flag.Parse()
	if err := run(*dir, *size); err != nil {
		fmt.Fprintln(os.Stderr, "benchgen:", err)
		os.Exit(1)
	}
}

func run(dir string, size int64) error {
	old := filepath.Join(dir, "old.bin")
	if err := writeRandom(old, size, 1); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(dir, "rand.bin"), size, 2); err != nil {
		return err
	}
	return writeEdited(old, filepath.Join(dir, "new.bin"), size)
}

func writeRandom(path string, size int64, seed byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{seed}), size)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func writeEdited(oldPath, newPath string, size int64) error {
	in, err := os.Open(oldPath)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.Create(newPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	src := rand.NewChaCha8([32]byte{3})
	rng := rand.New(src)
	edits := max(1, int(size>>20))
	pos := make([]int64, edits)
	for i := range pos {
		pos[i] = rng.Int64N(size)
	}
	sort.Slice(pos, func(i, j int) bool { return pos[i] < pos[j] })
	var at int64 // read offset in old
	for _, p := range pos {
		if p < at {
			continue
		}
		if _, err := io.CopyN(w, in, p-at); err != nil {
			return err
		}
		at = p
		n := int64(1 + rng.IntN(20000))
		kind := rng.IntN(3)
		if kind != 2 { // overwrite or insert: new bytes
			if _, err := io.CopyN(w, src, n); err != nil {
				return err
			}
		}
		if kind != 1 { // overwrite or delete: skip old bytes
			skip := min(n, size-at)
			if _, err := in.Seek(at+skip, io.SeekStart); err != nil {
				return err
			}
			at += skip
		}
	}
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
