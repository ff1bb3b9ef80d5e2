package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/backtory/backtory/internal/childenv"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	Major, Minor uint32
	Root         string // the mounted directory inside the filesystem
	Point        string // where it is mounted
	FSType       string
	Source       string // device or dataset
}

// parseMountinfo reads /proc/<pid>/mountinfo (see proc(5)).
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		e, err := parseMountLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

func parseMountLine(line string) (mountEntry, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) < sep+3 {
		return mountEntry{}, errors.New("too few fields")
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return mountEntry{}, fmt.Errorf("bad device %q", f[2])
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return mountEntry{}, fmt.Errorf("bad device %q", f[2])
	}
	return mountEntry{
		Major: uint32(ma), Minor: uint32(mi),
		Root:   unescapeMount(f[3]),
		Point:  unescapeMount(f[4]),
		FSType: unescapeMount(f[sep+1]),
		Source: unescapeMount(f[sep+2]),
	}, nil
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mounts returns the current mount table.
func mounts() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// mountOf returns the mount that holds path: the last-mounted entry with the
// longest mount point containing path (for which match, if given, is true).
func mountOf(ms []mountEntry, path string, match func(mountEntry) bool) (mountEntry, string, bool) {
	var best mountEntry
	var bestRel string
	found := false
	for _, m := range ms {
		if match != nil && !match(m) {
			continue
		}
		rel, ok := within(m.Point, path)
		if !ok {
			continue
		}
		if !found || len(m.Point) >= len(best.Point) {
			best, bestRel, found = m, rel, true
		}
	}
	return best, bestRel, found
}

// realPath resolves symlinks in a source path, so it can be matched with
// mount points.
func realPath(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("source path: %w", err)
	}
	return r, nil
}

// run runs a command and returns its standard output. It runs in its own
// process group, so a Ctrl-C on the terminal reaches backtory (which cleans
// up) and not the storage tool in the middle of its work. The error is one
// line: the command and the last line the tool printed on stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On cancellation ask politely (LVM and btrfs finish or roll back on
	// SIGTERM), and kill only if the tool does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = childenv.Environ("LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), toolMessage(stderr.String(), err))
	}
	return stdout.String(), nil
}

// toolMessage is the most useful line of a tool's stderr, or err.
func toolMessage(stderr string, err error) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "WARNING:") {
			return l
		}
	}
	return err.Error()
}

// retryBusy retries f while it fails with "busy" (a reader that has just
// closed its files, an automount that expires): up to about 5 s.
func retryBusy(ctx context.Context, f func() error) error {
	var err error
	for i := 0; i < 10; i++ {
		if err = f(); err == nil || !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}

func isBusy(err error) bool {
	return errors.Is(err, syscall.EBUSY) || strings.Contains(strings.ToLower(err.Error()), "busy")
}
