// Package sshtest starts a real OpenSSH server for tests, as ftptest does
// FTP servers: Debian's sshd on a free port of 127.0.0.1 with its own
// configuration, host key and authorized keys in a directory of its own,
// an sftp-only test user chrooted to that directory (ForceCommand
// internal-sftp, ChrootDirectory), stopped by PID when the test ends.
// test/deps/sftp.sh installs sshd and the user; without them (or root) the
// test is skipped, or fails under BACKTORY_TEST_STRICT (internal/testenv).
package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
)

// The test account test/deps/sftp.sh creates.
const (
	User     = "bksftp"
	Password = "bksftp-test-password"
)

const sshd = "/usr/sbin/sshd"

// Server is one running sshd and its files. The account sees Chroot as
// "/"; Data ("/data" inside) is its to write.
type Server struct {
	Dir          string // configuration, keys, logs (root's)
	Chroot       string // the account's root: root-owned, mode 0755
	Data         string // Chroot/data, owned by User
	Port         int
	UID, GID     int
	Key          string // a private key authorized for User (mode 0600)
	OtherKey     string // a private key that is not authorized
	KnownHosts   string // the server's current host key, for 127.0.0.1:Port
	PasswordFile string // holds Password

	t      testing.TB
	conf   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a server; the test's cleanup stops it and removes its files.
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.NeedRoot(t, "sshd needs root to chroot and switch to the test user")
	if _, err := os.Stat(sshd); err != nil {
		testenv.Missing(t, sshd, "run test/deps/sftp.sh")
	}
	testenv.NeedTool(t, "ssh-keygen")
	u, err := user.Lookup(User)
	if err != nil {
		testenv.Missing(t, "the user "+User, "run test/deps/sftp.sh")
	}
	// sshd wants every component of ChrootDirectory owned by root and not
	// writable by others, which /tmp is not.
	base := "/var/cache/backtory-test/sshd"
	must(t, os.MkdirAll(base, 0o755))
	must(t, os.Chmod(base, 0o755))
	must(t, os.MkdirAll("/run/sshd", 0o755)) // sshd's privilege separation directory
	dir, err := os.MkdirTemp(base, "srv-")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.Chmod(dir, 0o755))
	s := &Server{
		Dir: dir, Chroot: filepath.Join(dir, "chroot"),
		Key: filepath.Join(dir, "client_key"), OtherKey: filepath.Join(dir, "other_key"),
		KnownHosts: filepath.Join(dir, "known_hosts"), PasswordFile: filepath.Join(dir, "password"),
		conf: filepath.Join(dir, "sshd_config"), t: t,
	}
	s.Data = filepath.Join(s.Chroot, "data")
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(s.Log()), "\n")
			t.Logf("the end of sshd's log:\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
		for _, m := range s.mounts() {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
		os.RemoveAll(dir)
	})
	s.UID, _ = strconv.Atoi(u.Uid)
	s.GID, _ = strconv.Atoi(u.Gid)
	must(t, os.Mkdir(s.Chroot, 0o755))
	must(t, os.Mkdir(s.Data, 0o755))
	must(t, os.Chown(s.Data, s.UID, s.GID))
	must(t, os.Mkdir(filepath.Join(dir, "authorized_keys"), 0o755))
	must(t, os.WriteFile(s.PasswordFile, []byte(Password+"\n"), 0o600))
	keygen(t, s.Key)
	keygen(t, s.OtherKey)
	pub, err := os.ReadFile(s.Key + ".pub")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys", User), pub, 0o644))
	s.Port = ftptest.FreePort(t)
	s.NewHostKey()
	must(t, os.WriteFile(s.conf, []byte(s.config()), 0o600))
	s.Launch()
	return s
}

// URL returns the server's URL for the directory sub of Data.
func (s *Server) URL(sub string) string {
	return fmt.Sprintf("sftp://%s@127.0.0.1:%d/data/%s", User, s.Port, sub)
}

// RemoteConfig returns a backend configuration for the directory sub of
// Data: Key, KnownHosts, a 10s timeout, 2 connections.
func (s *Server) RemoteConfig(sub string) remote.Config {
	return remote.Config{
		URL: s.URL(sub), SSHKey: s.Key, KnownHosts: s.KnownHosts,
		Timeout: 10 * time.Second, Connections: 2,
	}
}

// NewHostKey gives the server a new host key (effective at the next
// Launch) and writes it to KnownHosts.
func (s *Server) NewHostKey() {
	s.t.Helper()
	key := filepath.Join(s.Dir, "host_ed25519")
	os.Remove(key)
	os.Remove(key + ".pub")
	keygen(s.t, key)
	pub, err := os.ReadFile(key + ".pub")
	must(s.t, err)
	f := strings.Fields(string(pub))
	line := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, f[0], f[1])
	must(s.t, os.WriteFile(s.KnownHosts, []byte(line), 0o644))
}

// Launch starts sshd (again, after Kill) and waits until it listens.
func (s *Server) Launch() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.Dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(s.t, err)
	defer logf.Close()
	cmd := exec.Command(sshd, "-D", "-e", "-f", s.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	s.exited = make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.exited)
	s.cmd = cmd
	ftptest.WaitListen(s.t, "sshd", fmt.Sprintf("127.0.0.1:%d", s.Port), s.exited, s.Log)
}

// Kill stops sshd and every session (SIGKILL), as a crash would; Launch
// starts it again.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	sessions := ftptest.Descendants(s.cmd.Process.Pid)
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for _, pid := range sessions {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-s.exited
	s.cmd = nil
}

// Sessions returns the PIDs of sshd's session processes.
func (s *Server) Sessions() []int {
	if s.cmd == nil {
		return nil
	}
	return ftptest.Descendants(s.cmd.Process.Pid)
}

// SmallDisk mounts a tmpfs of size bytes at Chroot/name, owned by User,
// and returns its path as the account sees it ("/name").
func (s *Server) SmallDisk(name string, size int64) string {
	s.t.Helper()
	p := filepath.Join(s.Chroot, name)
	must(s.t, os.Mkdir(p, 0o755))
	if err := syscall.Mount("tmpfs", p, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755,uid=%d,gid=%d", size, s.UID, s.GID)); err != nil {
		testenv.Missing(s.t, "a tmpfs mount ("+err.Error()+")", "run the test as root with CAP_SYS_ADMIN")
	}
	return "/" + name
}

// Log returns sshd's log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
	return string(b)
}

func (s *Server) mounts() []string {
	b, _ := os.ReadFile("/proc/self/mounts")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], s.Chroot+"/") {
			out = append(out, f[1])
		}
	}
	return out
}

func (s *Server) config() string {
	return fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
AuthorizedKeysFile %s/authorized_keys/%%u
StrictModes no
UsePAM no
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
AllowUsers %s
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
Subsystem sftp internal-sftp
Match User %s
	ChrootDirectory %s
	ForceCommand internal-sftp -l INFO
	AllowTcpForwarding no
	X11Forwarding no
	PermitTTY no
`, s.Port, filepath.Join(s.Dir, "host_ed25519"), s.Dir, User, User, s.Chroot)
}

func keygen(t testing.TB, file string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "backtory-test", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
