package archive_test

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/internal/testenv"
)

// TestPageCacheLeftAsFound backs up a file that has no page cached and one
// that is cached whole, then takes a differential that must read both
// again (their ctime moved): fincore(1) must find the first still not
// cached and the second still cached, after each backup.
func TestPageCacheLeftAsFound(t *testing.T) {
	fincore := testenv.NeedTool(t, "fincore")
	r := newTestRepo(t, nil)
	const size = 8 << 20
	pages := int64(size / os.Getpagesize())
	cold, warm := filepath.Join(r.src, "cold.bin"), filepath.Join(r.src, "warm.bin")
	for _, p := range []string{cold, warm} {
		data := make([]byte, size)
		rand.Read(data)
		writeSynced(t, p, data)
	}
	cached := func(p string) int64 {
		t.Helper()
		out, err := exec.Command(fincore, "--bytes", "--noheadings", "--output", "PAGES", p).Output()
		if err != nil {
			t.Fatalf("fincore %s: %v", p, err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			t.Fatalf("fincore %s: %q", p, out)
		}
		return n
	}
	prepare := func() {
		t.Helper()
		drop(t, cold)
		if _, err := os.ReadFile(warm); err != nil {
			t.Fatal(err)
		}
		if n := cached(cold); n != 0 {
			testenv.Missing(t, "a filesystem whose page cache POSIX_FADV_DONTNEED drops (not tmpfs)",
				"run the tests with TMPDIR on a disk filesystem")
		}
		if n := cached(warm); n != pages {
			t.Fatalf("%d of %d pages of the warm file cached before the backup", n, pages)
		}
	}
	check := func(when string) {
		t.Helper()
		if n := cached(cold); n != 0 {
			t.Errorf("after the %s: %d of %d pages of the file that was not cached are cached", when, n, pages)
		}
		if n := cached(warm); n != pages {
			t.Errorf("after the %s: %d of %d pages of the cached file are cached", when, n, pages)
		}
	}
	prepare()
	full := r.backup("")
	check("full")
	for _, p := range []string{cold, warm} {
		// A new ctime, same content: the differential reads and hashes it.
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prepare()
	r.backup(full.ID)
	check("differential")
}

// writeSynced writes data to p and waits until it is on disk: only clean
// pages can be dropped.
func writeSynced(t *testing.T, p string, data []byte) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// drop evicts p's pages from the page cache.
func drop(t *testing.T, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}
