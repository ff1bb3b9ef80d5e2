package remote_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/remote/remotetest"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want remote.Rate
		err  bool
	}{
		{in: "10MiB/s", want: 10 << 20},
		{in: "500KB/s", want: 500e3},
		{in: "1GiB", want: 1 << 30},
		{in: "2048", want: 2048},
		{in: " 64 KiB /s ", want: 64 << 10},
		{in: "1B/s", want: 1},
		{in: "10Mbit/s", err: true},
		{in: "-5MiB/s", err: true},
		{in: "fast", err: true},
		{in: "99999999999999TiB/s", err: true},
	} {
		got, err := remote.ParseRate(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestBandwidthLimitConformance runs the backend suite through the
// limiter: it must change nothing but the pace.
func TestBandwidthLimitConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remote.Backend {
		b, err := remote.Open(context.Background(), remote.Config{URL: "file://" + t.TempDir(), BWLimit: 1 << 30}, nil)
		check(t, err)
		return b
	})
}

// TestBandwidthLimit uploads two objects at once through a limited local
// and FTP remote: both arrive whole, and together they take at least 80%
// of the time the limit allows (the limit is shared by all uploads).
func TestBandwidthLimit(t *testing.T) {
	const limit = 1 << 20
	data := [][]byte{random(3 << 19), random(3 << 19)} // 3 MiB at 1 MiB/s: at least 2.4 s
	run := func(t *testing.T, b remote.Backend, stored func(name string) []byte) {
		ctx := context.Background()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(data))
		for i := range data {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// One object from a seekable source, one from a plain reader.
				var r io.Reader = bytes.NewReader(data[i])
				if i == 1 {
					r = io.MultiReader(r)
				}
				errs[i] = b.Put(ctx, fmt.Sprintf("set/vol-%d", i), r)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		for i, err := range errs {
			check(t, err)
			if got := stored(fmt.Sprintf("set/vol-%d", i)); !bytes.Equal(got, data[i]) {
				t.Fatalf("vol-%d: stored %d bytes that differ from the %d sent", i, len(got), len(data[i]))
			}
		}
		total := len(data[0]) + len(data[1])
		least := time.Duration(float64(total) / limit * 0.8 * float64(time.Second))
		t.Logf("%d bytes at %d B/s took %v (%.2f MiB/s)", total, limit, took, float64(total)/took.Seconds()/(1<<20))
		if took < least {
			t.Fatalf("%d bytes at %d B/s took %v, want at least %v", total, limit, took, least)
		}
	}
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		b, err := remote.Open(context.Background(), remote.Config{URL: "file://" + dir, BWLimit: limit}, nil)
		check(t, err)
		defer b.Close()
		run(t, b, func(name string) []byte {
			got, err := os.ReadFile(filepath.Join(dir, name))
			check(t, err)
			return got
		})
	})
	t.Run("vsftpd", func(t *testing.T) {
		s := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Plain})
		cfg := s.RemoteConfig("bw")
		cfg.BWLimit = limit
		b := openFTP(t, cfg)
		defer b.Close()
		run(t, b, func(name string) []byte {
			got, err := os.ReadFile(filepath.Join(s.Data, "bw", name))
			check(t, err)
			return got
		})
	})
}

// FuzzParseRate: any config text gives a rate of at least 0 or an error,
// and a rate written back in bytes per second reads the same.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10MiB/s", "500KB/s", "1", "99999999999TiB/s", "", " 7 GiB /s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := remote.ParseRate(s)
		if err != nil {
			return
		}
		if r < 0 {
			t.Fatalf("ParseRate(%q) = %d", s, r)
		}
		back, err := remote.ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %d, written %q, read back %d, %v", s, r, r.String(), back, err)
		}
	})
}
