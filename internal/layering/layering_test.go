// Package layering holds one test: that the module's packages import each
// other only as docs/design.md's map allows, so data flows one way.
package layering

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/backtory/backtory/"

// allowed lists, for each package, the module's packages its non-test code
// may import. cmd/backtory is the wiring and may import any of them.
var allowed = map[string][]string{
	"dashboard":                    {"archive", "policy", "state", "remote"},
	"policy":                       {"archive"},
	"fusefs":                       {"archive"},
	"state":                        {"internal/atomicfile"},
	"hooks":                        {"internal/childenv"},
	"snapshot":                     {"internal/childenv"},
	"archive":                      {"remote", "rsyncdelta", "internal/atomicfile"},
	"archive/seal":                 {"internal/atomicfile"},
	"remote":                       {"internal/atomicfile"},
	"remote/remotetest":            {"remote"},
	"recovery":                     {"archive", "remote", "internal/childenv"},
	"rsyncdelta":                   nil,
	"internal/atomicfile":          nil,
	"internal/testenv":             nil,
	"internal/childenv":            nil,
	"internal/treecmp":             {"internal/testenv"},
	"internal/ftptest":             {"internal/testcerts", "internal/testenv", "remote"},
	"internal/sshtest":             {"internal/testenv", "internal/ftptest", "remote"},
	"internal/s3test":              {"internal/testcerts", "internal/testenv", "remote"},
	"internal/testcerts":           nil,
	"internal/clidoc":              nil,
	"internal/priority":            nil,
	"examples":                     nil,
	"rsyncdelta/internal/benchgen": nil,
}

func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		if name == "cmd/backtory" || name == "internal/layering" {
			continue
		}
		ok, known := allowed[name]
		if !known {
			t.Errorf("package %s is not on the map: add it to docs/design.md and to this test", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if ours && !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s: against the map in docs/design.md", name, dep)
			}
		}
	}
}
