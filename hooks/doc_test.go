package hooks

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDocExamples decodes every YAML example of docs/hooks.md, so the
// contract never shows a config that backtory would refuse.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d YAML examples in docs/hooks.md", len(blocks))
	}
	for _, b := range blocks {
		src := b[1]
		var hookSets []Set
		if strings.HasPrefix(src, "hooks:") || strings.Contains(src, "\nhooks:") {
			// A whole config: the global hooks and each source's.
			var c struct {
				Hooks   Set `yaml:"hooks"`
				Sources []struct {
					Hooks Set `yaml:"hooks"`
				} `yaml:"sources"`
			}
			if err := yaml.Unmarshal([]byte(src), &c); err != nil {
				t.Errorf("example\n%s\ndoes not decode: %v", src, err)
				continue
			}
			hookSets = append(hookSets, c.Hooks)
			for _, s := range c.Sources {
				hookSets = append(hookSets, s.Hooks)
			}
		} else {
			// A fragment: the phases of a hooks: mapping.
			var s Set
			if err := yaml.Unmarshal([]byte(src), &s); err != nil {
				t.Errorf("example\n%s\ndoes not decode: %v", src, err)
				continue
			}
			hookSets = append(hookSets, s)
		}
		empty := true
		for _, s := range hookSets {
			empty = empty && s.Empty()
		}
		if empty {
			t.Errorf("example\n%s\nhas no hooks", src)
		}
	}
}
