package state

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "web1") // does not exist yet
	d := New(dir)
	release, err := d.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state_dir: %v, mode %v, want 0700", err, fi.Mode())
	}
	if got := readLock(t, dir); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, want our pid", got)
	}
	// flock locks belong to the open file: a second open in this process conflicts too.
	if _, err := d.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	release()
	if got := readLock(t, dir); got != "" {
		t.Errorf("released lock file holds %q", got)
	}
	release, err = d.Lock()
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	release()
}

func TestLockCannotCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(filepath.Join(file, "state")).Lock()
	if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "create state_dir") {
		t.Fatalf("err %v", err)
	}
}

// TestLockOtherProcess holds the lock in a second process (this test
// binary, re-executed), then kills it and takes the stale lock over.
func TestLockOtherProcess(t *testing.T) {
	dir := t.TempDir()
	for _, death := range []string{"exits", "is killed"} {
		t.Run("holder "+death, func(t *testing.T) {
			holder, stdin, pid := startHolder(t, dir)
			_, err := New(dir).Lock()
			want := fmt.Sprintf("another backtory run (pid %d) holds the lock %s; wait for it to finish", pid, filepath.Join(dir, "lock"))
			if !errors.Is(err, ErrLocked) || err.Error() != want {
				t.Fatalf("err %v, want ErrLocked %q", err, want)
			}
			if death == "exits" {
				stdin.Close() // the holder releases and exits
			} else {
				_ = holder.Process.Kill() // SIGKILL: no release, the PID stays in the file
			}
			_ = holder.Wait()
			if stale := readLock(t, dir); death == "is killed" && stale != strconv.Itoa(pid)+"\n" {
				t.Errorf("a killed holder left %q, want its pid", stale)
			}
			release, err := New(dir).Lock()
			if err != nil {
				t.Fatalf("taking over after the holder %s: %v", death, err)
			}
			if got := readLock(t, dir); got != strconv.Itoa(os.Getpid())+"\n" {
				t.Errorf("lock file holds %q, want our pid", got)
			}
			release()
		})
	}
}

// TestLockFlockCommand checks that the lock is a plain flock on the file,
// as util-linux's flock(1) sees it, both ways.
func TestLockFlockCommand(t *testing.T) {
	flockCmd := testenv.NeedTool(t, "flock")
	dir := t.TempDir()
	release, err := New(dir).Lock()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lock")
	if err := exec.Command(flockCmd, "--nonblock", path, "true").Run(); err == nil {
		t.Error("flock(1) took the lock we hold")
	}
	release()

	// A holder that wrote no PID: the message says so without a number.
	holder := exec.Command(flockCmd, path, "sh", "-c", "echo locked; exec sleep 300")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("flock(1) said %q", line)
	}
	_, err = New(dir).Lock()
	if want := "another backtory run holds the lock " + path + "; wait for it to finish"; !errors.Is(err, ErrLocked) || err.Error() != want {
		t.Errorf("err %v, want %q", err, want)
	}
}

// TestLockHelperProcess is not a test: it is the second process of
// TestLockOtherProcess. It takes the lock in BACKTORY_LOCK_HELPER_DIR,
// says "locked", and holds it until its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("BACKTORY_LOCK_HELPER_DIR")
	if dir == "" {
		return
	}
	release, err := New(dir).Lock()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	release()
	os.Exit(0)
}

// startHolder re-executes this test binary as a lock holder and waits until
// it holds the lock.
func startHolder(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "BACKTORY_LOCK_HELPER_DIR="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("holder said %q", line)
	}
	return cmd, stdin, cmd.Process.Pid
}

func readLock(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
