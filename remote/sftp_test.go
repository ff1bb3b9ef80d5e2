package remote_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/internal/sshtest"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/remote/remotetest"
)

func TestSFTPConformance(t *testing.T) {
	defer remote.SetSFTPBackoff(10 * time.Millisecond)()
	s := sshtest.Start(t)
	n := 0
	remotetest.Run(t, func(t *testing.T) remote.Backend {
		n++
		return openFTP(t, s.RemoteConfig(fmt.Sprintf("t%d", n)))
	})
}

// TestSFTPConfigErrors checks the configuration errors found before any
// connection is made.
func TestSFTPConfigErrors(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	check(t, os.WriteFile(key, []byte("not a key"), 0o600))
	open := filepath.Join(dir, "open-key")
	check(t, os.WriteFile(open, []byte("not a key"), 0o644))
	tests := []struct {
		name string
		cfg  remote.Config
		want []string
	}{
		{"no host", remote.Config{URL: "sftp:///b", SSHKey: key}, []string{"needs a host"}},
		{"no user", remote.Config{URL: "sftp://127.0.0.1:1/b", SSHKey: key}, []string{"no user"}},
		{"no way to log in", remote.Config{URL: "sftp://u@127.0.0.1:1/b"}, []string{"no way to log in", "ssh_key", "SSH_AUTH_SOCK"}},
		{"password in url", remote.Config{URL: "sftp://u:pw@127.0.0.1:1/b"}, []string{"do not put the password in the url"}},
		{"key readable by others", remote.Config{URL: "sftp://u@127.0.0.1:1/b", SSHKey: open}, []string{"mode 0644", "chmod 600 " + open}},
		{"not a key", remote.Config{URL: "sftp://u@127.0.0.1:1/b", SSHKey: key}, []string{"ssh_key " + key}},
		{"missing key", remote.Config{URL: "sftp://u@127.0.0.1:1/b", SSHKey: key + ".none"}, []string{"ssh_key", "no such file"}},
		{"tls option", remote.Config{URL: "sftp://u@127.0.0.1:1/b", SSHKey: key, TLSCA: key}, []string{"host key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.Open(context.Background(), tc.cfg, nil)
			mustContain(t, err, tc.want...)
		})
	}
}

// TestSFTPConnectErrors checks that each way of failing to connect is one
// clear line, and that none of them is retried for long.
func TestSFTPConnectErrors(t *testing.T) {
	defer remote.SetSFTPBackoff(10 * time.Millisecond)()
	t.Setenv("SSH_AUTH_SOCK", "")
	s := sshtest.Start(t)
	oldKnown := filepath.Join(s.Dir, "known_hosts.old")
	b, err := os.ReadFile(s.KnownHosts)
	check(t, err)
	check(t, os.WriteFile(oldKnown, b, 0o644))
	s.Kill()
	s.NewHostKey()
	s.Launch()
	pub, err := os.ReadFile(filepath.Join(s.Dir, "host_ed25519.pub"))
	check(t, err)
	fpr := fingerprint(t, pub)
	wrongPW := filepath.Join(s.Dir, "wrong-password")
	check(t, os.WriteFile(wrongPW, []byte("not-the-password\n"), 0o600))
	closed := ftptest.FreePort(t)
	tests := []struct {
		name string
		edit func(c *remote.Config)
		want []string
	}{
		{"first contact", func(c *remote.Config) { c.KnownHosts = filepath.Join(s.Dir, "none") },
			[]string{"is not in " + filepath.Join(s.Dir, "none"), "ED25519 key " + fpr, "backtory remote trust"}},
		{"changed host key", func(c *remote.Config) { c.KnownHosts = oldKnown },
			[]string{"HAS CHANGED", "now offers ED25519 key " + fpr, "nothing was sent", "ssh-keygen -R"}},
		{"wrong key", func(c *remote.Config) { c.SSHKey = s.OtherKey }, []string{"refused the login of user bksftp", "authorized_keys"}},
		{"wrong password", func(c *remote.Config) { c.SSHKey, c.PasswordFile = "", wrongPW }, []string{"refused the login of user bksftp", "password"}},
		{"connection refused", func(c *remote.Config) {
			c.URL = strings.Replace(c.URL, strconv.Itoa(s.Port), strconv.Itoa(closed), 1)
		}, []string{"cannot connect to the SFTP server", "connection refused"}},
		{"permission denied", func(c *remote.Config) { c.URL = strings.Replace(c.URL, "/data/", "/", 1) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.RemoteConfig("errors")
			cfg.Retries = 2
			tc.edit(&cfg)
			start := time.Now()
			b, err := remote.Open(context.Background(), cfg, nil)
			if tc.want == nil { // opens; the first write fails
				check(t, err)
				defer b.Close()
				err = b.Put(context.Background(), "vol", strings.NewReader("x"))
				tc.want = []string{"put vol", "permission denied", "/errors"}
			}
			mustContain(t, err, tc.want...)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failing took %v", d)
			}
		})
	}
	t.Run("password", func(t *testing.T) {
		cfg := s.RemoteConfig("pw")
		cfg.SSHKey, cfg.PasswordFile = "", s.PasswordFile
		b := openFTP(t, cfg)
		defer b.Close()
		check(t, b.Put(context.Background(), "obj", strings.NewReader("by password")))
		checkSFTPStored(t, s, "pw/obj", []byte("by password"))
	})
}

