package main

// End-to-end tests on a real SeaweedFS cluster (internal/s3test): backup,
// differential, restore and verify over S3, and the faults of issue 16
// (a volume server killed mid-upload, the gateway restarted mid-run, wrong
// credentials, a missing bucket, no write permission, a full store).

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/backtory/backtory/internal/s3test"
)

// s3Config writes a config backing src up to bucket on cl as id.
func s3Config(t *testing.T, cl *s3test.Cluster, id s3test.Identity, bucket, src, extra string) string {
	t.Helper()
	dir := t.TempDir()
	rc := cl.RemoteConfig(id, bucket, "backups")
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + src + "\n" +
		"remote:\n  url: " + rc.URL + "\n  credentials_file: " + rc.CredentialsFile +
		"\n  addressing: path\n  timeout: 20s\n  retries: 8\n  part_size: 5242880\n" +
		"volume_size: 2MiB\nencryption:\n  mode: passphrase\n  passphrase_file: " + filepath.Join(dir, "pass") + "\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "pass"), []byte("s3 test passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// randomTree is a tree of n incompressible files of size bytes each.
func randomTree(t *testing.T, n, size int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	for i := range n {
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+strings.Repeat("x", i/26)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// manifests counts the committed sets (manifest objects) in bucket.
func manifests(t *testing.T, cl *s3test.Cluster, bucket string) int {
	t.Helper()
	n := 0
	for o := range cl.Client(s3test.Admin).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", bucket, o.Err)
		}
		if strings.Contains(o.Key, "/manifest.json") {
			n++
		}
	}
	return n
}

// waitObjects waits until bucket holds a volume object (an upload has
// started and finished at least once).
func waitObjects(t *testing.T, cl *s3test.Cluster, bucket string, done <-chan struct{}) {
	t.Helper()
	c := cl.Client(s3test.Admin)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			t.Fatal("the backup ended before the fault could be injected")
		default:
		}
		for o := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil && strings.Contains(o.Key, "/vol-") {
				return
			}
		}
	}
	t.Fatal("no volume was uploaded")
}

func TestS3BackupRestore(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{})
	cl.MakeBucket("bkt")
	src := sampleTree(t, 0)
	cfg := s3Config(t, cl, s3test.Admin, "bkt", src, "")
	mustRun(t, "backup", "--config", cfg)
	if err := os.WriteFile(filepath.Join(src, "added-after-full"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", cfg)
	out := filepath.Join(t.TempDir(), "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	mustRun(t, "verify", "--config", cfg)
	if n := manifests(t, cl, "bkt"); n != 2 {
		t.Fatalf("%d sets in the bucket, want 2", n)
	}
}

// TestS3Faults: each fault fails the run with one line on stderr and exit
// 1, and commits no set.
func TestS3Faults(t *testing.T) {
	reader := s3test.Identity{Name: "reader", AccessKey: "backtoryreader", SecretKey: "reader-secret", Actions: []string{"Read", "List"}}
	cl := s3test.Start(t, s3test.Config{Identities: []s3test.Identity{reader}})
	cl.MakeBucket("bkt")
	src := sampleTree(t, 0)
	wrong := s3test.Identity{Name: "wrong", AccessKey: s3test.Admin.AccessKey, SecretKey: "not-the-secret"}
	unknown := s3test.Identity{Name: "unknown", AccessKey: "nosuchkey", SecretKey: "x"}
	tests := []struct {
		name   string
		id     s3test.Identity
		bucket string
		want   string
	}{
		{"wrong secret", wrong, "bkt", "secret key is wrong"},
		{"unknown key", unknown, "bkt", "does not know this access key"},
		{"missing bucket", s3test.Admin, "nosuchbucket", `bucket "nosuchbucket" does not exist`},
		{"no write permission", reader, "bkt", "access denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s3Config(t, cl, tc.id, tc.bucket, src, "")
			code, stderr := backtory(t, "backup", "--config", cfg)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitFailed || !strings.Contains(stderr, tc.want) {
				t.Fatalf("backup: exit %d, stderr %q; want exit 1 and %q", code, stderr, tc.want)
			}
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "backtory: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("the error is not one line: %q", stderr)
			}
			if n := manifests(t, cl, "bkt"); n != 0 {
				t.Fatalf("%d sets committed", n)
			}
			// Reported as any failed run: status says so, and exits 1.
			code, out, _ := backtoryOut(t, "status", "--config", cfg)
			if code != exitFailed || !strings.HasPrefix(out, "root: failure") {
				t.Fatalf("status after the fault: exit %d, %q", code, out)
			}
		})
	}
}

