package remote_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/remote/remotetest"
)

func TestLocalConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remote.Backend {
		b, err := remote.Open(context.Background(), remote.Config{URL: "file://" + t.TempDir()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestLocalErrors(t *testing.T) {
	ro := t.TempDir()
	os.Chmod(ro, 0o500)
	t.Cleanup(func() { os.Chmod(ro, 0o700) })
	tests := []struct {
		url, want string
	}{
		{"file://relative/dir", "absolute path"},
		{"gopher://x/y", "unsupported scheme"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		tests = append(tests, struct{ url, want string }{"file://" + filepath.Join(ro, "sub"), "permission denied"})
	}
	for _, tc := range tests {
		_, err := remote.Open(context.Background(), remote.Config{URL: tc.url}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
	}
}