// TestSFTPTrust is `backtory remote trust`'s part in remote: read the
// server's key, record it, connect.
func TestSFTPTrust(t *testing.T) {
	s := sshtest.Start(t)
	cfg := s.RemoteConfig("trust")
	cfg.KnownHosts = filepath.Join(s.Dir, "etc", "known_hosts")
	hk, err := remote.ScanHostKey(context.Background(), cfg)
	check(t, err)
	if hk.Known || hk.Changed || hk.Addr != fmt.Sprintf("127.0.0.1:%d", s.Port) {
		t.Fatalf("ScanHostKey = %+v", hk)
	}
	check(t, remote.TrustHostKey(cfg.KnownHosts, hk.Addr, hk.Key))
	if hk, err = remote.ScanHostKey(context.Background(), cfg); err != nil || !hk.Known {
		t.Fatalf("after trusting: %+v, %v", hk, err)
	}
	b := openFTP(t, cfg)
	defer b.Close()
	check(t, b.Put(context.Background(), "obj", strings.NewReader("trusted")))
	// OpenSSH reads the same line.
	got, err := os.ReadFile(cfg.KnownHosts)
	check(t, err)
	want, err := os.ReadFile(s.KnownHosts)
	check(t, err)
	if !bytes.Equal(bytes.Fields(got)[1], bytes.Fields(want)[1]) || string(bytes.Fields(got)[0]) != fmt.Sprintf("[127.0.0.1]:%d", s.Port) {
		t.Fatalf("known_hosts has %q, want the key of %q", got, want)
	}
}

// TestSFTPPutAfterServerCrash kills sshd (and every session) in the middle
// of an upload: with sshd back at once, the retry resumes the partial
// object; with sshd down, Put fails cleanly, nothing is committed, and the
// next run resumes and completes.
func TestSFTPPutAfterServerCrash(t *testing.T) {
	defer remote.SetSFTPBackoff(50 * time.Millisecond)()
	ctx := context.Background()
	data := random(24 << 20)
	t.Run("next try", func(t *testing.T) {
		s := sshtest.Start(t)
		cfg := s.RemoteConfig("restart")
		cfg.Retries = 10
		b, log := openSFTPLogged(t, cfg)
		defer b.Close()
		r := &pausingReader{Reader: bytes.NewReader(data), at: 8 << 20, pause: func() { s.Kill(); s.Launch() }}
		check(t, b.Put(ctx, "set/vol-1", r))
		checkSFTPStored(t, s, "restart/set/vol-1", data)
		checkSFTPResumed(t, log)
	})
	t.Run("next run", func(t *testing.T) {
		s := sshtest.Start(t)
		cfg := s.RemoteConfig("rerun")
		cfg.Retries = 2
		b := openFTP(t, cfg)
		r := &pausingReader{Reader: bytes.NewReader(data), at: 8 << 20, pause: s.Kill}
		mustContain(t, b.Put(ctx, "vol-1", r), "put vol-1", "cannot connect", "connection refused")
		b.Close()
		if _, err := os.Stat(filepath.Join(s.Data, "rerun", "vol-1")); err == nil {
			t.Fatal("the failed upload was committed")
		}
		fi, err := os.Stat(filepath.Join(s.Data, "rerun", "vol-1"+remote.TempSuffix))
		if err != nil || fi.Size() == 0 || fi.Size() >= int64(len(data)) {
			t.Fatalf("after the failed run the partial upload is %v, %v", fi, err)
		}
		s.Launch()
		b, log := openSFTPLogged(t, cfg)
		defer b.Close()
		check(t, b.Put(ctx, "vol-1", bytes.NewReader(data)))
		checkSFTPStored(t, s, "rerun/vol-1", data)
		checkSFTPResumed(t, log)
	})
	t.Run("stale part with other content is not resumed", func(t *testing.T) {
		s := sshtest.Start(t)
		b := openFTP(t, s.RemoteConfig("stale"))
		defer b.Close()
		stale := filepath.Join(s.Data, "stale", "vol-1"+remote.TempSuffix)
		check(t, os.MkdirAll(filepath.Dir(stale), 0o755))
		check(t, os.WriteFile(stale, random(8<<20), 0o644))
		check(t, os.Chown(filepath.Dir(stale), s.UID, s.GID))
		check(t, os.Chown(stale, s.UID, s.GID))
		check(t, b.Put(ctx, "vol-1", bytes.NewReader(data)))
		checkSFTPStored(t, s, "stale/vol-1", data)
	})
}

