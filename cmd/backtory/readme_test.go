package main

// TestREADMECommands runs every `backtory ...` line of README.md's ```sh
// blocks, in README order, and checks its exit code: 0, or the code the
// line's own comment gives ("exit 3").
//
// The environment they run in: the README's commands assume a real host
// (the config in /etc/backtory, a source at /, an FTPS or SFTP server), so
// each command runs the static binary (buildStatic), installed as
// /usr/local/sbin/backtory, chrooted into a small temp tree that has
// /etc/hosts, /etc/nginx/..., /tmp, /mnt, /var/lib, /root and the file://
// remote /srv/backups: `--source /`, /etc, /etc/nginx and
// /etc/backtory/backtory.yaml are the chroot's. The binary needs /proc
// (os.Executable for the recovery binary, /proc/self/fd for walks and
// restores), so each command runs under `sh -c 'mount -t proc ... && exec
// chroot ...'` in a private mount namespace of its own (Unshareflags
// CLONE_NEWNS): the proc mount lives and dies with that one command, and
// nothing is mounted on the host. It needs root. A block that starts with
// `backtory init` gets a fresh tree; a block without init (Restoring)
// continues in the tree the previous block left.
//
// The substitutions, every one in a table below and nowhere else:
// readmeRemotes (network remotes become the chroot's file:// remote),
// readmeSkipped (lines that cannot run here, with the test that runs
// them for real), readmeNotBacktory (shell lines that are not backtory
// commands: not run), and readmeDate (README dates become a time just after
// the test's backups, in the same form, since the sets are made now).

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
)

// readmeRemotes maps each README `init --remote` URL to the chroot's
// remote. The network schemes have end-to-end tests of their own.
var readmeRemotes = []struct{ readme, here, coveredBy string }{
	{"ftps://backup.example.net/backups", "file:///srv/backups", "cmd/backtory/ftp_e2e_test.go, recovery_ftps_test.go"},
	{"sftp://web1@backup.example.net/backups", "file:///srv/backups", "cmd/backtory/sftp_e2e_test.go (TestSFTPBackupRestore)"},
	{"s3://s3.example.net/backups/web1", "file:///srv/backups", "cmd/backtory/s3_e2e_test.go (TestS3BackupRestore)"},
}

// readmeSkipped are the backtory lines not run here, by their prefix.
var readmeSkipped = []struct{ prefix, why string }{
	{"backtory remote trust --fingerprint SHA256:…", "a placeholder fingerprint of a server that is not here; " +
		"cmd/backtory/sftp_e2e_test.go (TestSFTPBackupRestore) runs `remote trust` against a real SSH server"},
	{"backtory mount ", "it serves until unmounted; cmd/backtory/mount_test.go (TestMount) mounts with the kernel's FUSE, " +
		"compares every point in time and unmounts on interrupt and with fusermount3 -u"},
}

// readmeNotBacktory are the prefixes of sh-block lines that are not
// backtory commands: not run. Any other line fails the test, so that a new
// README line is never dropped silently.
var readmeNotBacktory = []string{"make ", "$EDITOR ", "install ", "ssh-keygen "}

// readmeDate is a README date ("2026-11-20 14:00"): replaced by the minute
// after now, in the same form (the chroot's local time is UTC).
var readmeDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$`)

// readmeExit is the exit code a line's comment may give.
var readmeExit = regexp.MustCompile(`\bexit (\d)\b`)

type readmeLine struct {
	n       int    // line number in README.md
	text    string // the command, without its comment
	comment string
}

// readmeBlocks returns the lines of every ```sh block of README.md.
func readmeBlocks(t *testing.T) [][]readmeLine {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks [][]readmeLine
	var cur []readmeLine
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cmd, comment := splitComment(line)
			if cmd != "" {
				cur = append(cur, readmeLine{n, cmd, comment})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if in {
		t.Fatal("README.md: a ```sh block is not closed")
	}
	return blocks
}

// splitComment splits a shell line at its first # that starts a word
// outside double quotes.
func splitComment(line string) (cmd, comment string) {
	quoted := false
	for i, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == '#' && !quoted && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
	}
	return strings.TrimSpace(line), ""
}

