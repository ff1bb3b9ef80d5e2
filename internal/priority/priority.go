// Package priority lowers (or raises) the CPU and I/O priority of the
// whole process: the config's nice and ionice settings.
//
// Linux keeps both per thread, and a new thread inherits its creator's, so
// Apply sets them on every thread of the process: the Go runtime's
// threads that exist already, and through them every one it starts later.
package priority

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IO classes of ioprio_set(2).
const (
	ClassRealtime   = 1
	ClassBestEffort = 2
	ClassIdle       = 3
)

// IO is an I/O scheduling class and level (0, the highest, to 7).
type IO struct {
	Class int
	Level int
}

// ParseIO reads an ionice setting: "idle", "best-effort" or "realtime",
// optionally followed by ":LEVEL" (0 to 7; default 4) for the last two.
func ParseIO(s string) (IO, error) {
	name, level, hasLevel := strings.Cut(strings.TrimSpace(s), ":")
	var p IO
	switch name {
	case "idle":
		p.Class = ClassIdle
	case "best-effort":
		p.Class = ClassBestEffort
	case "realtime":
		p.Class = ClassRealtime
	default:
		return IO{}, fmt.Errorf("ionice %q: want idle, best-effort[:LEVEL] or realtime[:LEVEL]", s)
	}
	p.Level = 4
	if hasLevel {
		if p.Class == ClassIdle {
			return IO{}, fmt.Errorf("ionice %q: the idle class has no level", s)
		}
		n, err := strconv.Atoi(level)
		if err != nil || n < 0 || n > 7 {
			return IO{}, fmt.Errorf("ionice %q: the level must be 0 (highest) to 7 (lowest)", s)
		}
		p.Level = n
	}
	return p, nil
}

// CheckNice checks a nice value: -20 (highest priority) to 19 (lowest).
func CheckNice(n int) error {
	if n < -20 || n > 19 {
		return fmt.Errorf("nice %d: want -20 (highest priority) to 19 (lowest)", n)
	}
	return nil
}

// Apply sets the nice value (if nice is not nil) and the I/O priority (if
// io is not nil) of every thread of the process.
func Apply(nice *int, io *IO) error {
	if nice == nil && io == nil {
		return nil
	}
	if nice != nil {
		if err := CheckNice(*nice); err != nil {
			return err
		}
	}
	// A thread may start while the list is read: read it again until a
	// pass finds none that was not set.
	done := map[int]bool{}
	for {
		tids, err := threads()
		if err != nil {
			return err
		}
		fresh := 0
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			fresh++
			if err := applyTo(tid, nice, io); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // the thread exited meanwhile
				}
				return err
			}
			done[tid] = true
		}
		if fresh == 0 {
			return nil
		}
	}
}

func applyTo(tid int, nice *int, io *IO) error {
	if nice != nil {
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, *nice); err != nil {
			return fmt.Errorf("nice %d: %w", *nice, err)
		}
	}
	if io != nil {
		if err := ioprioSet(tid, *io); err != nil {
			return fmt.Errorf("ionice: %w", err)
		}
	}
	return nil
}

const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
)

func ioprioSet(tid int, p IO) error {
	v := p.Class<<ioprioClassShift | p.Level
	if p.Class == ClassIdle {
		v = p.Class << ioprioClassShift
	}
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(v)); e != 0 {
		return e
	}
	return nil
}

// Get returns the nice value and I/O priority of thread tid (0: the
// calling thread).
func Get(tid int) (nice int, io IO, err error) {
	if tid == 0 {
		tid = unix.Gettid()
	}
	// getpriority(2) returns 20-nice to stay positive; x/sys/unix returns it raw.
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0, IO{}, err
	}
	r, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if e != 0 {
		return 0, IO{}, e
	}
	return 20 - p, IO{Class: int(r) >> ioprioClassShift, Level: int(r) & (1<<ioprioClassShift - 1)}, nil
}

// threads lists the thread ids of the process.
func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, n)
		}
	}
	return tids, nil
}

// Threads lists the thread ids of the process (for tests).
func Threads() ([]int, error) { return threads() }
