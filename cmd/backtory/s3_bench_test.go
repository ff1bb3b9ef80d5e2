package main

// BenchmarkS3Peers measures, in one run on one SeaweedFS cluster, backtory's
// full and second backup against restic's to the same S3 gateway, and
// backtory's full against a plain S3 client uploading the same sealed bytes
// (the limit). bench/s3.sh runs it; it reports ratios (docs/benchmarks.md).

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/backtory/backtory/internal/s3test"
	"github.com/backtory/backtory/internal/testenv"
)

func BenchmarkS3Peers(b *testing.B) {
	data := os.Getenv("BACKTORY_BENCH_S3_DATA") // a tree made by bench/peers/dataset.sh
	if data == "" {
		b.Skip("set BACKTORY_BENCH_S3_DATA (bench/s3.sh does)")
	}
	testenv.NeedTool(b, "restic")
	mutated := os.Getenv("BACKTORY_BENCH_S3_MUTATED") // the same tree after mutate.sh
	cl := s3test.Start(b, s3test.Config{VolumeSizeLimitMB: 1024, MaxVolumes: 30})
	for _, bk := range []string{"backtory", "restic", "plain"} {
		cl.MakeBucket(bk)
	}
	dir := b.TempDir()
	rc := cl.RemoteConfig(s3test.Admin, "backtory", "")
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("bench passphrase\n"), 0o600)
	cfgFor := func(src string) string {
		cfg := filepath.Join(dir, filepath.Base(src)+".yaml")
		body := "host: bench\nstate_dir: " + filepath.Join(dir, "state") + "\nsources:\n  - name: root\n    path: " + src + "\n" +
			"remote:\n  url: " + strings.TrimSuffix(rc.URL, "/") + "\n  credentials_file: " + rc.CredentialsFile +
			"\n  addressing: path\n  connections: 4\nencryption:\n  mode: passphrase\n  passphrase_file: " + pass + "\n"
		os.WriteFile(cfg, []byte(body), 0o600)
		return cfg
	}
	timed := func(name string, f func() error) time.Duration {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		d := time.Since(start)
		b.Logf("%-22s %8.2fs", name, d.Seconds())
		return d
	}
	backtoryRun := func(src string, args ...string) error {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"backup", "--config", cfgFor(src)}, args...), &stdout, &stderr); code != 0 {
			return fmt.Errorf("exit %d: %s", code, stderr.String())
		}
		return nil
	}
	restic := func(args ...string) error {
		cmd := exec.Command("restic", append([]string{"-r", "s3:http://" + cl.Endpoint() + "/restic", "--cache-dir", filepath.Join(dir, "restic-cache")}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3test.Admin.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3test.Admin.SecretKey,
			"RESTIC_PASSWORD=bench passphrase", "GOMAXPROCS=2")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}

	b.ResetTimer()
	for range b.N {
		btFull := timed("backtory full", func() error { return backtoryRun(data, "--full") })
		if err := restic("init"); err != nil {
			b.Fatal(err)
		}
		rsFull := timed("restic full", func() error { return restic("backup", data) })
		b.ReportMetric(btFull.Seconds()/rsFull.Seconds(), "backtory/restic-full")
		if mutated != "" {
			// The second backup: the same source path, its content mutated.
			if err := os.Rename(data, data+".orig"); err != nil {
				b.Fatal(err)
			}
			if err := os.Rename(mutated, data); err != nil {
				b.Fatal(err)
			}
			btSecond := timed("backtory second", func() error { return backtoryRun(data) })
			rsSecond := timed("restic second", func() error { return restic("backup", data) })
			os.Rename(data, mutated)
			os.Rename(data+".orig", data)
			b.ReportMetric(btSecond.Seconds()/rsSecond.Seconds(), "backtory/restic-second")
		}
		// The limit: the full's sealed objects, uploaded again by a plain
		// client, four at a time (backtory's connections).
		objs := filepath.Join(dir, "objects")
		var total int64
		timedDownload(b, cl, objs, &total)
		plain := timed("plain upload", func() error { return plainUpload(cl, objs) })
		b.ReportMetric(btFull.Seconds()/plain.Seconds(), "backtory-full/plain-upload")
		b.ReportMetric(float64(total)/plain.Seconds()/1e6, "plain-MB/s")
		b.ReportMetric(float64(total)/btFull.Seconds()/1e6, "backtory-stored-MB/s")
	}
}

// timedDownload fetches the full's objects from the backtory bucket into dir.
func timedDownload(b *testing.B, cl *s3test.Cluster, dir string, total *int64) {
	c := cl.Client(s3test.Admin)
	ctx := context.Background()
	for o := range c.ListObjects(ctx, "backtory", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			b.Fatal(o.Err)
		}
		if !strings.Contains(o.Key, "/full-") {
			continue
		}
		p := filepath.Join(dir, o.Key)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := c.FGetObject(ctx, "backtory", o.Key, p, minio.GetObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		*total += o.Size
	}
}

// plainUpload puts every file under dir into the plain bucket, four at a
// time, with minio-go's defaults.
func plainUpload(cl *s3test.Cluster, dir string) error {
	c := cl.Client(s3test.Admin)
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	work := make(chan string)
	errs := make(chan error, len(paths))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				_, err := c.FPutObject(context.Background(), "plain", strings.TrimPrefix(p, dir+"/"), p, minio.PutObjectOptions{})
				errs <- err
			}
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
