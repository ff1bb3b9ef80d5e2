package snapshot

import (
	"context"
	"strings"
	"testing"
)

// TestToolsGetNoSecrets: a snapshot tool's /proc/PID/environ and cmdline
// hold neither the remote password nor the key passphrase.
func TestToolsGetNoSecrets(t *testing.T) {
	t.Setenv("BACKTORY_REMOTE_PASSWORD", "remote-secret")
	t.Setenv("BACKTORY_KEY_PASSPHRASE", "key-secret")
	out, err := run(context.Background(), "sh", "-c", `tr '\000' '\n' < /proc/$$/environ; tr '\000' ' ' < /proc/$$/cmdline`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "LC_ALL=C") {
		t.Fatalf("not the child's environment:\n%s", out)
	}
	for _, s := range []string{"remote-secret", "key-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("the child sees %s:\n%s", s, out)
		}
	}
}
