package main

// An end-to-end test over FTPS: backup to a real vsftpd, a differential,
// restore, compare. The server is started here on 127.0.0.1 and stopped by
// PID; test/deps/ftp.sh installs vsftpd and the user bkftp.

import (
	"bytes"
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
	"syscall"
	"testing"
	"time"
)

func TestFTPSBackupRestore(t *testing.T) {
	srv := startE2EVsftpd(t)
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + src + "\n" +
		"remote:\n" +
		"  url: ftps://127.0.0.1:" + strconv.Itoa(srv.port) + srv.data + "/backups\n" +
		"  user: bkftp\n  password_file: " + srv.password + "\n  tls_ca: " + srv.cert + "\n  connections: 3\n" +
		"volume_size: 1MiB\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", cfg)
	if err := os.WriteFile(filepath.Join(src, "added-after-full"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", cfg)
	out := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	mustRun(t, "verify", "--config", cfg)

	var sets, parts []string
	filepath.Walk(filepath.Join(srv.data, "backups"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && (strings.HasPrefix(fi.Name(), "full-") || strings.HasPrefix(fi.Name(), "diff-")) {
			sets = append(sets, fi.Name())
		}
		if err == nil && strings.HasSuffix(p, ".part") {
			parts = append(parts, p)
		}
		return nil
	})
	if len(sets) != 2 || len(parts) != 0 {
		t.Fatalf("on the server: sets %q, leftover temporary objects %q", sets, parts)
	}
}

type e2eFTP struct {
	port                 int
	data, password, cert string
}

// startE2EVsftpd starts vsftpd with explicit FTPS on a free port of
// 127.0.0.1, its data directory owned by bkftp.
func startE2EVsftpd(t *testing.T) *e2eFTP {
	t.Helper()
	uid, gid := needVsftpd(t)
	// Not t.TempDir: its parent is private, and bkftp must reach the data.
	dir, err := os.MkdirTemp("", "backtory-e2e-ftp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	s := &e2eFTP{data: filepath.Join(dir, "data"), password: filepath.Join(dir, "password"), cert: filepath.Join(dir, "cert.pem")}
	os.Mkdir(s.data, 0o755)
	os.Chown(s.data, uid, gid)
	os.WriteFile(s.password, []byte("bkftp-test-password\n"), 0o600) // set by test/deps/ftp.sh
	key := filepath.Join(dir, "key.pem")
	if err := selfSignedCert(s.cert, key); err != nil {
		t.Fatal(err)
	}
	s.port = startVsftpd(t, dir, fmt.Sprintf(`write_enable=YES
local_umask=022
max_per_ip=0
ssl_enable=YES
rsa_cert_file=%s
rsa_private_key_file=%s
force_local_logins_ssl=YES
force_local_data_ssl=YES
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=NO
require_ssl_reuse=YES
ssl_ciphers=HIGH
`, s.cert, key))
	return s
}

// needVsftpd skips (or, under BACKTORY_TEST_STRICT, fails) unless vsftpd,
// the user bkftp (test/deps/ftp.sh) and root are there; it returns bkftp's ids.
func needVsftpd(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("bkftp")
	if _, serr := os.Stat("/usr/sbin/vsftpd"); serr != nil || err != nil || os.Geteuid() != 0 {
		if os.Getenv("BACKTORY_TEST_STRICT") != "" {
			t.Fatal("vsftpd, the user bkftp or root is missing: run test/deps/ftp.sh as root")
		}
		t.Skip("vsftpd, the user bkftp or root is missing: run test/deps/ftp.sh as root")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// startVsftpd runs vsftpd on a free port of 127.0.0.1 with its config in
// dir: the common settings plus extra. The test's cleanup kills it and its
// sessions, by PID.
func startVsftpd(t *testing.T, dir, extra string) int {
	t.Helper()
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "vsftpd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=NO
local_enable=YES
pasv_enable=YES
port_enable=NO
connect_from_port_20=NO
secure_chroot_dir=%s
pam_service_name=vsftpd
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
`, port, filepath.Join(dir, "empty"))+extra), 0o600)
	var stderr bytes.Buffer
	cmd := exec.Command("/usr/sbin/vsftpd", conf)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// vsftpd's sessions leave its process group: kill them by ancestry.
		pids := append(descendants(cmd.Process.Pid), cmd.Process.Pid)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("vsftpd does not listen: %v\n%s", err, stderr.String())
		}
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		out = append(out, children[queue[0]]...)
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key.
func selfSignedCert(certFile, keyFile string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "backtory e2e"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
}
