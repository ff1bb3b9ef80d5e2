package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/remote/remotetest"
)

// ftpServers are the server setups the conformance suite runs against.
var ftpServers = []ftptest.Config{
	{Kind: ftptest.Vsftpd, Mode: ftptest.Plain},
	{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit},
	{Kind: ftptest.Vsftpd, Mode: ftptest.Implicit},
	{Kind: ftptest.PureFTPd, Mode: ftptest.Plain},
	{Kind: ftptest.PureFTPd, Mode: ftptest.Explicit},
}

func TestFTPConformance(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	for _, srv := range ftpServers {
		t.Run(srv.Kind+"-"+srv.Mode, func(t *testing.T) {
			s := ftptest.Start(t, srv)
			n := 0
			remotetest.Run(t, func(t *testing.T) remote.Backend {
				n++
				return openFTP(t, s.RemoteConfig(fmt.Sprintf("t%d", n)))
			})
		})
	}
}

// TestFTPConfigErrors checks the configuration errors found before any
// connection is made.
func TestFTPConfigErrors(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	check(t, os.WriteFile(pw, []byte("secret\n"), 0o600))
	open := filepath.Join(t.TempDir(), "pw-open")
	check(t, os.WriteFile(open, []byte("secret\n"), 0o644))
	t.Setenv(remote.PasswordEnv, "")
	tests := []struct {
		name string
		cfg  remote.Config
		want string
	}{
		{"no host", remote.Config{URL: "ftp:///backups", User: "u", PasswordFile: pw}, "needs a host"},
		{"no user", remote.Config{URL: "ftp://127.0.0.1:1/b", PasswordFile: pw}, "no user"},
		{"no password", remote.Config{URL: "ftp://127.0.0.1:1/b", User: "u"}, "no password"},
		{"password in url", remote.Config{URL: "ftp://u:pw@127.0.0.1:1/b"}, "do not put the password in the url"},
		{"missing password file", remote.Config{URL: "ftp://127.0.0.1:1/b", User: "u", PasswordFile: pw + ".none"}, "password file"},
		{"tls_ca with plain ftp", remote.Config{URL: "ftp://127.0.0.1:1/b", User: "u", PasswordFile: pw, TLSCA: pw}, "use ftps://"},
		{"tls_ca not PEM", remote.Config{URL: "ftps://127.0.0.1:1/b", User: "u", PasswordFile: pw, TLSCA: pw}, "no PEM certificate"},
		{"query", remote.Config{URL: "ftp://127.0.0.1:1/b?x=1", User: "u", PasswordFile: pw}, "query"},
		{"password file readable by others", remote.Config{URL: "ftps://127.0.0.1:1/b", User: "u", PasswordFile: open}, "mode 0644, readable by group or others; run: chmod 600"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.Open(context.Background(), tc.cfg, nil)
			mustContain(t, err, tc.want)
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// TestPlainFTPWarnsOfThePassword: a password sent over plain ftp:// is
// a warning at every Open, and only there.
func TestPlainFTPWarnsOfThePassword(t *testing.T) {
	defer remote.SetFTPBackoff(time.Millisecond)()
	t.Setenv(remote.PasswordEnv, "secret")
	for _, tc := range []struct {
		url, user string
		warns     bool
	}{
		{"ftp://127.0.0.1:1/b", "u", true},
		{"ftp://127.0.0.1:1/b", "anonymous", true},
		{"ftps://127.0.0.1:1/b", "u", false},
	} {
		var log bytes.Buffer
		remote.Open(context.Background(), remote.Config{URL: tc.url, User: tc.user, Retries: 1}, slog.New(slog.NewTextHandler(&log, nil)))
		if got := strings.Contains(log.String(), "crosses the network in clear"); got != tc.warns {
			t.Errorf("%s: warned=%v, want %v:\n%s", tc.url, got, tc.warns, log.String())
		}
		if strings.Contains(log.String(), "secret") {
			t.Errorf("the log shows the password:\n%s", log.String())
		}
	}
}

// TestFTPConnectErrors checks that each way of failing to connect is one
// clear line.
func TestFTPConnectErrors(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	explicit := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	implicit := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Implicit})
	plain := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Plain})
	wrongPW := filepath.Join(explicit.Dir, "wrong-password")
	check(t, os.WriteFile(wrongPW, []byte("not-the-password\n"), 0o600))
	closed := ftptest.FreePort(t)
	tests := []struct {
		name   string
		server *ftptest.Server
		edit   func(c *remote.Config)
		want   []string
	}{
		{"wrong password", explicit, func(c *remote.Config) { c.PasswordFile = wrongPW }, []string{"login refused for user", "530"}},
		{"wrong password plain", plain, func(c *remote.Config) { c.PasswordFile = wrongPW }, []string{"login refused for user", "530"}},
		{"certificate of another CA", explicit, func(c *remote.Config) { c.TLSCA = explicit.OtherCAFile },
			[]string{"TLS handshake", "certificate signed by unknown authority", "tls_ca"}},
		{"certificate of another CA, implicit", implicit, func(c *remote.Config) { c.TLSCA = explicit.OtherCAFile },
			[]string{"TLS handshake", "certificate signed by unknown authority", "tls_ca"}},
		{"system roots do not know the test CA", explicit, func(c *remote.Config) { c.TLSCA = "" },
			[]string{"TLS handshake", "certificate"}},
		{"wrong host name", explicit, func(c *remote.Config) { c.URL = strings.Replace(c.URL, "127.0.0.1", "localhost", 1) },
			[]string{"TLS handshake", "wanted to match localhost", "another name"}},
		{"connection refused", explicit, func(c *remote.Config) {
			c.URL = strings.Replace(c.URL, fmt.Sprint(explicit.Port), fmt.Sprint(closed), 1)
		}, []string{"cannot connect to", "connection refused"}},
		{"unknown host", explicit, func(c *remote.Config) { c.URL = strings.Replace(c.URL, "127.0.0.1", "no-such-host.invalid", 1) },
			[]string{"cannot connect to no-such-host.invalid", "no such host"}},
		{"plain FTP to a server that requires TLS", explicit, func(c *remote.Config) {
			c.URL, c.TLSCA = strings.Replace(c.URL, "ftps://", "ftp://", 1), ""
		}, []string{"login refused", "encryption", "use ftps://"}},
		{"FTPS to a server without TLS", plain, func(c *remote.Config) {
			c.URL, c.TLSCA = strings.Replace(c.URL, "ftp://", "ftps://", 1), plain.CAFile
		}, []string{"refused AUTH TLS"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.server.RemoteConfig("errors")
			cfg.Retries = 2
			tc.edit(&cfg)
			b, err := remote.Open(context.Background(), cfg, nil)
			if err == nil {
				b.Close()
			}
			mustContain(t, err, tc.want...)
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), ftptest.Password) {
				t.Fatalf("error is not one clean line: %q", err)
			}
		})
	}
	t.Run("insecure skip verify works", func(t *testing.T) {
		cfg := explicit.RemoteConfig("insecure")
		cfg.TLSCA, cfg.TLSInsecure = "", true
		b := openFTP(t, cfg)
		defer b.Close()
		if err := b.Put(context.Background(), "x", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		check(t, os.Mkdir(filepath.Join(explicit.Data, "ro"), 0o755)) // owned by root
		b := openFTP(t, explicit.RemoteConfig("ro"))
		defer b.Close()
		err := b.Put(context.Background(), "sub/x", strings.NewReader("x"))
		mustContain(t, err, "put sub/x", "permission denied")
	})
}

