// Package testenv decides, once for every test, what happens when
// something a test needs is missing: a tool, a server, root, a loop
// device, a pty, a tmpfs. Outside strict mode the test is skipped with the
// reason; with BACKTORY_TEST_STRICT=1 (make test, CI) it fails, with no
// exception, so a missing component can never pass as a skip.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// StrictEnv is the environment variable that turns every skip into a failure.
const StrictEnv = "BACKTORY_TEST_STRICT"

// Strict reports whether missing components fail tests.
func Strict() bool { return os.Getenv(StrictEnv) != "" }

// Missing ends the test because what is missing: a failure under strict
// mode, a skip otherwise. hint says how to get it ("run test/deps/ftp.sh").
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	msg := what + " is missing"
	if hint != "" {
		msg += ": " + hint
	}
	if Strict() {
		t.Fatal(msg)
		return
	}
	t.Skip(msg)
}

// Need ends the test (as Missing does) when err is not nil: err says what
// could not be had ("loop device: losetup: ...").
func Need(t testing.TB, err error, hint string) {
	t.Helper()
	if err != nil {
		Missing(t, err.Error(), hint)
	}
}

// NeedTool returns the path of the program name, or ends the test as
// Missing does. The test/deps/*.sh scripts install every tool tests use.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, "test/deps/*.sh installs it")
	}
	return p
}

// NeedRoot ends the test (as Missing does) unless it runs as root; why
// says what root is needed for.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root", fmt.Sprintf("run the tests as root (%s)", why))
	}
}
