package archive

import (
	"fmt"
	"path"
	"strings"
)

// Excluder matches paths against exclude globs.
//
// A pattern is matched against the path relative to the source root. A
// pattern that starts with "/" is anchored at the source root; one without
// a "/" matches a name at any depth ("*.tmp"); other patterns are anchored
// too. "*", "?" and "[...]" match within one component, "**" matches any
// number of components. A matched directory is skipped with everything
// below it.
type Excluder struct {
	pats [][]string // each pattern split into components
}

// NewExcluder compiles patterns; a malformed one is an error naming it.
func NewExcluder(patterns []string) (*Excluder, error) {
	x := &Excluder{}
	for _, p := range patterns {
		orig := p
		if p == "" {
			return nil, fmt.Errorf("exclude pattern is empty")
		}
		p = strings.TrimSuffix(p, "/")
		if !strings.Contains(p, "/") {
			p = "**/" + p
		}
		p = strings.TrimPrefix(p, "/")
		comps := strings.Split(p, "/")
		for _, c := range comps {
			if _, err := path.Match(c, ""); err != nil {
				return nil, fmt.Errorf("exclude pattern %q: %w", orig, err)
			}
		}
		x.pats = append(x.pats, comps)
	}
	return x, nil
}

// Match reports whether rel (a path relative to the root, "." for the root)
// is excluded.
func (x *Excluder) Match(rel string) bool {
	if x == nil || len(x.pats) == 0 || rel == "." {
		return false
	}
	comps := strings.Split(rel, "/")
	for _, p := range x.pats {
		if matchComps(p, comps) {
			return true
		}
	}
	return false
}

func matchComps(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchComps(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
