package remote_test

import (
	"context"
	"testing"

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
