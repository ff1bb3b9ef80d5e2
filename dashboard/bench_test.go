package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/dashboard"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/state"
)

// manySets writes n sets of a small tree on a local remote (a full every
// tenth, differentials between), each with its run record, one simulated
// hour apart, and returns the remote.
func manySets(b *testing.B, n int) remote.Backend {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	be, err := remote.NewLocal(filepath.Join(dir, "remote"))
	if err != nil {
		b.Fatal(err)
	}
	repo := &archive.Repository{Backend: be, SpoolDir: b.TempDir(), Host: "web1", Source: "root"}
	ctx := context.Background()
	t0 := time.Now().Add(-time.Duration(n) * time.Hour).Truncate(time.Second)
	var full string
	for i := range n {
		os.WriteFile(filepath.Join(src, "etc/hosts"), []byte(strings.Repeat("x", i+1)), 0o644)
		os.WriteFile(filepath.Join(src, "etc/fixed"), []byte("same"), 0o644)
		opt := archive.BackupOptions{SourcePath: src, Root: src, VolumeSize: 1 << 20,
			Compression: archive.Compression{Kind: "zstd", Level: 1}, Uploads: 2, Tool: "bench",
			Started: t0.Add(time.Duration(i) * time.Hour)}
		if i%10 != 0 {
			base, err := repo.OpenBase(ctx, full, noCache(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			opt.Base = base
		}
		m, err := repo.Backup(ctx, opt)
		if opt.Base != nil {
			opt.Base.Close()
		}
		if err != nil {
			b.Fatal(err)
		}
		if m.Kind == archive.KindFull {
			full = m.ID
		}
		rec, _ := json.Marshal(state.Run{Host: "web1", Source: "root", Started: opt.Started, Finished: opt.Started.Add(3 * time.Second),
			Outcome: "success", SetID: m.ID, Kind: string(m.Kind), Files: m.Stats.Files, Stored: m.Stats.StoredBytes})
		if err := repo.PutRunRecord(ctx, m.ID, opt.Started, rec); err != nil {
			b.Fatal(err)
		}
	}
	return be
}

type noCache string

func (d noCache) Path(host, source, set, object string) string {
	return filepath.Join(string(d), set+"."+object)
}

// BenchmarkSourcePage1000 loads the page of a source with 1,000 sets: the
// first load of a fresh server (every manifest and run record read) and
// the next ones (from its caches).
func BenchmarkSourcePage1000(b *testing.B) {
	be := manySets(b, 1000)
	newServer := func() *httptest.Server {
		s, err := dashboard.New(dashboard.Config{
			Sources: func(context.Context) ([]dashboard.SourceRef, error) {
				return []dashboard.SourceRef{{Host: "web1", Source: "root"}}, nil
			},
			Open: func(host, source string) (*archive.Repository, error) {
				return &archive.Repository{Backend: dashboard.ReadOnly(be), SpoolDir: b.TempDir(), Host: host, Source: source}, nil
			},
			MaxAge: 26 * time.Hour, KeepFulls: 4,
		})
		if err != nil {
			b.Fatal(err)
		}
		return httptest.NewServer(s)
	}
	load := func(b *testing.B, url string) {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `aria-label="timeline of 1000 sets"`) {
			b.Fatalf("%s: %s", url, resp.Status)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			srv := newServer()
			b.StartTimer()
			load(b, srv.URL+"/s/web1/root/")
			b.StopTimer()
			srv.Close()
			b.StartTimer()
		}
	})
	b.Run("warm", func(b *testing.B) {
		srv := newServer()
		defer srv.Close()
		load(b, srv.URL+"/s/web1/root/")
		for b.Loop() {
			load(b, srv.URL+"/s/web1/root/")
		}
	})
}
