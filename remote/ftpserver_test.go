package remote_test

// Real FTP servers for the FTP backend's tests: vsftpd (plain, explicit and
// implicit FTPS) and pure-ftpd (plain and explicit FTPS), each started on
// 127.0.0.1 with its own configuration in a temporary directory and stopped
// by process group. test/deps/ftp.sh installs them and the user "bkftp".

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/remote"
)

const (
	ftpUser     = "bkftp"
	ftpPassword = "bkftp-test-password" // set by test/deps/ftp.sh
	vsftpdBin   = "/usr/sbin/vsftpd"
	pureFTPdBin = "/var/cache/backtory-test/pure-ftpd/usr/sbin/pure-ftpd"
)

// ftpServer is one running server process (group) and its files.
type ftpServer struct {
	t      testing.TB
	kind   string // "vsftpd" or "pure-ftpd"
	mode   string // "plain", "explicit" or "implicit"
	dir    string // configuration, certificates, logs
	data   string // the directory objects go to, owned by ftpUser
	port   int
	argv   []string
	cmd    *exec.Cmd
	waited chan struct{} // closed when cmd has exited
	uid    int
	gid    int
	caFile string // PEM of the CA that signed the server's certificate
}

// needFTP skips the test (or fails it under BACKTORY_TEST_STRICT) when the
// servers or the test user are missing.
func needFTP(t testing.TB, kind string) {
	t.Helper()
	missing := ""
	switch {
	case os.Geteuid() != 0:
		missing = "root (the servers switch to the test user)"
	case kind == "vsftpd" && !exists(vsftpdBin):
		missing = vsftpdBin
	case kind == "pure-ftpd" && !exists(pureFTPdBin):
		missing = pureFTPdBin
	default:
		if _, err := user.Lookup(ftpUser); err != nil {
			missing = "the user " + ftpUser
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("BACKTORY_TEST_STRICT") != "" {
		t.Fatalf("%s is missing: run test/deps/ftp.sh", missing)
	}
	t.Skipf("%s is missing: run test/deps/ftp.sh", missing)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// startFTP starts a server of kind in mode; the test's cleanup stops it.
func startFTP(t testing.TB, kind, mode string) *ftpServer {
	t.Helper()
	needFTP(t, kind)
	dir, err := os.MkdirTemp("", "backtory-ftp-")
	if err != nil {
		t.Fatal(err)
	}
	s := &ftpServer{t: t, kind: kind, mode: mode, dir: dir, data: filepath.Join(dir, "data")}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() && kind == "vsftpd" {
			lines := strings.Split(strings.TrimSpace(s.log()), "\n")
			t.Logf("the end of %s's log:\n%s", kind, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		exec.Command("umount", "-q", s.data+"/full").Run() // the disk-full test's tmpfs, if any
		os.RemoveAll(dir)
	})
	u, err := user.Lookup(ftpUser)
	if err != nil {
		t.Fatal(err)
	}
	s.uid, _ = strconv.Atoi(u.Uid)
	s.gid, _ = strconv.Atoi(u.Gid)
	check(t, os.Chmod(dir, 0o755)) // the user must reach data/
	check(t, os.Mkdir(s.data, 0o755))
	check(t, os.Chown(s.data, s.uid, s.gid))
	check(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	check(t, os.WriteFile(filepath.Join(dir, "password"), []byte(ftpPassword+"\n"), 0o600))
	certs := testCerts(t)
	s.caFile = certs.caFile
	s.port = freePort(t)

	switch kind {
	case "vsftpd":
		conf := filepath.Join(dir, "vsftpd.conf")
		check(t, os.WriteFile(conf, []byte(s.vsftpdConf(certs)), 0o600))
		s.argv = []string{vsftpdBin, conf}
	case "pure-ftpd":
		s.argv = []string{pureFTPdBin, "--bind", fmt.Sprintf("127.0.0.1,%d", s.port),
			"--login", "unix", "--noanonymous", "--dontresolve", "--minuid", "1000",
			"--maxclientsperip", "100", "--maxclientsnumber", "100"}
		switch mode {
		case "explicit":
			s.argv = append(s.argv, "--tls", "3", "--certfile", certs.pureFTPdPEM)
		case "implicit":
			t.Fatal("pure-ftpd is tested with plain and explicit FTPS only")
		}
	default:
		t.Fatalf("unknown server %q", kind)
	}
	s.start()
	return s
}

func (s *ftpServer) vsftpdConf(c *certFiles) string {
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
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
`, s.port, filepath.Join(s.dir, "empty"), filepath.Join(s.dir, "vsftpd.log"))
	if s.mode == "plain" {
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
`, c.certFile, c.keyFile)
	if s.mode == "implicit" {
		conf += "implicit_ssl=YES\n"
	}
	return conf
}

// start runs the server in its own process group and waits for its port.
func (s *ftpServer) start() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, s.kind+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.kind, err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(s.dir, s.kind+".out"))
			s.t.Fatalf("%s exited at start: %s", s.kind, out)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s does not listen on %s: %v", s.kind, s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.waited = exited
}

// kill stops the server and all its sessions.
func (s *ftpServer) kill() {
	if s.cmd == nil {
		return
	}
	sessions := s.sessions()
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for _, pid := range sessions {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-s.waited
	s.cmd = nil
}

// restart kills the server and starts it again on the same port.
func (s *ftpServer) restart() {
	s.kill()
	s.start()
}

func (s *ftpServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// log returns the server's protocol log (vsftpd only).
func (s *ftpServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "vsftpd.log"))
	return string(b)
}

// url returns the server's URL for the directory sub of its data root.
func (s *ftpServer) url(sub string) string {
	scheme := map[string]string{"plain": "ftp", "explicit": "ftps", "implicit": "ftps+implicit"}[s.mode]
	return fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, s.port, filepath.Join(s.data, sub))
}

