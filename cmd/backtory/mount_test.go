package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/fusefs"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
)

// needFUSE fails or skips (testenv) without /dev/fuse, root or fusermount3.
func needFUSE(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "FUSE mounts")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "/dev/fuse", "load the fuse module")
	}
	testenv.NeedTool(t, "fusermount3")
}

// mountProc is `backtory mount` running in-process until stop.
type mountProc struct {
	dir    string
	cancel context.CancelFunc
	done   chan int
	stderr *bytes.Buffer
}

// startMount runs `backtory mount` and waits until the kernel lists the mount.
func startMount(t testing.TB, args ...string) *mountProc {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	m := &mountProc{dir: dir, cancel: cancel, done: make(chan int, 1), stderr: &bytes.Buffer{}}
	var out bytes.Buffer
	go func() {
		m.done <- run(ctx, append(append([]string{"mount"}, args...), dir), &out, m.stderr)
	}()
	for i := 0; !mounted(t, dir); i++ {
		select {
		case code := <-m.done:
			t.Fatalf("backtory mount exited %d before mounting:\n%s", code, m.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if i > 1200 {
			cancel()
			t.Fatal("backtory mount did not mount in a minute")
		}
	}
	t.Cleanup(func() {
		if mounted(t, dir) {
			cancel()
			<-m.done
			exec.Command("fusermount3", "-u", dir).Run()
		}
	})
	return m
}

// stop interrupts the mount (what SIGINT does) and returns its exit code.
func (m *mountProc) stop(t testing.TB) int {
	t.Helper()
	m.cancel()
	code := <-m.done
	if mounted(t, m.dir) {
		t.Errorf("%s is still mounted after the interrupt", m.dir)
	}
	return code
}

func mounted(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

// TestMount backs up the full fixture (a full, then a differential with a
// delta, a metadata change, a deletion and new files), mounts the remote
// and compares each point in time in the mount with the tree that was
// saved (treecmp and diff -r), copies a set out with cp -a against a
// restore, reads with concurrent readers, asks for holes, and unmounts on
// interrupt; unsealed and sealed.
func TestMount(t *testing.T) {
	needFUSE(t)
	diffTool := testenv.NeedTool(t, "diff")
	for _, name := range []string{"unsealed", "sealed"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := sampleTree(t, 0)
			extra := ""
			if name == "sealed" {
				pub, sec := filepath.Join(dir, "host.pub.asc"), filepath.Join(dir, "host.sec.asc")
				mustRun(t, "key", "generate", "--name", "backtory test", "--public", pub, "--secret", sec)
				extra = "encryption:\n  signing_key: " + sec + "\n  recipients: [" + pub + "]\n"
			}
			cfg := writeConfig(t, dir, src, extra)
			mustRun(t, "backup", "--config", cfg, "--full")
			atFull := filepath.Join(dir, "at-full")
			copyTree(t, src, atFull)
			time.Sleep(1100 * time.Millisecond) // set ids count seconds
			f, err := os.OpenFile(filepath.Join(src, "data/sparse"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("edited in the middle"), 50<<20)
			f.Close()
			os.Chmod(filepath.Join(src, "etc/hosts"), 0o600)
			os.Remove(filepath.Join(src, "tiny"))
			writeTestFile(t, filepath.Join(src, "etc/new.conf"), []byte("new\n"), 0o644)
			mustRun(t, "backup", "--config", cfg, "--diff")
			atDiff := filepath.Join(dir, "at-diff")
			copyTree(t, src, atDiff)
			ids := remoteSetIDs(t, filepath.Join(dir, "remote", "testhost", "root"))
			if len(ids) != 2 || !strings.HasPrefix(ids[1], "diff-") {
				t.Fatalf("sets %v", ids)
			}

			m := startMount(t, "--config", cfg)
			root := filepath.Join(m.dir, "root")
			if l, err := os.Readlink(filepath.Join(root, "latest")); err != nil || l != fusefs.SetDirName(ids[1]) {
				t.Errorf("latest -> %q (%v), want %s", l, err, fusefs.SetDirName(ids[1]))
			}
			for i, want := range []string{atFull, atDiff} {
				got := filepath.Join(root, fusefs.SetDirName(ids[i]))
				assertRestored(t, "mount of "+ids[i], want, got)
				// diff -r names every special file it does not compare;
				// anything else it says is a difference.
				out, err := exec.Command(diffTool, "-r", "--no-dereference", want, got).CombinedOutput()
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					if m := sameKindRe.FindStringSubmatch(l); l != "" && (m == nil || m[1] != m[2]) {
						t.Errorf("diff -r %s: %v: %s", ids[i], err, l)
					}
				}
			}
			// cp -a out of the mount is a restore.
			restored := filepath.Join(dir, "restored")
			mustRun(t, "restore", "--config", cfg, "--set", ids[1], "--to", restored)
			copied := filepath.Join(dir, "copied")
			copyTree(t, filepath.Join(root, "latest")+"/", copied)
			assertRestored(t, "cp -a of the mount", restored, copied)

			// Concurrent readers of the same files.
			var wg sync.WaitGroup
			for i := 0; i < 6; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					p := []string{"data/random.bin", "data/sparse", "etc/text.conf"}[i%3]
					a, b := fileSum(t, filepath.Join(atDiff, p)), fileSum(t, filepath.Join(root, "latest", p))
					if a != b {
						t.Errorf("concurrent read of %s differs", p)
					}
				}(i)
			}
			wg.Wait()

			// Hardlink counts and one inode per group, as in the tree.
			var st, st2 unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, "latest", "links/a"), &st); err != nil || st.Nlink != 3 {
				t.Errorf("links/a: %d links (%v), want 3", st.Nlink, err)
			}
			if err := unix.Lstat(filepath.Join(root, "latest", "links/z/c"), &st2); err != nil || st2.Ino != st.Ino {
				t.Errorf("links/z/c: inode %d (%v), want links/a's %d", st2.Ino, err, st.Ino)
			}

			// Holes: data/sparse has data at 1 MiB and 40 MiB only.
			sf, err := os.Open(filepath.Join(root, "latest", "data/sparse"))
			if err != nil {
				t.Fatal(err)
			}
			if off, err := unix.Seek(int(sf.Fd()), 0, unix.SEEK_DATA); err != nil || off != 1<<20 {
				t.Errorf("SEEK_DATA from 0: %d, %v; want %d", off, err, 1<<20)
			}
			if off, err := unix.Seek(int(sf.Fd()), 1<<20, unix.SEEK_HOLE); err != nil || off != 1<<20+8192 {
				t.Errorf("SEEK_HOLE from 1 MiB: %d, %v; want %d", off, err, 1<<20+8192)
			}
			sf.Close()

			// Read-only.
			if err := os.WriteFile(filepath.Join(root, "latest", "etc/new.conf"), []byte("x"), 0o644); err == nil {
				t.Error("wrote into the mount")
			}
			if code := m.stop(t); code != 0 {
				t.Errorf("mount exited %d after the interrupt:\n%s", code, m.stderr)
			}
			if name == "sealed" {
				if left, _ := filepath.Glob(filepath.Join(dir, "state", "spool", "*", "volumes", "*")); len(left) > 0 {
					t.Errorf("decrypted volumes left after unmount: %v", left)
				}
			}
		})
	}
}