// splitArgs splits a command on white space, honouring double quotes.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				args, inWord = append(args, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unbalanced double quote")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// readmeChroot makes the host tree the README's commands run in.
func readmeChroot(t *testing.T, bin string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"proc", "tmp", "mnt", "var/lib", "root", "srv/backups", "usr/local/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(root, "etc/hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	writeTestFile(t, filepath.Join(root, "etc/nginx/nginx.conf"), []byte("events {}\nhttp { include sites-enabled/*; }\n"), 0o644)
	writeTestFile(t, filepath.Join(root, "etc/nginx/sites-enabled/default"), []byte("server { listen 80; root /var/www; }\n"), 0o644)
	writeTestFile(t, filepath.Join(root, "var/www/index.html"), []byte("<p>web1</p>\n"), 0o644)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(root, "usr/local/sbin/backtory"), b, 0o755)
	return root
}

// runInChroot runs the chrooted backtory with args and returns its exit
// code and output.
func runInChroot(t *testing.T, root string, args []string) (int, string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `mount -t proc proc "$0/proc" && exec chroot "$0" "$@"`,
		root, "/usr/local/sbin/backtory"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TZ=UTC"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("run %v: %v", args, err)
	return 0, ""
}

func TestREADMECommands(t *testing.T) {
	testenv.NeedRoot(t, "chroot and a private mount namespace with /proc")
	testenv.NeedTool(t, "chroot")
	testenv.NeedTool(t, "mount")
	bin := buildStatic(t)
	var root string
	ran := 0
	for _, block := range readmeBlocks(t) {
		for _, l := range block {
			if !strings.HasPrefix(l.text, "backtory ") {
				known := false
				for _, p := range readmeNotBacktory {
					known = known || strings.HasPrefix(l.text, p)
				}
				if !known {
					t.Errorf("README.md:%d: %q is neither a backtory command nor in readmeNotBacktory", l.n, l.text)
				}
				continue
			}
			skipped := false
			for _, s := range readmeSkipped {
				if strings.HasPrefix(l.text, s.prefix) {
					t.Logf("README.md:%d: not run: %s", l.n, s.why)
					skipped = true
				}
			}
			if skipped {
				continue
			}
			args, err := splitArgs(l.text)
			if err != nil {
				t.Fatalf("README.md:%d: %v", l.n, err)
			}
			args = args[1:]
			if len(args) > 0 && args[0] == "init" {
				root = readmeChroot(t, bin)
			} else if root == "" {
				t.Fatalf("README.md:%d: a command before any `backtory init`", l.n)
			}
			for j := range args {
				switch {
				case j > 0 && args[j-1] == "--remote":
					found := false
					for _, r := range readmeRemotes {
						if args[j] == r.readme {
							args[j], found = r.here, true
						}
					}
					if !found {
						t.Fatalf("README.md:%d: remote %q is not in readmeRemotes", l.n, args[j])
					}
				case readmeDate.MatchString(args[j]):
					args[j] = time.Now().UTC().Truncate(time.Minute).Add(time.Minute).Format("2006-01-02 15:04")
				}
			}
			want := 0
			if m := readmeExit.FindStringSubmatch(l.comment); m != nil {
				want, _ = strconv.Atoi(m[1])
			}
			code, out := runInChroot(t, root, args)
			ran++
			t.Logf("README.md:%d: backtory %s: exit %d\n%s", l.n, strings.Join(args, " "), code, out)
			if code != want {
				t.Errorf("README.md:%d: %q: exit %d, want %d:\n%s", l.n, l.text, code, want, out)
			}
			if args[0] == "restore" && code == 0 {
				readmeRestored(t, root, args)
			}
		}
	}
	if ran == 0 {
		t.Fatal("no backtory command found in README.md's sh blocks")
	}
}

// readmeRestored checks that a `restore --to DIR /etc/nginx` wrote the
// chroot's nginx.conf under DIR.
func readmeRestored(t *testing.T, root string, args []string) {
	t.Helper()
	to := ""
	for i := range args[:len(args)-1] {
		if args[i] == "--to" {
			to = args[i+1]
		}
	}
	want, err := os.ReadFile(filepath.Join(root, "etc/nginx/nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, to, "etc/nginx/nginx.conf"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("restore %v: nginx.conf %q, %v; want %q", args, got, err, want)
	}
}
