package archive

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// A backup reads every file once, and most of them are not read again for
// a long time: left in the page cache they would push out what the host's
// services need. So a file none of whose pages were cached before the
// backup read it is dropped from the cache after (POSIX_FADV_DONTNEED);
// a file that had cached pages is left alone, since something else uses
// it.

// notCached reports whether no page of the open file fd (size bytes) is in
// the page cache. It says false when it cannot tell: the cache is then
// left as the read leaves it.
func notCached(fd int, size int64) bool {
	if size <= 0 {
		return false
	}
	var cs unix.Cachestat_t
	err := unix.Cachestat(uint(fd), &unix.CachestatRange{}, &cs, 0) // Len 0: to the end
	if err == nil {
		return cs.Cache == 0
	}
	if err != unix.ENOSYS {
		return false // a filesystem without a page cache (e.g. hugetlbfs)
	}
	n, err := mincorePages(fd, size)
	return err == nil && n == 0
}

// dropCache drops the clean cached pages of the open file fd (dirty ones
// are written back first, as the kernel decides).
func dropCache(fd int) {
	unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
}

// mincoreWindow bounds one mapping of mincorePages: the vector it fills
// takes one byte per page (256 KiB for a GiB).
const mincoreWindow = 1 << 30

// mincorePages counts the cached pages of fd with mincore(2) over a
// read-only mapping, a window at a time (kernels before 6.5 have no
// cachestat). It stops at the first cached page.
func mincorePages(fd int, size int64) (int64, error) {
	page := int64(unix.Getpagesize())
	vec := make([]byte, min(size, mincoreWindow)/page+1)
	for off := int64(0); off < size; off += mincoreWindow {
		n := min(size-off, mincoreWindow)
		m, err := unix.Mmap(fd, off, int(n), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return 0, err
		}
		v := vec[:(n+page-1)/page]
		_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&v[0])))
		unix.Munmap(m)
		if e != 0 {
			return 0, e
		}
		for _, b := range v {
			if b&1 != 0 {
				return 1, nil
			}
		}
	}
	return 0, nil
}
