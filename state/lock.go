package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is what Lock's error wraps when another process holds the lock.
var ErrLocked = errors.New("another backtory run holds the lock")

// Lock makes sure only one run at a time works with a state directory: it
// takes an exclusive flock on <root>/lock (creating the directory 0700 if
// missing) and writes this process's PID into the file. When another
// process holds the lock the error wraps ErrLocked and names that process.
//
// A lock left by a run that died (crash, kill -9, power loss) is taken over
// without any check: flock locks belong to the open file, and the kernel
// drops them when the last descriptor closes, which happens when the
// process dies. So a lock file that exists but that no live process has
// locked is just a file; its stale PID is overwritten. For the same reason
// the file is never removed: removing it while another process waits to
// open it would let two runs lock two different files.
//
// The descriptor is close-on-exec (os.OpenFile sets O_CLOEXEC), so hooks
// and their background processes never inherit the lock.
//
// release truncates the PID and unlocks; call it once, when the run ends.
func (d *Dir) Lock() (release func(), err error) {
	if err := os.MkdirAll(d.root, 0o700); err != nil {
		return nil, fmt.Errorf("create state_dir: %w", err)
	}
	path := filepath.Join(d.root, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if pid := holderPID(path); pid > 0 {
			return nil, lockedError(fmt.Sprintf("another backtory run (pid %d) holds the lock %s; wait for it to finish", pid, path))
		}
		return nil, lockedError(fmt.Sprintf("another backtory run holds the lock %s; wait for it to finish", path))
	}
	if err := writePID(f); err != nil {
		f.Close() // unlocks
		return nil, fmt.Errorf("write pid to lock %s: %w", path, err)
	}
	return func() {
		_ = f.Truncate(0) // while still locked: nobody reads our PID after we are gone
		f.Close()
	}, nil
}

// lockedError is ErrLocked with a message that names the lock and holder.
type lockedError string

func (e lockedError) Error() string { return string(e) }
func (e lockedError) Unwrap() error { return ErrLocked }

// flock takes an exclusive lock on f without waiting, retrying on EINTR.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holderPID reads the PID the holder wrote, or 0. A holder that has just
// taken the lock may not have written it yet, so it looks a few times.
func holderPID(path string) int {
	for range 5 {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}