// TestSFTPStalledServer freezes the server's session in the middle of an
// upload: the keepalive notices within the timeout and Put says so.
func TestSFTPStalledServer(t *testing.T) {
	defer remote.SetSFTPBackoff(10 * time.Millisecond)()
	s := sshtest.Start(t)
	cfg := s.RemoteConfig("frozen")
	cfg.Timeout, cfg.Retries = time.Second, 1
	b := openFTP(t, cfg)
	defer b.Close()
	var frozen []int
	freeze := func() {
		frozen = s.Sessions()
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &pausingReader{Reader: bytes.NewReader(random(16 << 20)), at: 4 << 20, pause: freeze}
	mustContain(t, b.Put(ctx, "vol", r), "put vol", "did not answer for 1s")
	if len(frozen) == 0 {
		t.Fatal("no session was frozen")
	}
	for _, pid := range frozen {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestSFTPGetResumes cuts the server's sessions in the middle of a
// download: the reader resumes where it was.
func TestSFTPGetResumes(t *testing.T) {
	defer remote.SetSFTPBackoff(10 * time.Millisecond)()
	ctx := context.Background()
	s := sshtest.Start(t)
	b := openFTP(t, s.RemoteConfig("get"))
	defer b.Close()
	data := random(32 << 20)
	check(t, b.Put(ctx, "vol", bytes.NewReader(data)))
	const off = 1000
	rc, err := b.Get(ctx, "vol", off)
	check(t, err)
	defer rc.Close()
	head := make([]byte, 4<<20)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	for _, pid := range s.Sessions() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read after the cut: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, data[off:]) {
		t.Fatalf("Get returned %d bytes that differ from the %d stored", len(got), len(data)-off)
	}
}

// TestSFTPDiskFull uploads into a 2 MiB tmpfs inside the chroot: one clear
// error, no partial object left taking space, and a small upload after it
// works.
func TestSFTPDiskFull(t *testing.T) {
	defer remote.SetSFTPBackoff(10 * time.Millisecond)()
	s := sshtest.Start(t)
	dir := s.SmallDisk("small", 2<<20)
	cfg := s.RemoteConfig("")
	cfg.URL = strings.Replace(cfg.URL, "/data/", dir, 1)
	b := openFTP(t, cfg)
	defer b.Close()
	err := b.Put(context.Background(), "vol", bytes.NewReader(random(3<<20)))
	mustContain(t, err, "put vol", "disk is full")
	ents, _ := os.ReadDir(filepath.Join(s.Chroot, "small"))
	for _, e := range ents {
		t.Errorf("left on the full disk: %s", e.Name())
	}
	check(t, b.Put(context.Background(), "small", strings.NewReader("fits")))
}

// TestSFTPParallel runs many Puts and Gets at once.
func TestSFTPParallel(t *testing.T) {
	s := sshtest.Start(t)
	cfg := s.RemoteConfig("par")
	cfg.Connections = 3
	b := openFTP(t, cfg)
	defer b.Close()
	if c := b.Capabilities(); c.Connections != 3 || !c.ResumablePut {
		t.Fatalf("Capabilities = %+v", c)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := random(1<<20 + i)
			name := fmt.Sprintf("d%d/obj", i%4)
			name += strconv.Itoa(i)
			if err := b.Put(ctx, name, bytes.NewReader(data)); err != nil {
				errs <- err
				return
			}
			rc, err := b.Get(ctx, name, 0)
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("%s differs", name)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkSFTPStored compares the file the server wrote with want.
func checkSFTPStored(t *testing.T, s *sshtest.Server, rel string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(s.Data, rel))
	check(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("the server stored %d bytes that differ from the %d sent", len(got), len(want))
	}
	if _, err := os.Stat(filepath.Join(s.Data, rel+remote.TempSuffix)); err == nil {
		t.Fatalf("the temporary %s%s is still there", rel, remote.TempSuffix)
	}
}

// openSFTPLogged opens a backend whose debug log goes to the returned
// buffer.
func openSFTPLogged(t *testing.T, cfg remote.Config) (remote.Backend, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	b, err := remote.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	check(t, err)
	return b, buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkSFTPResumed checks in the backend's log that an upload continued
// a partial one instead of starting over.
func checkSFTPResumed(t *testing.T, log *syncBuffer) {
	t.Helper()
	if !strings.Contains(log.String(), "continuing a partial upload") {
		t.Fatalf("no upload continued a partial one; the log:\n%s", log)
	}
}

func fingerprint(t *testing.T, pub []byte) string {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	check(t, err)
	return ssh.FingerprintSHA256(k)
}
