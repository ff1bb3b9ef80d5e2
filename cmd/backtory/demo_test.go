package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// TestDemo runs `make demo`'s script (scripts/demo.sh) with a built binary:
// the sealed full and differential, each restored and compared, the
// stock-tool restore, verify --deep and recover.sh plan must all pass.
func TestDemo(t *testing.T) {
	for _, tool := range []string{"gpg", "zstd", "tar", "sha256sum"} {
		testenv.NeedTool(t, tool)
	}
	bin := buildStatic(t)
	work := filepath.Join(t.TempDir(), "demo")
	out, err := exec.Command("sh", "../../scripts/demo.sh", bin, work).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "DEMO OK") {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"kind=\"diff\" why=", "gpg -d vol-000001.tar.zst.pgp | zstd -d | tar -x", "2 sets verified", "recover.sh plan for host demo"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo does not show %q:\n%s", want, out)
		}
	}
}
