// Package ftptest starts real FTP servers for tests, as net/http/httptest
// does HTTP servers: vsftpd (plain, explicit and implicit FTPS) or
// pure-ftpd (plain and explicit FTPS), on a free port of 127.0.0.1, with
// their own configuration and certificates in a temporary directory, run
// as root and stopped by PID when the test ends. test/deps/ftp.sh installs
// them and the test user; without them (or root) the test is skipped, or
// fails under BACKTORY_TEST_STRICT (internal/testenv).
package ftptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testcerts"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
)

// The test account test/deps/ftp.sh creates.
const (
	User     = "bkftp"
	Password = "bkftp-test-password"
)

// The servers.
const (
	Vsftpd   = "vsftpd"
	PureFTPd = "pure-ftpd"
)

// The modes: plain FTP, explicit FTPS (AUTH TLS) and implicit FTPS.
const (
	Plain    = "plain"
	Explicit = "explicit"
	Implicit = "implicit"
)

var bins = map[string]string{
	Vsftpd:   "/usr/sbin/vsftpd",
	PureFTPd: "/var/cache/backtory-test/pure-ftpd/usr/sbin/pure-ftpd",
}

// Config says which server to start and how.
type Config struct {
	Kind string // Vsftpd or PureFTPd
	Mode string // Plain, Explicit or Implicit (vsftpd only)
	// vsftpd only: ReadOnly refuses every write, and LoginDir is the
	// account's directory after login ("" is its home).
	ReadOnly bool
	LoginDir string
}

// Server is one running server (process group) and its files.
type Server struct {
	Config
	Dir          string // configuration, certificates, logs
	Data         string // a directory owned by User, for the objects
	Port         int
	UID, GID     int    // User's ids
	PasswordFile string // holds Password
	CAFile       string // PEM of the CA that signed the server's certificate (for 127.0.0.1 only)
	OtherCAFile  string // PEM of an unrelated CA, which must not verify the server

	t      testing.TB
	argv   []string
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start starts a server as c says; the test's cleanup stops it and
// removes its files.
func Start(t testing.TB, c Config) *Server {
	t.Helper()
	bin := bins[c.Kind]
	if bin == "" {
		t.Fatalf("ftptest: unknown server %q", c.Kind)
	}
	testenv.NeedRoot(t, "the FTP servers switch to the test user")
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, bin, "run test/deps/ftp.sh")
	}
	u, err := user.Lookup(User)
	if err != nil {
		testenv.Missing(t, "the user "+User, "run test/deps/ftp.sh")
	}
	certs := testcerts.Get(t)
	// Not t.TempDir: its parent is private, and User must reach Data.
	dir, err := os.MkdirTemp("", "backtory-ftp-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Config: c, Dir: dir, Data: filepath.Join(dir, "data"),
		PasswordFile: filepath.Join(dir, "password"),
		CAFile:       certs.CAFile, OtherCAFile: certs.OtherCAFile,
		t: t,
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() && c.Kind == Vsftpd {
			lines := strings.Split(strings.TrimSpace(s.Log()), "\n")
			t.Logf("the end of vsftpd's log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		os.RemoveAll(dir)
	})
	s.UID, _ = strconv.Atoi(u.Uid)
	s.GID, _ = strconv.Atoi(u.Gid)
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Mkdir(s.Data, 0o755))
	must(t, os.Chown(s.Data, s.UID, s.GID))
	must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	must(t, os.WriteFile(s.PasswordFile, []byte(Password+"\n"), 0o600))
	s.Port = FreePort(t)

	switch c.Kind {
	case Vsftpd:
		conf := filepath.Join(dir, "vsftpd.conf")
		must(t, os.WriteFile(conf, []byte(s.vsftpdConf(certs)), 0o600))
		s.argv = []string{bin, conf}
	case PureFTPd:
		if c.ReadOnly || c.LoginDir != "" || c.Mode == Implicit {
			t.Fatal("ftptest: pure-ftpd runs plain or explicit FTPS, read-write, only")
		}
		s.argv = []string{bin, "--bind", fmt.Sprintf("127.0.0.1,%d", s.Port),
			"--login", "unix", "--noanonymous", "--dontresolve", "--minuid", "1000",
			"--maxclientsperip", "100", "--maxclientsnumber", "100"}
		if c.Mode == Explicit {
			s.argv = append(s.argv, "--tls", "3", "--certfile", certs.KeyAndCertFile)
		}
	}
	s.Launch()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// URL returns the server's URL for the directory sub of Data.
