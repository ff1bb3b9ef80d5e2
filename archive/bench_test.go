package archive_test

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/treecmp"
	"github.com/backtory/backtory/remote"
)

// benchTree is the tree the benchmarks read: $BACKTORY_BENCH_TREE, or a
// generated sample.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	root := os.Getenv("BACKTORY_BENCH_TREE")
	if root == "" {
		root = filepath.Join(b.TempDir(), "src")
		os.Mkdir(root, 0o755)
		if err := treecmp.BuildSample(root, treecmp.SampleOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var size int64
	filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	return root, size
}

// reportCPU reports the process's CPU time (user and system) per
// operation, from the call to the call of the function it returns: on a
// shared machine it varies less than the wall time.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWalk: the sorted walk with lstat and xattrs, no content.
func BenchmarkWalk(b *testing.B) {
	root, _ := benchTree(b)
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := archive.Plan(context.Background(), archive.BackupOptions{Root: root}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackupFull: walk, read, tar, hash, sign and compress a full
// (unsealed) to a local remote. b.SetBytes is the tree's content.
func BenchmarkBackupFull(b *testing.B) {
	root, size := benchTree(b)
	b.SetBytes(size)
	for b.Loop() {
		dir := b.TempDir()
		rem, _ := remote.NewLocal(filepath.Join(dir, "remote"))
		spool := filepath.Join(dir, "spool")
		os.Mkdir(spool, 0o700)
		r := &archive.Repository{Backend: rem, SpoolDir: spool, Host: "h", Source: "s"}
		_, err := r.Backup(context.Background(), archive.BackupOptions{Root: root,
			VolumeSize: 256 << 20, Compression: archive.Compression{Kind: "zstd", Level: 3}, Uploads: 2})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackupDiff: a differential of an unchanged tree against its
// full: the walk, the merge-join with the full's table, the new table.
func BenchmarkBackupDiff(b *testing.B) {
	root, _ := benchTree(b)
	dir := b.TempDir()
	rem, _ := remote.NewLocal(filepath.Join(dir, "remote"))
	spool := filepath.Join(dir, "spool")
	os.Mkdir(spool, 0o700)
	r := &archive.Repository{Backend: rem, SpoolDir: spool, Host: "h", Source: "s"}
	opt := archive.BackupOptions{Root: root, VolumeSize: 256 << 20,
		Compression: archive.Compression{Kind: "zstd", Level: 3}, Uploads: 2,
		Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	full, err := r.Backup(ctx, opt)
	if err != nil {
		b.Fatal(err)
	}
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		base, err := r.OpenBase(ctx, full.ID, dirCache(filepath.Join(dir, "cache")))
		if err != nil {
			b.Fatal(err)
		}
		o := opt
		o.Base, o.Started = base, opt.Started.Add(time.Duration(i+1)*time.Second)
		if _, err := r.Backup(ctx, o); err != nil {
			b.Fatal(err)
		}
		base.Close()
	}
}

// BenchmarkResumeFull: a full of 64 MiB of incompressible files in 16
// volumes, uninterrupted without a checkpoint (plain), with one (what
// backup does), and resumed after the first 8 volumes were uploaded (the
// resumed run only is timed). docs/benchmarks.md has the ratios.
func BenchmarkResumeFull(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	rng := rand.New(rand.NewSource(19))
	for i := range 64 {
		buf := make([]byte, 1<<20)
		rng.Read(buf)
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d", i)), buf, 0o644)
	}
	b.SetBytes(64 << 20)
	ctx := context.Background()
	setup := func(b *testing.B, failOn string) (*archive.Repository, archive.BackupOptions) {
		dir := b.TempDir()
		rem, _ := remote.NewLocal(filepath.Join(dir, "remote"))
		spool := filepath.Join(dir, "spool")
		os.Mkdir(spool, 0o700)
		fb := &flakyBackend{Backend: rem, failOn: failOn}
		r := &archive.Repository{Backend: fb, SpoolDir: spool, Host: "h", Source: "s"}
		opt := archive.BackupOptions{Root: src, VolumeSize: 4 << 20, Compression: archive.Compression{Kind: "zstd", Level: 3}, Uploads: 2,
			Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		if failOn != "" || b.Name() == "BenchmarkResumeFull/checkpointed" {
			opt.Resume = &archive.Resume{Dir: filepath.Join(dir, "resume"), Fingerprint: "fp"}
		}
		if failOn != "" {
			if _, err := r.Backup(ctx, opt); err == nil {
				b.Fatal("the interrupted run succeeded")
			}
			fb.failOn = ""
			ck, reason, err := r.CheckResume(ctx, opt.Resume.Dir, "fp", "")
			if err != nil || ck == nil {
				b.Fatalf("no checkpoint: %v %s", err, reason)
			}
			opt.Resume.From = ck
		}
		return r, opt
	}
	for _, c := range []struct{ name, failOn string }{{"plain", ""}, {"checkpointed", ""}, {"resumed", "vol-000009.tar.zst"}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r, opt := setup(b, c.failOn)
				b.StartTimer()
				m, err := r.Backup(ctx, opt)
				if err != nil {
					b.Fatal(err)
				}
				if opt.Resume != nil && opt.Resume.From != nil {
					b.ReportMetric(float64(len(opt.Resume.From.Volumes))/float64(len(m.Volumes)), "held/vols")
				}
			}
		})
	}
}

// BenchmarkRenameBigFile: a differential after the one big file of the
// tree was renamed ($BACKTORY_BENCH_RENAME_MB MiB of random data, default
// 256). It reports the differential's stored bytes against the file's size
// and its time against the full's (both measured here).
func BenchmarkRenameBigFile(b *testing.B) {
	mb := 256
	if s := os.Getenv("BACKTORY_BENCH_RENAME_MB"); s != "" {
		if _, err := fmt.Sscan(s, &mb); err != nil {
			b.Fatal(err)
		}
	}
	size := int64(mb) << 20
	dir := b.TempDir()
	root := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(root, "a"), 0o755)
	os.MkdirAll(filepath.Join(root, "b"), 0o755)
	f, err := os.Create(filepath.Join(root, "a", "big"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.New(rand.NewSource(1)), size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	rem, _ := remote.NewLocal(filepath.Join(dir, "remote"))
	spool := filepath.Join(dir, "spool")
	os.Mkdir(spool, 0o700)
	r := &archive.Repository{Backend: rem, SpoolDir: spool, Host: "h", Source: "s"}
	opt := archive.BackupOptions{Root: root, VolumeSize: 256 << 20,
		Compression: archive.Compression{Kind: "zstd", Level: 3}, Uploads: 2,
		Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	start := time.Now()
	full, err := r.Backup(ctx, opt)
	if err != nil {
		b.Fatal(err)
	}
	fullTime := time.Since(start)
	names := []string{filepath.Join(root, "a", "big"), filepath.Join(root, "b", "renamed")}
	var stored int64
	var diffTime time.Duration
	for i := 0; b.Loop(); i++ {
		if err := os.Rename(names[i%2], names[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		base, err := r.OpenBase(ctx, full.ID, dirCache(filepath.Join(dir, "cache")))
		if err != nil {
			b.Fatal(err)
		}
		o := opt
		o.Base, o.Started = base, opt.Started.Add(time.Duration(i+1)*time.Second)
		m, err := r.Backup(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		base.Close()
		diffTime += time.Since(start)
		stored += m.Stats.StoredBytes
	}
	b.ReportMetric(float64(stored)/float64(b.N)/float64(size), "stored/size")
	b.ReportMetric(float64(diffTime)/float64(b.N)/float64(fullTime), "time/full")
}
