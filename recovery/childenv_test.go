package recovery

import (
	"context"
	"strings"
	"testing"
)

// TestCaptureToolsGetNoSecrets: a layout capture tool's /proc/PID/environ
// and cmdline hold neither the remote password nor the key passphrase.
func TestCaptureToolsGetNoSecrets(t *testing.T) {
	t.Setenv("BACKTORY_REMOTE_PASSWORD", "remote-secret")
	t.Setenv("BACKTORY_KEY_PASSPHRASE", "key-secret")
	c := &capturer{ctx: context.Background(), l: &Layout{}}
	out, ok := c.run("sh", "-c", `tr '\000' '\n' < /proc/$$/environ; tr '\000' ' ' < /proc/$$/cmdline`)
	if !ok || !strings.Contains(string(out), "LC_ALL=C") {
		t.Fatalf("not the child's environment (%v):\n%s", c.l.Errors, out)
	}
	for _, s := range []string{"remote-secret", "key-secret"} {
		if strings.Contains(string(out), s) {
			t.Errorf("the child sees %s:\n%s", s, out)
		}
	}
}
