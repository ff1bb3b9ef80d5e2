package remote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/backtory/backtory/remote"
)

var errFlaky = errors.New("flaky")

// flaky is a local directory whose Puts fail after reading half the
// source, fails times.
type flaky struct {
	remote.Backend
	fails int
	tries int
}

func (f *flaky) Put(ctx context.Context, name string, r io.Reader) error {
	f.tries++
	if f.tries <= f.fails {
		io.CopyN(io.Discard, r, 3)
		return errFlaky
	}
	return f.Backend.Put(ctx, name, r)
}

func TestWithRetryPut(t *testing.T) {
	policy := remote.RetryPolicy{Attempts: 3, Transient: func(err error) bool { return errors.Is(err, errFlaky) }}
	for _, tc := range []struct {
		name  string
		src   io.Reader
		fails int
		ok    bool
		tries int
	}{
		{"a seekable source is rewound", strings.NewReader("abcdef"), 2, true, 3},
		{"attempts are counted", strings.NewReader("abcdef"), 3, false, 3},
		{"a read stream is not sent again", io.MultiReader(strings.NewReader("abcdef")), 1, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, err := remote.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			f := &flaky{Backend: local, fails: tc.fails}
			b := remote.WithRetry(f, policy, nil)
			err = b.Put(context.Background(), "obj", tc.src)
			if (err == nil) != tc.ok || f.tries != tc.tries {
				t.Fatalf("Put = %v after %d tries, want ok=%v after %d", err, f.tries, tc.ok, tc.tries)
			}
			if !tc.ok {
				return
			}
			rc, err := b.Get(context.Background(), "obj", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got, _ := io.ReadAll(rc); !bytes.Equal(got, []byte("abcdef")) {
				t.Fatalf("stored %q", got)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	for conns, want := range map[int]int{0: 2, 1: 2, 5: 5} {
		b, err := remote.Open(context.Background(), remote.Config{URL: "file://" + t.TempDir(), Connections: conns}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Capabilities(); got.Connections != want || got.ResumablePut {
			t.Errorf("connections: %d: Capabilities() = %+v, want %d connections, no resumable put", conns, got, want)
		}
	}
}