func (s *Server) URL(sub string) string {
	scheme := map[string]string{Plain: remote.SchemeFTP, Explicit: remote.SchemeFTPS, Implicit: remote.SchemeFTPSImplicit}[s.Mode]
	return fmt.Sprintf("%s://%s%s", scheme, s.Addr(), filepath.Join(s.Data, sub))
}

// RemoteConfig returns a backend configuration for the directory sub of
// Data: User, PasswordFile, CAFile, a 10s timeout, 2 connections.
func (s *Server) RemoteConfig(sub string) remote.Config {
	c := remote.Config{
		URL:          s.URL(sub),
		User:         User,
		PasswordFile: s.PasswordFile,
		Timeout:      10 * time.Second,
		Connections:  2,
	}
	if s.Mode != Plain {
		c.TLSCA = s.CAFile
	}
	return c
}

// Launch starts the server (again, after Kill) on its port and waits
// until it listens.
func (s *Server) Launch() {
	s.t.Helper()
	out := filepath.Join(s.Dir, s.Kind+".out")
	logf, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.Kind, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	WaitListen(s.t, s.Kind, s.Addr(), exited, func() string {
		b, _ := os.ReadFile(out)
		return string(b)
	})
}

// WaitListen waits until a server started by a test listens on addr; it
// fails the test with the server's output (from output) when the server
// exits first or does not listen within 10s.
func WaitListen(t testing.TB, name, addr string, exited <-chan struct{}, output func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start: %s", name, output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v", name, addr, err)
		}
	}
}

// Kill stops the server and all its sessions (SIGKILL); Launch starts it
// again.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	sessions := s.Sessions()
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for _, pid := range sessions {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-s.exited
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port.
func (s *Server) Restart() {
	s.Kill()
	s.Launch()
}

// Log returns vsftpd's protocol log ("" for pure-ftpd).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "vsftpd.log"))
	return string(b)
}

// Sessions returns the PIDs of the server's session processes: every
// descendant of the listener (vsftpd puts them in sessions of their own,
// so the process group does not reach them).
func (s *Server) Sessions() []int {
	if s.cmd == nil {
		return nil
	}
	return Descendants(s.cmd.Process.Pid)
}

// Descendants returns the PIDs of every descendant of pid, from /proc.
func Descendants(pid int) []int {
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[ppid] = append(parent[ppid], child)
	}
	var pids []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		pids = append(pids, parent[queue[0]]...)
		queue = append(queue, parent[queue[0]]...)
	}
	return pids
}

// SignalSessions sends sig to every session process and returns how many
// there were. SIGKILL cuts the connections as a network failure would;
// SIGSTOP makes the server stop answering on them.
func (s *Server) SignalSessions(sig syscall.Signal) int {
	n := 0
	for _, pid := range s.Sessions() {
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}

func (s *Server) vsftpdConf(c *testcerts.Files) string {
	write := "YES"
	if s.ReadOnly {
		write = "NO"
	}
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=%s
local_umask=022
chroot_local_user=NO
pasv_enable=YES
port_enable=NO
connect_from_port_20=NO
secure_chroot_dir=%s
pam_service_name=vsftpd
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
use_localtime=NO
max_per_ip=0
max_clients=0
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=%s
`, s.Port, write, filepath.Join(s.Dir, "empty"), filepath.Join(s.Dir, "vsftpd.log"))
	if s.LoginDir != "" {
		conf += "local_root=" + s.LoginDir + "\n"
	}
	if s.Mode == Plain {
		return conf + "ssl_enable=NO\n"
	}
	conf += fmt.Sprintf(`ssl_enable=YES
rsa_cert_file=%s
rsa_private_key_file=%s
force_local_logins_ssl=YES
force_local_data_ssl=YES
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=NO
require_ssl_reuse=YES
ssl_ciphers=HIGH
`, c.CertFile, c.KeyFile)
	if s.Mode == Implicit {
		conf += "implicit_ssl=YES\n"
	}
	return conf
}

// FreePort returns a TCP port of 127.0.0.1 that nothing listens on (now).
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
