package archive

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/internal/testenv"
)

// TestNotCachedBothWays checks the two probes (cachestat, and mincore for
// kernels without it) agree on a file dropped from the cache, one read
// whole and one with a single cached page past the first mincore window.
func TestNotCachedBothWays(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	const size = mincoreWindow + 1<<20 // a second window
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	fd := int(f.Fd())
	unix.Fsync(fd)
	dropCache(fd)
	if !notCached(fd, size) {
		testenv.Missing(t, "a filesystem whose page cache POSIX_FADV_DONTNEED drops (not tmpfs)",
			"run the tests with TMPDIR on a disk filesystem")
	}
	if n, err := mincorePages(fd, size); err != nil || n != 0 {
		t.Fatalf("mincorePages after a drop = %d, %v", n, err)
	}
	if _, err := f.ReadAt(make([]byte, 1), size-10); err != nil {
		t.Fatal(err)
	}
	if notCached(fd, size) {
		t.Error("notCached after reading a page")
	}
	if n, err := mincorePages(fd, size); err != nil || n != 1 {
		t.Errorf("mincorePages after reading a page = %d, %v", n, err)
	}
	if notCached(fd, 0) {
		t.Error("notCached says an empty file is to be dropped")
	}
}
