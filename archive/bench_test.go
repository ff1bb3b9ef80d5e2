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

// BenchmarkWalk: the sorted walk with lstat and xattrs, no content.
func BenchmarkWalk(b *testing.B) {
	root, _ := benchTree(b)
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