// TestFTPPutResumesAfterServerRestart kills the server in the middle of an
// upload and starts it again: the upload resumes (REST) on the next try, or
// on the next Put when every try failed, and the object is intact.
func TestFTPPutResumesAfterServerRestart(t *testing.T) {
	defer remote.SetFTPBackoff(50 * time.Millisecond)()
	ctx := context.Background()
	data := random(24 << 20)
	for _, mode := range []string{"plain", "explicit"} {
		t.Run("next try/"+mode, func(t *testing.T) {
			s := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: mode})
			cfg := s.RemoteConfig("restart")
			cfg.Retries = 10
			b := openFTP(t, cfg)
			defer b.Close()
			r := &pausingReader{Reader: bytes.NewReader(data), at: 8 << 20, pause: s.Restart}
			if err := b.Put(ctx, "set/vol-1", r); err != nil {
				t.Fatal(err)
			}
			checkStored(t, s, "restart/set/vol-1", data)
			checkResumed(t, s, 0)
		})
	}
	t.Run("next run", func(t *testing.T) {
		s := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
		cfg := s.RemoteConfig("rerun")
		cfg.Retries = 2
		b := openFTP(t, cfg)
		r := &pausingReader{Reader: bytes.NewReader(data), at: 8 << 20, pause: s.Kill}
		mustContain(t, b.Put(ctx, "vol-1", r), "put vol-1", "cannot connect")
		b.Close()
		part := filepath.Join(s.Data, "rerun", "vol-1"+remote.TempSuffix)
		fi, err := os.Stat(part)
		if err != nil || fi.Size() == 0 || fi.Size() >= int64(len(data)) {
			t.Fatalf("after the failed run the partial upload is %v, %v", fi, err)
		}
		s.Launch()
		logged := len(s.Log())
		b = openFTP(t, cfg)
		defer b.Close()
		if err := b.Put(ctx, "vol-1", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		checkStored(t, s, "rerun/vol-1", data)
		checkResumed(t, s, logged)
	})
	t.Run("stale part with other content is not resumed", func(t *testing.T) {
		s := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Plain})
		b := openFTP(t, s.RemoteConfig("stale"))
		defer b.Close()
		stale := filepath.Join(s.Data, "stale", "vol-1"+remote.TempSuffix)
		check(t, os.MkdirAll(filepath.Dir(stale), 0o755))
		check(t, os.WriteFile(stale, random(1<<20), 0o644))
		check(t, os.Chown(filepath.Dir(stale), s.UID, s.GID))
		check(t, os.Chown(stale, s.UID, s.GID))
		if err := b.Put(ctx, "vol-1", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		checkStored(t, s, "stale/vol-1", data)
	})
}