// TestMountMissingVolume: with a volume gone from the remote, its files
// fail with EIO and every other file reads; fusermount -u ends the mount.
func TestMountMissingVolume(t *testing.T) {
	needFUSE(t)
	dir := t.TempDir()
	src := sampleTree(t, 0)
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg, "--full")
	setDir := filepath.Join(dir, "remote", "testhost", "root")
	ids := remoteSetIDs(t, setDir)
	setDir = filepath.Join(setDir, ids[0])
	b, err := remote.NewLocal(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	repo := &archive.Repository{Backend: b, SpoolDir: t.TempDir(), Host: "testhost", Source: "root"}
	s, err := repo.OpenSet(context.Background(), ids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(setDir, "vol-000001.tar.zst")); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, "--config", cfg)
	base := filepath.Join(m.dir, "root", "latest")
	var failed, read int
	for _, p := range []string{"empty", "tiny", "etc/hosts", "etc/text.conf", "data/random.bin", "data/block-edge", "data/sparse", "links/a"} {
		e, _ := s.Lookup(p)
		_, err := os.ReadFile(filepath.Join(base, p))
		switch {
		case e.Volume == 1 && e.Size > 0:
			if !errorsIsEIO(err) {
				t.Errorf("%s (in the missing volume): %v, want EIO", p, err)
			}
			failed++
		case err != nil:
			t.Errorf("%s (volume %d): %v", p, e.Volume, err)
		default:
			read++
		}
	}
	if failed == 0 || read == 0 {
		t.Errorf("%d files failed, %d read: want some of each", failed, read)
	}
	if out, err := exec.Command("fusermount3", "-u", m.dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v\n%s", err, out)
	}
	if code := <-m.done; code != 0 {
		t.Errorf("mount exited %d after fusermount -u:\n%s", code, m.stderr)
	}
}

var sameKindRe = regexp.MustCompile(`^File .* is a (.*) while file .* is a (.*)$`)

func errorsIsEIO(err error) bool {
	var pe *os.PathError
	if e, ok := err.(*os.PathError); ok {
		pe = e
	}
	return pe != nil && pe.Err == unix.EIO
}

