package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
)

// The hostile-local-user suite: an unprivileged user (nobody, in a child
// process of this test binary that drops to its uid) races a restore into
// a target it owns and a backup of a tree it owns, swapping directories for
// symlinks to a root-only directory, and files for FIFOs and symlinks. The
// seeds are fixed and every run is bounded in time. Nothing outside the
// target is written, nothing outside the source is archived, no run hangs.

const (
	attackEnv = "BACKTORY_TEST_ATTACK" // "dirs" or "files": what the child swaps
	nobody    = 65534
	// raceFor bounds each race: the attacker stops after it, and every
	// restore or backup started during it must end within raceDeadline.
	raceFor      = 3 * time.Second
	raceDeadline = 20 * time.Second
)

// TestAttacker is the child process of the race tests; it does nothing
// unless started by them.
func TestAttacker(t *testing.T) {
	mode := os.Getenv(attackEnv)
	if mode == "" {
		return
	}
	seed, _ := strconv.ParseInt(os.Getenv("BACKTORY_TEST_SEED"), 10, 64)
	attack(mode, os.Getenv("BACKTORY_TEST_DIR"), os.Getenv("BACKTORY_TEST_OUTSIDE"), seed, raceFor)
	os.Exit(0)
}

// attack swaps, until d has passed, random entries under dir: a directory
// for a symlink to outside, or (mode "files") a file for a FIFO or a
// symlink to outside/secret; each swap is undone after a random pause.
func attack(mode, dir, outside string, seed int64, d time.Duration) {
	rng := rand.New(rand.NewSource(seed))
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		parent := dir
		// Go down zero to two levels, through real directories only.
		for depth := rng.Intn(3); depth > 0; depth-- {
			des, _ := os.ReadDir(parent)
			var dirs []string
			for _, de := range des {
				if de.IsDir() && !strings.HasPrefix(de.Name(), ".") {
					dirs = append(dirs, de.Name())
				}
			}
			if len(dirs) == 0 {
				break
			}
			parent = filepath.Join(parent, dirs[rng.Intn(len(dirs))])
		}
		des, _ := os.ReadDir(parent)
		if len(des) == 0 {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		de := des[rng.Intn(len(des))]
		if strings.HasPrefix(de.Name(), ".") || de.Type()&fs.ModeSymlink != 0 {
			continue
		}
		p := filepath.Join(parent, de.Name())
		hidden := filepath.Join(parent, ".h-"+de.Name())
		if os.Rename(p, hidden) != nil {
			continue
		}
		switch {
		case de.IsDir():
			os.Symlink(outside, p)
		case mode == "files" && rng.Intn(2) == 0:
			unix.Mkfifo(p, 0o666)
		default:
			os.Symlink(filepath.Join(outside, "secret"), p)
		}
		time.Sleep(time.Duration(rng.Intn(100)) * time.Microsecond)
		os.Remove(p)
		os.Rename(hidden, p)
	}
}

// startAttacker starts the child as nobody, attacking dir; the test
// binary is copied into base (which anyone can traverse) for it.
func startAttacker(t *testing.T, base, mode, dir, outside string, seed int64) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(base, "attacker")
	if _, err := os.Stat(bin); err != nil {
		self, err := os.ReadFile("/proc/self/exe")
		if err == nil {
			err = os.WriteFile(bin, self, 0o755)
		}
		if err != nil {
			t.Fatalf("attacker binary: %v", err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestAttacker$")
	cmd.Env = []string{attackEnv + "=" + mode, "BACKTORY_TEST_DIR=" + dir, "BACKTORY_TEST_OUTSIDE=" + outside,
		"BACKTORY_TEST_SEED=" + strconv.FormatInt(seed, 10)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the attacker: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// raceArena makes a root-only directory holding a secret (the place an
// attacker aims at) and a directory owned by nobody, in a parent anyone can
// traverse.
func raceArena(t *testing.T) (base, outside, owned string) {
	t.Helper()
	testenv.NeedRoot(t, "to race as the unprivileged user nobody")
	base, err := os.MkdirTemp("", "backtory-race-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	outside = filepath.Join(base, "rootonly")
	os.Mkdir(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("ROOT-ONLY-CANARY\n"), 0o600)
	owned = filepath.Join(base, "owned")
	os.Mkdir(owned, 0o755)
	os.Chown(owned, nobody, nobody)
	return base, outside, owned
}

// raceTree fills dir with dirs d0..d(n-1), each with s0..s3, each with
// files f00..f(m-1).
func raceTree(t *testing.T, dir string, n, m int) {
	t.Helper()
	for i := range n {
		for j := range 4 {
			sub := filepath.Join(dir, fmt.Sprintf("d%d/s%d", i, j))
			os.MkdirAll(sub, 0o755)
			for k := range m {
				os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d", k)), []byte(strings.Repeat("data ", 50+k)), 0o644)
			}
		}
	}
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, _ error) error { return os.Lchown(p, nobody, nobody) })
}

// describeDir lists what is under dir (names, modes, owners, sizes, times).
func describeDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		var st unix.Stat_t
		unix.Lstat(p, &st)
		fmt.Fprintf(&b, "%s %o %d:%d %d %d\n", p, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Nano())
		return err
	})
	return b.String()
}

