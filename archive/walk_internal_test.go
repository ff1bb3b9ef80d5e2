package archive

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/treecmp"
)

// TestWalkLazyAndEager walks a sample tree (every kind of file, xattrs,
// hardlinks, deep and wide directories) as kernels with listxattrat do
// (files opened when read) and as older ones do (every file opened when
// listed): the entries must be the same, in the same order, and opening
// a file must give its content.
func TestWalkLazyAndEager(t *testing.T) {
	root := filepath.Join(t.TempDir(), "src")
	os.Mkdir(root, 0o755)
	if err := treecmp.BuildSample(root, treecmp.SampleOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 12 { // more directories than the walk lists ahead
		d := filepath.Join(root, "wide", string(rune('a'+i)), "deeper")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range 20 {
			if err := os.WriteFile(filepath.Join(d, strings.Repeat("f", j+1)+"0"), []byte(d), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk := func(eager bool) []string {
		var out []string
		w := &walker{root: root, warn: func(p, msg string) { t.Errorf("warning: %s: %s", p, msg) }}
		err := w.walkWith(eager, func(e *Entry, lf *lazyFile) error {
			if e.Type == TypeFile && strings.HasSuffix(string(e.Path), "0") {
				f, err := lf.Open(e)
				if err != nil {
					return err
				}
				st, _ := f.Stat()
				if st.Size() != e.Size {
					t.Errorf("%s: opened a file of %d bytes, listed %d", e.Path, st.Size(), e.Size)
				}
			}
			b, _ := json.Marshal(e)
			out = append(out, string(b))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	lazy, eager := walk(false), walk(true)
	if len(lazy) < 250 {
		t.Fatalf("only %d entries", len(lazy))
	}
	if strings.Join(lazy, "\n") != strings.Join(eager, "\n") {
		for i := range min(len(lazy), len(eager)) {
			if lazy[i] != eager[i] {
				t.Fatalf("entry %d differs:\nlazy  %s\neager %s", i, lazy[i], eager[i])
			}
		}
		t.Fatalf("%d entries lazily, %d eagerly", len(lazy), len(eager))
	}
}
