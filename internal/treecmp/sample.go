package treecmp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/internal/testenv"
)

// SampleOptions choose what BuildSample makes.
type SampleOptions struct {
	// BigSparse is the logical size of one large sparse file (0: none).
	BigSparse int64
}

// BuildSample fills dir with every kind of file a Linux server has:
// regular files of many sizes, sparse files, directories with special
// modes, symlinks (relative, absolute, dangling), hardlinks, a FIFO,
// character and block devices, xattrs in the user, trusted and security
// namespaces, POSIX ACLs (access and default), owners with and without
// names, setuid/setgid/sticky bits, nanosecond mtimes, names that are not
// UTF-8 or hold newlines, and a very long path. Devices, foreign owners
// and trusted xattrs need root; without root they are left out, or, under
// BACKTORY_TEST_STRICT (testenv), BuildSample fails.
func BuildSample(dir string, opt SampleOptions) error {
	root := os.Geteuid() == 0
	if !root && testenv.Strict() {
		return errors.New("build sample: root is missing: run the tests as root (devices, foreign owners and trusted xattrs)")
	}
	rng := mrand.New(mrand.NewSource(1))
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("build sample: %v", r)
			}
		}()
		p := func(rel string) string { return filepath.Join(dir, rel) }
		write := func(rel string, data []byte, mode os.FileMode) {
			must(os.MkdirAll(filepath.Dir(p(rel)), 0o755))
			must(os.WriteFile(p(rel), data, mode))
			must(os.Chmod(p(rel), mode))
		}
		random := func(n int) []byte {
			b := make([]byte, n)
			rand.Read(b)
			return b
		}
		text := func(n int) []byte {
			words := []string{"backup ", "restore ", "server ", "disk ", "zfs ", "lvm ", "\n"}
			var b strings.Builder
			for b.Len() < n {
				b.WriteString(words[rng.Intn(len(words))])
			}
			return []byte(b.String()[:n])
		}
		write("empty", nil, 0o644)
		write("tiny", []byte("x"), 0o600)
		write("etc/hosts", []byte("127.0.0.1 localhost\n"), 0o644)
		write("etc/text.conf", text(100000), 0o640)
		write("data/random.bin", random(3<<20+123), 0o644)
		write("data/block-edge", random(512*3), 0o644)
		write("bin/setuid", []byte("#!/bin/sh\n"), 0o4755)
		write("bin/setgid", []byte("#!/bin/sh\n"), 0o2755)
		must(os.MkdirAll(p("tmp"), 0o755))
		must(os.Chmod(p("tmp"), 0o1777))
		must(os.MkdirAll(p("private"), 0o700))
		must(os.Chmod(p("private"), 0o700))
		write("private/secret", []byte("s3cret\n"), 0o400)
		must(os.MkdirAll(p("emptydir"), 0o755))

		// Sparse files: holes at the start, middle and end.
		sparse := func(rel string, size int64, at ...int64) {
			f, err := os.Create(p(rel))
			must(err)
			for _, off := range at {
				_, err := f.WriteAt(random(5000), off)
				must(err)
			}
			must(f.Truncate(size))
			must(f.Close())
		}
		sparse("data/sparse", 64<<20, 1<<20, 40<<20)
		sparse("data/sparse-tail-data", 10<<20, 10<<20-5000)
		if opt.BigSparse > 0 {
			sparse("data/big-sparse", opt.BigSparse, 0, opt.BigSparse/2, opt.BigSparse-5000)
		}

		// Links.
		must(os.Symlink("../etc/hosts", p("data/relative-link")))
		must(os.Symlink("/etc/hostname", p("data/absolute-link")))
		must(os.Symlink("does/not/exist", p("data/dangling-link")))
		write("links/a", []byte("linked content\n"), 0o644)
		must(os.Link(p("links/a"), p("links/b")))
		must(os.MkdirAll(p("links/z"), 0o755))
		must(os.Link(p("links/a"), p("links/z/c")))
	}()
	if err != nil {
		return err
	}
	return buildRest(dir, root, opt)
}

// buildRest makes the special files and the metadata.
func buildRest(dir string, root bool, _ SampleOptions) error {
	p := func(rel string) string { return filepath.Join(dir, rel) }
	steps := []func() error{
		func() error { return unix.Mkfifo(p("fifo"), 0o640) },
		func() error { return os.WriteFile(p("name\nwith newline"), []byte("nl\n"), 0o644) },
		func() error { return os.WriteFile(p("latin1-\xe9t\xe9"), []byte("not utf-8\n"), 0o644) },
		func() error { return os.WriteFile(p("utf8-été ☃"), []byte("utf-8\n"), 0o644) },
		func() error {
			long := dir
			for i := 0; i < 12; i++ {
				long = filepath.Join(long, strings.Repeat(fmt.Sprintf("%c", 'a'+i), 200))
			}
			if err := os.MkdirAll(long, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(long, "deep-file"), []byte("deep\n"), 0o644)
		},
		func() error { return unix.Setxattr(p("etc/hosts"), "user.comment", []byte("hello"), 0) },
		func() error { return unix.Setxattr(p("etc/hosts"), "user.binary", []byte{0, 1, 2, 255}, 0) },
		func() error { return unix.Setxattr(p("data"), "user.dir", []byte("on a dir"), 0) },
		func() error {
			return unix.Setxattr(p("etc/text.conf"), "system.posix_acl_access",
				acl(aclEntry{1, 6, aclUndef}, aclEntry{2, 4, 1234}, aclEntry{4, 4, aclUndef}, aclEntry{8, 6, 4321}, aclEntry{0x10, 6, aclUndef}, aclEntry{0x20, 0, aclUndef}), 0)
		},
		func() error {
			return unix.Setxattr(p("data"), "system.posix_acl_default",
				acl(aclEntry{1, 7, aclUndef}, aclEntry{2, 5, 1234}, aclEntry{4, 5, aclUndef}, aclEntry{0x10, 5, aclUndef}, aclEntry{0x20, 5, aclUndef}), 0)
		},
	}
	if root {
		steps = append(steps,
			func() error { return unix.Mknod(p("dev-null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) },
			func() error { return unix.Mknod(p("dev-loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))) },
			func() error { return unix.Setxattr(p("etc/hosts"), "trusted.note", []byte("root only"), 0) },
			func() error { return unix.Setxattr(p("bin/setuid"), "security.test", []byte("sec"), 0) },
			func() error { return os.Lchown(p("etc/text.conf"), 1234, 5678) }, // ids without names
			func() error { return os.Lchown(p("private"), 1, 1) },             // daemon
			func() error { return os.Lchown(p("data/relative-link"), 2, 2) },
			func() error { return os.Chmod(p("bin/setuid"), 0o4755) }, // chown cleared nothing yet, but keep it explicit
		)
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("build sample: %w", err)
		}
	}
	// Nanosecond mtimes on everything, deepest first so directories keep theirs.
	var paths []string
	filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err == nil {
			paths = append(paths, path)
		}
		return nil
	})
	base := time.Date(2024, 2, 29, 12, 34, 56, 0, time.UTC)
	for i := len(paths) - 1; i >= 0; i-- {
		t := base.Add(time.Duration(i)*time.Hour + time.Duration(i*7919+1)*time.Nanosecond)
		ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("build sample: %w", err)
		}
	}
	return nil
}

const aclUndef = 0xffffffff

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// acl encodes a POSIX ACL in the kernel's xattr format (version 2).
func acl(es ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}