func TestRaceRestoreIntoOwnedTarget(t *testing.T) {
	base, outside, owned := raceArena(t)
	src := filepath.Join(base, "src")
	os.Mkdir(src, 0o755)
	raceTree(t, src, 6, 25)
	r := raceRepo(t, base)
	m, err := r.Backup(context.Background(), BackupOptions{SourcePath: src, Root: src, Snapshot: "none", VolumeSize: 1 << 20,
		Compression: Compression{Kind: "none"}, Uploads: 1, Tool: "test", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	before := describeDir(t, outside)
	for i, force := range []bool{false, true, true} {
		target := filepath.Join(owned, "target")
		if !force {
			os.Mkdir(target, 0o755)
			os.Chown(target, nobody, nobody)
		}
		atk := startAttacker(t, base, "dirs", target, outside, int64(i+1))
		warnings := 0
		for n := 0; n < 50 && !processExited(atk); n++ {
			err := bounded(t, "restore", func(ctx context.Context) error {
				_, err := r.Restore(ctx, m, RestoreOptions{Target: target, Force: force || n > 0,
					Warn: func(p, msg string) { warnings++ }})
				return err
			})
			if err != nil {
				t.Logf("restore %d: %v", n, err)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("restore %d: error of several lines: %v", n, err)
			}
		}
		atk.Wait()
		t.Logf("round %d (force=%v): %d warnings", i, force, warnings)
		if after := describeDir(t, outside); after != before {
			t.Fatalf("the root-only directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}
}

// bounded runs f with a context that ends after raceDeadline, and fails
// the test if f was still running then.
func bounded(t *testing.T, what string, f func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), raceDeadline)
	defer cancel()
	err := f(ctx)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("%s did not end within %v", what, raceDeadline)
	}
	return err
}

// processExited reports whether the child has exited (without reaping it).
func processExited(c *exec.Cmd) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

func raceRepo(t *testing.T, base string) *Repository {
	t.Helper()
	b, err := remote.NewLocal(filepath.Join(base, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(base, "spool")
	os.Mkdir(spool, 0o700)
	return &Repository{Backend: b, SpoolDir: spool, Host: "h", Source: "s"}
}

// TestRaceBackupOfOwnedTree backs up a tree nobody owns while nobody swaps
// its directories for symlinks to a root-only directory and its files for
// FIFOs and symlinks: every backup ends, and no set holds a byte or a name
// from outside the source.
func TestRaceBackupOfOwnedTree(t *testing.T) {
	base, outside, owned := raceArena(t)
	src := filepath.Join(owned, "src")
	os.Mkdir(src, 0o755)
	raceTree(t, src, 2, 3)
	r := raceRepo(t, base)
	atk := startAttacker(t, base, "files", src, outside, 42)
	warnings := 0
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for ; n < 2000 && !processExited(atk); n++ {
		clock = clock.Add(time.Hour)
		var m *Manifest
		err := bounded(t, "backup", func(ctx context.Context) (err error) {
			m, err = r.Backup(ctx, BackupOptions{SourcePath: src, Root: src, Snapshot: "none", VolumeSize: 1 << 20,
				Compression: Compression{Kind: "none"}, Uploads: 1, Tool: "test", Started: clock,
				Warn: func(p, msg string) { warnings++ }})
			return err
		})
		if err != nil {
			t.Fatalf("backup %d: %v", n, err)
		}
		setHoldsNothingFrom(t, filepath.Join(base, "remote", SetDir("h", "s", m.ID)))
	}
	atk.Wait()
	t.Logf("%d backups, %d warnings", n, warnings)
}

// setHoldsNothingFrom checks every object of a (plain) set for the
// root-only directory's secret, by content and by name.
func setHoldsNothingFrom(t *testing.T, setDir string) {
	t.Helper()
	des, err := os.ReadDir(setDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		f, err := os.Open(filepath.Join(setDir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if bytes.Contains(b, []byte("ROOT-ONLY-CANARY")) {
			t.Fatalf("%s holds the root-only secret", de.Name())
		}
		if !strings.HasPrefix(de.Name(), "files.jsonl") {
			continue
		}
		table := NewTableReader(bytes.NewReader(b))
		for {
			e, err := table.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", de.Name(), err)
			}
			if filepath.Base(string(e.Path)) == "secret" {
				t.Fatalf("%s lists %s, from the root-only directory", de.Name(), e.Path)
			}
		}
	}
}

// TestOpenEntrySwapped swaps one listed regular file for a FIFO, a device
// and a symlink between the listing and the open, deterministically: each
// is refused at once with "changed while read", never opened for reading.
func TestOpenEntrySwapped(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		swap func(p string) error
	}{
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o644) }},
		{"device", func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))) }},
		{"symlink", func(p string) error { return os.Symlink("/etc/passwd", p) }},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "device" {
				testenv.NeedRoot(t, "to make a device node")
			}
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, []byte("x"), 0o644)
			var lst unix.Stat_t
			unix.Lstat(p, &lst)
			os.Remove(p)
			if err := c.swap(p); err != nil {
				t.Fatal(err)
			}
			dfd, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			defer unix.Close(dfd)
			done := make(chan error, 1)
			go func() {
				h, err := openEntry(dfd, c.name, &lst)
				if err == nil {
					unix.Close(h.fd)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "changed while read") {
					t.Errorf("openEntry: %v, want a changed-while-read refusal", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("openEntry blocked")
			}
		})
	}
}
