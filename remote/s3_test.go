package remote_test

import (
	"context"
	"errors"
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
