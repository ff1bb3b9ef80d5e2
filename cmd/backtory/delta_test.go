package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// deltaNeedTool returns the path of an external tool, skipping the test
// when it is missing, or failing it when BACKTORY_TEST_STRICT is set.
func deltaNeedTool(t *testing.T, name string) string {
	t.Helper()
	return testenv.NeedTool(t, name)
}

func TestDeltaCommand(t *testing.T) {
	rdiff := deltaNeedTool(t, "rdiff")
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	old := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{3}).Read(old)
	new := append(append(bytes.Clone(old[:1<<20]), "an insert"...), old[1<<20+5000:]...)
	os.WriteFile(p("old"), old, 0o600)
	os.WriteFile(p("new"), new, 0o600)
	run := func(stdin io.Reader, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := deltaCommand(args, stdin, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(nil, args...)
		if err != nil {
			t.Fatalf("delta %v: %v", args, err)
		}
		return out
	}
	must("keygen", p("key"))
	if _, err := run(nil, "keygen", p("key")); err == nil {
		t.Error("keygen overwrote a key")
	}
	must("signature", "--key-file", p("key"), p("old"), p("sig"))
	stats := must("delta", "--stats", "--key-file", p("key"), p("sig"), p("new"), p("delta"))
	if !strings.Contains(stats, "literal") {
		t.Errorf("no stats: %q", stats)
	}
	if out, err := exec.Command(rdiff, "patch", p("old"), p("delta"), p("by-rdiff")).CombinedOutput(); err != nil {
		t.Fatalf("rdiff patch: %v\n%s", err, out)
	}
	must("patch", p("old"), p("delta"), p("by-us"))
	for _, f := range []string{"by-rdiff", "by-us"} {
		if got, _ := os.ReadFile(p(f)); !bytes.Equal(got, new) {
			t.Errorf("%s differs from the new file", f)
		}
	}
	d, _ := os.ReadFile(p("delta"))
	if len(d) > 10_000 {
		t.Errorf("delta is %d bytes for a 5 KB change", len(d))
	}

	// Streams: signature from stdin to stdout, patch from stdin to stdout.
	sig, err := run(bytes.NewReader(old), "signature", "--key-file", p("key"), "-", "-")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("sig2"), []byte(sig), 0o600)
	must("delta", "--key-file", p("key"), p("sig2"), p("new"), p("delta2"))
	d2, _ := os.ReadFile(p("delta2"))
	out, err := run(bytes.NewReader(d2), "patch", p("old"), "-", "-")
	if err != nil || out != string(new) {
		t.Fatalf("patch through pipes: %v", err)
	}

	// Errors: usage (exit 2) or failure (exit 1), and no output file left behind.
	os.WriteFile(p("other-key"), bytes.Repeat([]byte{1}, 32), 0o600)
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"signature", p("old"), p("x")}, true, "--key-file is required"},
		{[]string{"signature", "--key-file", p("old"), p("old"), p("x")}, true, "want 32 raw bytes"},
		{[]string{"signature", "--key-file", p("key"), "--block-len", "3", p("old"), p("x")}, true, "outside"},
		{[]string{"delta", "--key-file", p("other-key"), p("sig"), p("new"), p("x")}, false, "different key"},
		{[]string{"delta", "--key-file", p("key"), p("new"), p("new"), p("x")}, false, "bad magic"},
		{[]string{"patch", p("old"), p("sig"), p("x")}, false, "not a librsync delta"},
		{[]string{"patch", "-", p("delta"), p("x")}, true, "must be a file"},
		{[]string{"frobnicate"}, true, "unknown subcommand"},
	} {
		_, err := run(nil, tc.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
			t.Errorf("%v: got %v, want a (usage=%v) error containing %q", tc.args, err, tc.usage, tc.want)
		}
		if _, err := os.Stat(p("x")); err == nil {
			t.Errorf("%v: left an output file", tc.args)
		}
	}
	if left, _ := filepath.Glob(p(".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
