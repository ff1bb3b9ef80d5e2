package snapshot

// Tests against the real storage stacks. ZFS and LVM2 need a kernel with
// their modules: their tests are in provider_vm_test.go, built only with
// the tag vmtest, which test/vm/test.sh sets to run them inside the VM.
// btrfs runs on the host, as root with btrfs and loop devices; without
// them it skips, or fails under BACKTORY_TEST_STRICT.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// bed is one storage stack with a source tree on it.
type bed struct {
	spec Spec
	// snapshots lists the names of this bed's snapshots that start with Prefix.
	snapshots func(t *testing.T) []string
}

// namedBed is a test bed of TestProviders.
type namedBed struct {
	name  string
	setup func(t *testing.T) bed
}

func TestProviders(t *testing.T) {
	beds := append([]namedBed{{"btrfs", setupBtrfs}}, vmBeds...)
	for _, bb := range beds {
		t.Run(bb.name, func(t *testing.T) {
			b := bb.setup(t)
			t.Run("frozen", func(t *testing.T) { testFrozen(t, b) })
			t.Run("sigkill-then-cleanup", func(t *testing.T) { testKilled(t, b, syscall.SIGKILL) })
			t.Run("sigterm-releases", func(t *testing.T) { testKilled(t, b, syscall.SIGTERM) })
			t.Run("cancelled-create", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if _, err := Create(ctx, b.spec, "cancelled"); !errors.Is(err, context.Canceled) {
					t.Errorf("Create with a cancelled context = %v", err)
				}
				if got := b.snapshots(t); len(got) != 0 {
					t.Errorf("snapshots = %q", got)
				}
			})
		})
	}
}

// testFrozen: what is read is the tree at snapshot time; the snapshot is
// gone after Release; Release is idempotent and works after cancellation.
func testFrozen(t *testing.T, b bed) {
	live := b.spec.Path
	writeFile(t, filepath.Join(live, "a"), "before")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Create(ctx, b.spec, "frozen")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	if s.Kind() != b.spec.Kind || !strings.Contains(s.Name(), "backtory-frozen") {
		t.Errorf("Kind, Name = %q, %q", s.Kind(), s.Name())
	}
	if got := b.snapshots(t); len(got) != 1 {
		t.Fatalf("snapshots after Create = %q, want one", got)
	}
	writeFile(t, filepath.Join(live, "a"), "after")
	writeFile(t, filepath.Join(live, "b"), "new")
	syscall.Sync()

	if got := readFile(t, filepath.Join(s.Path(), "a")); got != "before" {
		t.Errorf("a in the snapshot = %q, want %q", got, "before")
	}
	if _, err := os.Stat(filepath.Join(s.Path(), "b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b, written after the snapshot, is in it (stat: %v)", err)
	}
	if err := os.WriteFile(filepath.Join(s.Path(), "c"), nil, 0o644); err == nil {
		t.Errorf("the snapshot is writable")
	}
	if err := s.Verify(ctx); err != nil {
		t.Errorf("Verify: %v", err)
	}
	cancel() // cleanup after Ctrl-C
	if err := s.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := s.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if got := b.snapshots(t); len(got) != 0 {
		t.Fatalf("snapshots after Release = %q", got)
	}
	if _, err := os.Stat(s.Path()); err == nil {
		t.Errorf("%s still readable after Release", s.Path())
	}
	noPrivateMounts(t)
}

// noPrivateMounts checks that no LVM snapshot is still mounted.
func noPrivateMounts(t *testing.T) {
	t.Helper()
	ms, err := mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, ok := within(mountRoot, m.Point); ok {
			t.Errorf("%s is still mounted on %s", m.Source, m.Point)
		}
	}
}

// testKilled runs Create in a child process and kills it with sig. SIGTERM
// must make the child release its snapshot; SIGKILL leaves a stale one that
// CleanupStale removes.
func testKilled(t *testing.T, b bed, sig syscall.Signal) {
	spec, _ := json.Marshal(b.spec)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "BACKTORY_SNAPSHOT_HELPER="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "READY ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if got := b.snapshots(t); len(got) != 1 {
		t.Errorf("snapshots while the helper runs = %q, want one", got)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	werr := cmd.Wait()
	if sig == syscall.SIGKILL {
		if got := b.snapshots(t); len(got) != 1 {
			t.Fatalf("snapshots after SIGKILL = %q, want the stale one", got)
		}
		if err := CleanupStale(context.Background(), b.spec); err != nil {
			t.Fatalf("CleanupStale: %v", err)
		}
	} else if werr != nil {
		t.Fatalf("helper after %v: %v", sig, werr)
	}
	if got := b.snapshots(t); len(got) != 0 {
		t.Fatalf("snapshots at the end = %q", got)
	}
	noPrivateMounts(t)
	if err := CleanupStale(context.Background(), b.spec); err != nil {
		t.Fatalf("CleanupStale with nothing stale: %v", err)
	}
}

// TestHelperProcess is the child of testKilled: a miniature backup run that
// takes a snapshot and releases it on SIGINT/SIGTERM, the way the CLI does.
func TestHelperProcess(t *testing.T) {
	env := os.Getenv("BACKTORY_SNAPSHOT_HELPER")
	if env == "" {
		return // only runs as testKilled's child
	}
	var spec Spec
	if err := json.Unmarshal([]byte(env), &spec); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := Create(ctx, spec, "helper")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Release(ctx); err != nil { // ctx is cancelled by now
			t.Error(err)
		}
	}()
	fmt.Printf("READY %s\n", s.Path())
	<-ctx.Done()
}

// --- setup of the real storage stacks ---

// needTools ends the test (testenv) when a program is missing.
func needTools(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		testenv.NeedTool(t, p)
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setupBtrfs: btrfs on a loop device, subvolume "data", source data/www.
func setupBtrfs(t *testing.T) bed {
	needTools(t, "mkfs.btrfs", "btrfs", "losetup")
	testenv.NeedRoot(t, "btrfs snapshots")
	const vmHint = "the VM test bed (test/vm/test.sh) has it"
	fss, _ := os.ReadFile("/proc/filesystems")
	if !strings.Contains(string(fss), "btrfs") {
		testenv.Missing(t, "btrfs in this kernel", vmHint)
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Missing(t, "a loop device", vmHint)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	sh(t, "truncate", "-s", "256M", img)
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		testenv.Need(t, fmt.Errorf("a loop device (losetup: %v: %s)", err, bytes.TrimSpace(out)), vmHint)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { sh(t, "losetup", "-d", loop) })
	sh(t, "mkfs.btrfs", "-q", "-f", loop)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(loop, mnt, "btrfs", 0, ""); err != nil {
		t.Fatalf("mount btrfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount btrfs: %v", err)
		}
	})
	sub := filepath.Join(mnt, "data")
	sh(t, "btrfs", "subvolume", "create", sub)
	return bed{
		spec: Spec{Kind: KindBtrfs, Path: filepath.Join(sub, "www")},
		snapshots: func(t *testing.T) []string {
			var names []string
			for _, l := range strings.Split(sh(t, "btrfs", "subvolume", "list", "-s", mnt), "\n") {
				if f := strings.Fields(l); len(f) > 0 && strings.Contains(f[len(f)-1], Prefix) {
					names = append(names, f[len(f)-1])
				}
			}
			return names
		},
	}
}