// config returns a backend configuration for the directory sub.
func (s *ftpServer) config(sub string) remote.Config {
	c := remote.Config{
		URL:          s.url(sub),
		User:         ftpUser,
		PasswordFile: filepath.Join(s.dir, "password"),
		Timeout:      10 * time.Second,
		Connections:  2,
	}
	if s.mode != "plain" {
		c.TLSCA = s.caFile
	}
	return c
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// certFiles are a test CA, a server certificate it signed for 127.0.0.1
// only (so "localhost" is a wrong name), and an unrelated CA that must not verify the server.
type certFiles struct {
	caFile, otherCAFile string
	certFile, keyFile   string
	pureFTPdPEM         string // key and certificate in one file
}

var (
	certsOnce sync.Once
	certs     *certFiles
	certsErr  error
)

func testCerts(t testing.TB) *certFiles {
	certsOnce.Do(func() { certs, certsErr = makeCerts() })
	if certsErr != nil {
		t.Fatal(certsErr)
	}
	return certs
}

func makeCerts() (*certFiles, error) {
	dir, err := os.MkdirTemp("", "backtory-ftp-certs-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	// Left for the OS to clean: shared by every test of the binary.
	c := &certFiles{
		caFile: filepath.Join(dir, "ca.pem"), otherCAFile: filepath.Join(dir, "other-ca.pem"),
		certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key"),
		pureFTPdPEM: filepath.Join(dir, "pure-ftpd.pem"),
	}
	caKey, caCert, caDER, err := newCA("backtory test CA")
	if err != nil {
		return nil, err
	}
	_, _, otherDER, err := newCA("some other CA")
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	for name, data := range map[string][]byte{
		c.caFile:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		c.otherCAFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherDER}),
		c.certFile:    certPEM,
		c.keyFile:     keyPEM,
		c.pureFTPdPEM: append(append([]byte{}, keyPEM...), certPEM...),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func newCA(name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, der, err
}

// mustContain fails unless err's message contains every one of want.
func mustContain(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	t.Logf("error as expected: %v", err)
}

// sessions returns the PIDs of the server's session processes: every
// descendant of the listener (vsftpd puts them in sessions of their own,
// so the process group does not reach them).
func (s *ftpServer) sessions() []int {
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
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
		parent[ppid] = append(parent[ppid], pid)
	}
	var pids []int
	queue := []int{s.cmd.Process.Pid}
	for len(queue) > 0 {
		kids := parent[queue[0]]
		queue = append(queue[1:], kids...)
		pids = append(pids, kids...)
	}
	return pids
}

// signalSessions sends sig to every session process and returns how many
// there were. SIGKILL cuts the connections as a network failure would;
// SIGSTOP makes the server stop answering on them.
func (s *ftpServer) signalSessions(sig syscall.Signal) int {
	n := 0
	for _, pid := range s.sessions() {
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}