func fileSum(t *testing.T, p string) [32]byte {
	f, err := os.Open(p)
	if err != nil {
		t.Error(err)
		return [32]byte{}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Errorf("read %s: %v", p, err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// BenchmarkMountReadAll: find and cat of every file of a set through a
// fresh mount (mounting, reading the table, every file) against a restore
// of the same set. The tree is $BACKTORY_BENCH_TREE, else /usr/include.
// docs/benchmarks.md has the figures.
func BenchmarkMountReadAll(b *testing.B) {
	testenv.NeedRoot(b, "FUSE mounts")
	testenv.NeedTool(b, "fusermount3")
	src := os.Getenv("BACKTORY_BENCH_TREE")
	if src == "" {
		src = "/usr/include"
	}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\nsources:\n  - name: root\n    path: " + src +
		"\nremote:\n  url: file://" + filepath.Join(dir, "remote") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"backup", "--config", cfg, "--full", "-q"}, &out, &errOut); code != 0 {
		b.Fatalf("backup: exit %d\n%s", code, errOut.String())
	}
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			to := filepath.Join(b.TempDir(), "to")
			if code := run(context.Background(), []string{"restore", "--config", cfg, "--to", to, "-q"}, &out, &errOut); code != 0 {
				b.Fatalf("restore: exit %d\n%s", code, errOut.String())
			}
		}
	})
	b.Run("mount-find-cat", func(b *testing.B) {
		buf := make([]byte, 1<<20)
		for b.Loop() {
			m := startMount(b, "--config", cfg, "-q")
			err := filepath.WalkDir(filepath.Join(m.dir, "root", "latest")+"/", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.CopyBuffer(io.Discard, f, buf)
				f.Close()
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			m.stop(b)
		}
	})
}

// TestMountAllHosts: with --all-hosts, each host on the remote is a level
// above its sources.
func TestMountAllHosts(t *testing.T) {
	needFUSE(t)
	dir := t.TempDir()
	srcA, srcB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeTestFile(t, filepath.Join(srcA, "etc/hostname"), []byte("testhost\n"), 0o644)
	writeTestFile(t, filepath.Join(srcB, "etc/hostname"), []byte("other\n"), 0o600)
	cfgA := writeConfig(t, dir, srcA, "")
	cfgB := filepath.Join(dir, "other.yaml")
	raw, _ := os.ReadFile(cfgA)
	body := strings.Replace(strings.Replace(string(raw), "host: testhost", "host: other", 1), srcA, srcB, 1)
	body = strings.Replace(body, filepath.Join(dir, "state"), filepath.Join(dir, "state-other"), 1)
	writeTestFile(t, cfgB, []byte(body), 0o600)
	mustRun(t, "backup", "--config", cfgA)
	mustRun(t, "backup", "--config", cfgB)
	m := startMount(t, "--config", cfgA, "--all-hosts")
	for host, src := range map[string]string{"testhost": srcA, "other": srcB} {
		assertRestored(t, "--all-hosts "+host, src, filepath.Join(m.dir, host, "root", "latest")+"/")
	}
	if code := m.stop(t); code != 0 {
		t.Errorf("mount exited %d:\n%s", code, m.stderr)
	}
}

// TestMountSignals: the built binary unmounts and exits 0 on SIGINT and on
// SIGTERM.
func TestMountSignals(t *testing.T) {
	needFUSE(t)
	e := sigEnv(t, sigBuild(t), "")
	e.run(t, exitOK, "backup")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		mnt := filepath.Join(t.TempDir(), "mnt")
		os.Mkdir(mnt, 0o755)
		p := e.start(t, "mount", mnt)
		for i := 0; !mounted(t, mnt); i++ {
			select {
			case <-p.done:
				t.Fatalf("backtory mount ended before mounting: %s", p.stderr)
			case <-time.After(50 * time.Millisecond):
			}
			if i > 1200 {
				t.Fatal("backtory mount did not mount in a minute")
			}
		}
		got, err := os.ReadFile(filepath.Join(mnt, "root", "latest", "etc", "f05"))
		if want, _ := os.ReadFile(filepath.Join(e.src, "etc", "f05")); err != nil || !bytes.Equal(got, want) {
			t.Errorf("read through the mount: %v", err)
		}
		p.signal(t, sig)
		if code, stderr := p.wait(t); code != exitOK {
			t.Errorf("%v: exit %d, want 0: %s", sig, code, stderr)
		}
		if mounted(t, mnt) {
			t.Errorf("%v: %s is still mounted", sig, mnt)
			exec.Command("fusermount3", "-u", mnt).Run()
		}
	}
}