// TestS3StoreFull: a store with room for a few MB refuses the upload; the
// run fails in one line and commits nothing.
func TestS3StoreFull(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{VolumeSizeLimitMB: 1, MaxVolumes: 2})
	cl.MakeBucket("bkt")
	src := randomTree(t, 12, 1<<20)
	cfg := s3Config(t, cl, s3test.Admin, "bkt", src, "")
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "retries: 8", "retries: 3", 1)), 0o600)
	code, stderr := backtory(t, "backup", "--config", cfg)
	if code != exitFailed || !isErrorLine(lastLine(stderr)) {
		t.Fatalf("backup into a full store: exit %d, stderr %q; want exit 1 and one error line", code, stderr)
	}
	t.Logf("the error: %s", stderr)
	if n := manifests(t, cl, "bkt"); n != 0 {
		t.Fatalf("%d sets committed into a full store", n)
	}
	if code, out, _ := backtoryOut(t, "status", "--config", cfg); code != exitFailed || !strings.HasPrefix(out, "root: failure") {
		t.Fatalf("status after a full store: exit %d, %q", code, out)
	}
}

// TestS3VolumeServerKilled kills one of the three volume servers while a
// backup uploads: replication keeps every object, the run completes and
// verify passes.
func TestS3VolumeServerKilled(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{})
	cl.MakeBucket("bkt")
	src := randomTree(t, 24, 1<<20)
	cfg := s3Config(t, cl, s3test.Admin, "bkt", src, "")
	code, stderr := faultMidRun(t, cl, "bkt", cfg, func() { cl.Volumes[1].Kill() })
	if code != exitOK {
		t.Fatalf("backup with a volume server killed: exit %d\n%s", code, stderr)
	}
	mustRun(t, "verify", "--config", cfg)
	out := filepath.Join(t.TempDir(), "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
}

// TestS3GatewayRestarted restarts the S3 gateway while a backup uploads:
// the backend retries, and the run succeeds.
func TestS3GatewayRestarted(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{})
	cl.MakeBucket("bkt")
	src := randomTree(t, 24, 1<<20)
	cfg := s3Config(t, cl, s3test.Admin, "bkt", src, "")
	code, stderr := faultMidRun(t, cl, "bkt", cfg, func() {
		cl.Gateway.Kill()
		time.Sleep(time.Second)
		cl.Gateway.Launch()
	})
	if code != exitOK {
		t.Fatalf("backup with the gateway restarted: exit %d\n%s", code, stderr)
	}
	mustRun(t, "verify", "--config", cfg)
}

// faultMidRun runs a backup and calls fault once its first volume is
// uploaded; it returns the backup's exit code and stderr.
func faultMidRun(t *testing.T, cl *s3test.Cluster, bucket, cfg string, fault func()) (int, string) {
	t.Helper()
	var code int
	var stderr string
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		code, _, stderr = backtoryOut(t, "backup", "--config", cfg, "--verbose", "--log-format", "json")
	}()
	waitObjects(t, cl, bucket, done)
	fault()
	select {
	case <-done:
		t.Log("the backup ended while the fault was injected")
	default:
		t.Log("the fault was injected while the backup ran")
	}
	wg.Wait()
	t.Logf("retries logged: %d", strings.Count(stderr, "retrying"))
	return code, stderr
}

// lastLine is the last line of a command's stderr: its error, after the
// timestamped log lines that came before it.
func lastLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	return lines[len(lines)-1]
}

// isErrorLine reports whether l is the one-line error backtory ends with
// (no timestamp, unlike the log lines).
func isErrorLine(l string) bool { return strings.HasPrefix(l, "backtory: ") }