// TestFTPPutWatchdog freezes the server's session in the middle of an
// upload. Without the watchdog the upload would wait for it for ever; with
// it, every try fails after the timeout and Put returns a clear error (the
// context's generous deadline is only a safety net). vsftpd keeps the file
// locked while the frozen session lives, so the tries on new connections
// stall too. Once the frozen session is gone, the next Put resumes.
func TestFTPPutWatchdog(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	s := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	cfg := s.RemoteConfig("frozen")
	cfg.Timeout, cfg.Retries = time.Second, 2
	b := openFTP(t, cfg)
	defer b.Close()
	data := random(24 << 20)
	var frozen []int
	freeze := func() {
		frozen = s.Sessions()
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &pausingReader{Reader: bytes.NewReader(data), at: 4 << 20, pause: freeze}
	mustContain(t, b.Put(ctx, "vol", r), "put vol", "did not answer for 1s")
	if len(frozen) == 0 {
		t.Fatal("no session was frozen")
	}
	s.SignalSessions(syscall.SIGKILL) // the frozen ones and those stuck behind their lock
	logged := len(s.Log())
	b2 := openFTP(t, s.RemoteConfig("frozen")) // the next run, with the usual timeout
	defer b2.Close()
	if err := b2.Put(ctx, "vol", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	checkStored(t, s, "frozen/vol", data)
	checkResumed(t, s, logged)
}

// TestFTPGetResumes cuts (SIGKILL) or freezes (SIGSTOP) the server's
// session in the middle of a download: the reader resumes transparently.
func TestFTPGetResumes(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	ctx := context.Background()
	data := random(32 << 20)
	for _, tc := range []struct {
		kind, mode string
		sig        syscall.Signal
	}{
		{"vsftpd", "explicit", syscall.SIGKILL},
		{"vsftpd", "plain", syscall.SIGKILL},
		{"vsftpd", "implicit", syscall.SIGSTOP},
		{"pure-ftpd", "explicit", syscall.SIGKILL},
		{"pure-ftpd", "plain", syscall.SIGSTOP},
	} {
		t.Run(fmt.Sprintf("%s-%s-%v", tc.kind, tc.mode, tc.sig), func(t *testing.T) {
			s := ftptest.Start(t, ftptest.Config{Kind: tc.kind, Mode: tc.mode})
			cfg := s.RemoteConfig("get")
			cfg.Timeout = 2 * time.Second // the watchdog for the frozen session
			b := openFTP(t, cfg)
			defer b.Close()
			if err := b.Put(ctx, "vol", bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			const off = 1000
			rc, err := b.Get(ctx, "vol", off)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			head := make([]byte, 1<<20)
			if _, err := io.ReadFull(rc, head); err != nil {
				t.Fatal(err)
			}
			if n := s.SignalSessions(tc.sig); n == 0 {
				t.Fatal("no session to cut")
			}
			rest, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read after the cut: %v", err)
			}
			if got := append(head, rest...); !bytes.Equal(got, data[off:]) {
				t.Fatalf("Get returned %d bytes that differ from the %d stored", len(got), len(data)-off)
			}
			if tc.kind == "vsftpd" {
				checkResumed(t, s, 0)
			}
		})
	}
}

// TestFTPDiskFull uploads to a server whose disk (a 2 MiB tmpfs) is too
// small: one clear error, and no partial object left taking space.
func TestFTPDiskFull(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	for _, kind := range []string{"vsftpd", "pure-ftpd"} {
		t.Run(kind, func(t *testing.T) {
			s := ftptest.Start(t, ftptest.Config{Kind: kind, Mode: ftptest.Plain})
			full := filepath.Join(s.Data, "full")
			check(t, os.Mkdir(full, 0o755))
			opts := fmt.Sprintf("size=2m,mode=0755,uid=%d,gid=%d", s.UID, s.GID)
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "backtory-test", full).CombinedOutput(); err != nil {
				testenv.Missing(t, fmt.Sprintf("a small tmpfs (mount: %v: %s)", err, bytes.TrimSpace(out)), "the disk-full test mounts one, as root")
			}
			t.Cleanup(func() {
				s.Kill() // its sessions may hold the tmpfs
				exec.Command("umount", "-q", full).Run()
			})
			b := openFTP(t, s.RemoteConfig("full"))
			defer b.Close()
			err := b.Put(context.Background(), "vol", bytes.NewReader(random(3<<20)))
			mustContain(t, err, "put vol", "disk is", "full")
			ents, _ := os.ReadDir(full)
			for _, e := range ents {
				t.Errorf("left on the full disk: %s", e.Name())
			}
			if err := b.Put(context.Background(), "small", strings.NewReader("fits")); err != nil {
				t.Fatalf("a small upload after the failure: %v", err)
			}
		})
	}
}

// TestFTPParallel runs many Puts and Gets at once through a backend with
// three upload connections.
func TestFTPParallel(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	s := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	cfg := s.RemoteConfig("par")
	cfg.Connections = 3
	b := openFTP(t, cfg)
	defer b.Close()
	ctx := context.Background()
	const n = 12
	blobs := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		blobs[i] = random(1<<20 + i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.Put(ctx, fmt.Sprintf("set-%d/vol-%02d", i%3, i), bytes.NewReader(blobs[i]))
		}()
	}
	wg.Wait()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := b.Get(ctx, fmt.Sprintf("set-%d/vol-%02d", i%3, i), 0)
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(got, blobs[i]) {
				err = fmt.Errorf("object %d differs", i)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for set := range 3 {
		infos, err := b.List(ctx, fmt.Sprintf("set-%d", set))
		if err != nil || len(infos) != n/3 {
			t.Errorf("List(set-%d) = %d entries, %v", set, len(infos), err)
		}
	}
}

func openFTP(t testing.TB, cfg remote.Config) remote.Backend {
	t.Helper()
	b, err := remote.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkStored compares the file the server wrote with want.
func checkStored(t *testing.T, s *ftptest.Server, rel string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(s.Data, rel))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the server stored %d bytes that differ from the %d sent", len(got), len(want))
	}
	if _, err := os.Stat(filepath.Join(s.Data, rel+remote.TempSuffix)); err == nil {
		t.Fatalf("the temporary %s%s is still there", rel, remote.TempSuffix)
	}
}

// checkResumed checks vsftpd's protocol log, from byte from on, for a
// resumed transfer.
func checkResumed(t *testing.T, s *ftptest.Server, from int) {
	t.Helper()
	if !strings.Contains(s.Log()[from:], `"REST `) {
		t.Fatal("the transfer was not resumed with REST (vsftpd's log has no REST command)")
	}
}

// pausingReader reads from a bytes.Reader and calls pause once, when the
// read position reaches at. It stays an io.ReadSeeker, so Put may resume.
type pausingReader struct {
	*bytes.Reader
	at    int64
	pause func()
	done  bool
}

func (p *pausingReader) Read(b []byte) (int, error) {
	pos, _ := p.Seek(0, io.SeekCurrent)
	if !p.done && pos >= p.at {
		p.done = true
		p.pause()
	}
	if !p.done && pos+int64(len(b)) > p.at {
		b = b[:p.at-pos]
	}
	return p.Reader.Read(b)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
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
