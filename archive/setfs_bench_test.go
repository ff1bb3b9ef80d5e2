package archive_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/remote"
)

// BenchmarkFirstByte: time to the first 4 KiB of a file in the middle of
// one 256 MiB volume (64 files of 4 MiB of random bytes), unsealed and
// sealed: through SetFS (a ranged read from the file's frame; for a sealed
// volume, cold includes downloading, checking and decrypting the volume
// into the VolumeCache, warm reads the cached copy) against reading it
// sequentially as a restore of that one path does today. docs/benchmarks.md
// has the figures.
func BenchmarkFirstByte(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	os.Mkdir(src, 0o755)
	buf := make([]byte, 4<<20)
	for i := 0; i < 64; i++ {
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	const mid = "f32"
	keys := b.TempDir()
	k, err := seal.GenerateKey("bench", "")
	if err != nil {
		b.Fatal(err)
	}
	if err := k.SaveFiles(filepath.Join(keys, "h.pub"), filepath.Join(keys, "h.sec"), nil); err != nil {
		b.Fatal(err)
	}
	box, err := seal.New(seal.Config{SigningKey: filepath.Join(keys, "h.sec"), Recipients: []string{filepath.Join(keys, "h.pub")}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, sealed := range []bool{false, true} {
		dir := b.TempDir()
		rem, _ := remote.NewLocal(filepath.Join(dir, "remote"))
		spool := filepath.Join(dir, "spool")
		os.Mkdir(spool, 0o700)
		r := &archive.Repository{Backend: rem, SpoolDir: spool, Host: "h", Source: "s"}
		name := "unsealed"
		if sealed {
			r.Sealer, name = box, "sealed"
		}
		m, err := r.Backup(ctx, archive.BackupOptions{Root: src, VolumeSize: 1 << 30,
			Compression: archive.Compression{Kind: "zstd", Level: 3}, Uploads: 2})
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Volumes) != 1 {
			b.Fatalf("%d volumes", len(m.Volumes))
		}
		firstByte := func(b *testing.B, s *archive.SetFS) {
			f, err := s.Open(mid)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.ReadAt(make([]byte, 4096), 0); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.Run(name+"/sequential", func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Restore(ctx, m, archive.RestoreOptions{Paths: []string{mid}, DryRun: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/setfs-cold", func(b *testing.B) {
			for b.Loop() {
				cache, err := archive.NewVolumeCache(filepath.Join(dir, "cache"), 1<<30)
				if err != nil {
					b.Fatal(err)
				}
				s, err := r.OpenSet(ctx, m.ID, cache)
				if err != nil {
					b.Fatal(err)
				}
				firstByte(b, s)
				cache.RemoveAll()
			}
		})
		if sealed {
			b.Run(name+"/setfs-warm", func(b *testing.B) {
				cache, err := archive.NewVolumeCache(filepath.Join(dir, "cache"), 1<<30)
				if err != nil {
					b.Fatal(err)
				}
				defer cache.RemoveAll()
				s, err := r.OpenSet(ctx, m.ID, cache)
				if err != nil {
					b.Fatal(err)
				}
				firstByte(b, s)
				for b.Loop() {
					firstByte(b, s)
				}
			})
		}
	}
}
