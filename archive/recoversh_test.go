package archive_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/recovery"
)

// TestRecoverShStockRefusesHostileSets runs `recover.sh files --stock` on
// crafted (unsealed) sets: each is refused naming the bad entry, and the
// canary directory beside the target is untouched.
func TestRecoverShStockRefusesHostileSets(t *testing.T) {
	for _, tool := range []string{"tar", "rdiff", "dash"} {
		testenv.NeedTool(t, tool)
	}
	for _, c := range []struct {
		name       string
		full, diff [][3]string
		want       string
	}{
		{".. in .backtory/deleted", nil, [][3]string{{".backtory/deleted", "../canary/secret\x00", ""}}, "../canary/secret: refusing to delete it"},
		{"deletion through a symlink", [][3]string{{"lnk", "", "@CANARY@"}}, [][3]string{{".backtory/deleted", "lnk/secret\x00", ""}}, "lnk/secret: refusing to delete it"},
		{"delta through a symlink", [][3]string{{"lnk", "", "@CANARY@"}}, [][3]string{{".backtory/delta/lnk/secret", "x", ""}}, "lnk/secret: refusing to patch it"},
		{"member below a symlink of the full", [][3]string{{"lnk", "", "@CANARY@"}}, [][3]string{{"lnk/evil", "x", ""}}, "a member below lnk, which is a symlink"},
		{"member with ..", [][3]string{{"a/../../canary/evil", "x", ""}}, nil, "(absolute, or with ..)"},
		{"moved from ..", nil, [][3]string{{".backtory/moves", "x\x00../canary/secret\x00", ""}}, "../canary/secret: refusing to read it"},
		{"moved from a symlink", [][3]string{{"lnk", "", "@CANARY@/secret"}}, [][3]string{{".backtory/moves", "x\x00lnk\x00", ""}}, "lnk: refusing to read it"},
		{"moved to ..", nil, [][3]string{{".backtory/moves", "../canary/evil\x00a\x00", ""}}, "../canary/evil: refusing to create it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			canary := filepath.Join(work, "canary")
			os.Mkdir(canary, 0o700)
			os.WriteFile(filepath.Join(canary, "secret"), []byte("secret\n"), 0o600)
			fix := func(xs [][3]string) [][3]string {
				for i := range xs {
					for j := range xs[i] {
						xs[i][j] = strings.ReplaceAll(xs[i][j], "@CANARY@", canary)
					}
				}
				return xs
			}
			remoteDir := filepath.Join(work, "remote")
			full, diff := archive.CraftForStock(t, remoteDir, fix(c.full), fix(c.diff))
			script := filepath.Join(work, "recover.sh")
			f, _ := os.Create(script)
			err := recovery.Render(f, recovery.ScriptParams{Host: "h", RemoteURL: "file://" + remoteDir,
				Sources: []recovery.Source{{Name: "s", Path: "/"}},
				Sets:    []recovery.SetRef{{Source: "s", ID: full}, {Source: "s", ID: diff, Base: full}},
				Layout:  &recovery.Layout{}, LayoutSet: diff, Tool: "test", Generated: time.Now()})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("dash", script, "files", "--stock", "--to", filepath.Join(work, "target"), "--work", filepath.Join(work, "w"))
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Errorf("recover.sh files --stock: %v\n%s\nwant an error with %q", err, out, c.want)
			}
			if b, err := os.ReadFile(filepath.Join(canary, "secret")); err != nil || string(b) != "secret\n" {
				t.Errorf("the canary changed: %q, %v", b, err)
			}
			if des, _ := os.ReadDir(canary); len(des) != 1 {
				t.Errorf("the canary directory holds %d entries", len(des))
			}
		})
	}
}
