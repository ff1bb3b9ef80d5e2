package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/backtory/backtory/internal/s3test"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/remote/remotetest"
)

// TestS3Conformance runs the suite on a real SeaweedFS cluster (three
// volume servers, replication 001), each subtest under its own prefix.
func TestS3Conformance(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{})
	cl.MakeBucket("conformance")
	n := 0
	remotetest.Run(t, func(t *testing.T) remote.Backend {
		n++
		b, err := remote.Open(context.Background(), cl.RemoteConfig(s3test.Admin, "conformance", "t"+string(rune('a'+n))), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestS3CreateNeverOverwrites: remote.Create refuses an existing name, and
// the store itself enforces the conditional write that Create sends
// (If-None-Match: *), as docs/s3.md says of SeaweedFS.
func TestS3CreateNeverOverwrites(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{})
	cl.MakeBucket("create")
	ctx := context.Background()
	b, err := remote.Open(ctx, cl.RemoteConfig(s3test.Admin, "create", "p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := remote.Create(ctx, b, "set/manifest.json", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	err = remote.Create(ctx, b, "set/manifest.json", strings.NewReader("second"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing object: %v, want fs.ErrExist", err)
	}
	// The store's own check, without backtory's HEAD first.
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	_, err = cl.Client(s3test.Admin).PutObject(ctx, "create", "p/set/manifest.json", strings.NewReader("third"), 5, opts)
	if code := minio.ToErrorResponse(err).Code; code != "PreconditionFailed" {
		t.Fatalf("a conditional PUT over an existing object: %v (code %q), want PreconditionFailed", err, code)
	}
	rc, err := b.Get(ctx, "set/manifest.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != "first" {
		t.Fatalf("the object holds %q, want \"first\"", got)
	}
}

// TestS3TLS: s3:// speaks https and verifies the gateway against tls_ca;
// without it, or with another CA, the first request fails in one line.
func TestS3TLS(t *testing.T) {
	cl := s3test.Start(t, s3test.Config{TLS: true})
	cl.MakeBucket("tls")
	ctx := context.Background()
	cfg := cl.RemoteConfig(s3test.Admin, "tls", "p")
	cfg.URL = fmt.Sprintf("s3://127.0.0.1:%d/tls/p", cl.HTTPSPort)
	for _, tc := range []struct{ name, ca, want string }{
		{"system roots", "", "not trusted"},
		{"other CA", cl.OtherCA, "not trusted"},
		{"its CA", cl.CAFile, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.TLSCA = tc.ca
			c.Retries = 1
			b, err := remote.Open(ctx, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			err = b.Put(ctx, "x", strings.NewReader("over TLS"))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Put = %v, want one line containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info, err := b.Stat(ctx, "x"); err != nil || info.Size != 8 {
				t.Fatalf("Stat = %+v, %v", info, err)
			}
		})
	}
}
