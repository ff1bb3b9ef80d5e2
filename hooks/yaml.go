package hooks

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML reads a hook in one of three forms:
//
//	pre_backup:
//	  - /usr/local/sbin/dump-db --all        # a string: run with /bin/sh -c
//	  - [/usr/local/sbin/dump-db, --all]     # a list: argv, no shell
//	  - run: /usr/local/sbin/dump-db --all   # a mapping: run is a string or a list,
//	    timeout: 5m                          #   timeout a Go duration (default 10m),
//	    on_error: continue                   #   on_error abort or continue
//
// It is strict: unknown keys, empty commands and bad values are errors that
// name the line.
func (h *Hook) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		return h.command(n)
	}
	*h = Hook{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if seen[k.Value] {
			return fmt.Errorf("line %d: hook: %s given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "run":
			if v.Kind == yaml.MappingNode {
				return fmt.Errorf("line %d: hook: run must be a string or a list of strings", v.Line)
			}
			if err := h.command(v); err != nil {
				return err
			}
		case "timeout":
			d, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || d <= 0 {
				return fmt.Errorf("line %d: hook: timeout must be a positive duration like 90s, 5m or 1h, not %q", v.Line, v.Value)
			}
			h.Timeout = d
		case "on_error":
			p := Policy(v.Value)
			if v.Kind != yaml.ScalarNode || (p != Abort && p != Continue) {
				return fmt.Errorf("line %d: hook: on_error must be abort or continue, not %q", v.Line, v.Value)
			}
			h.OnError = p
		default:
			return fmt.Errorf("line %d: hook: unknown key %q (known: run, timeout, on_error)", k.Line, k.Value)
		}
	}
	if !seen["run"] {
		return fmt.Errorf("line %d: hook: run is missing (the command to run)", n.Line)
	}
	return nil
}

// UnmarshalYAML reads the phases of a Set strictly: an unknown phase name
// or a null hook is an error that names the line.
func (s *Set) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: hooks: must be a mapping from phase (pre_backup, pre_snapshot, post_snapshot, post_backup, on_failure) to a list of hooks", n.Line)
	}
	*s = Set{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		list := s.field(k.Value)
		if list == nil {
			return fmt.Errorf("line %d: hooks: unknown phase %q (known: pre_backup, pre_snapshot, post_snapshot, post_backup, on_failure)", k.Line, k.Value)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: hooks: %s given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: hooks: %s must be a list of hooks, e.g. %s: [\"/usr/local/sbin/dump-db\"]", v.Line, k.Value, k.Value)
		}
		for _, item := range v.Content {
			var h Hook
			if err := h.UnmarshalYAML(item); err != nil {
				return err
			}
			*list = append(*list, h)
		}
	}
	return nil
}

// MarshalYAML writes h in the shortest of the forms UnmarshalYAML reads.
func (h Hook) MarshalYAML() (any, error) {
	var run any = h.Shell
	if h.Shell == "" {
		run = h.Argv
	}
	if h.Timeout == 0 && h.OnError == "" {
		return run, nil
	}
	m := struct {
		Run     any    `yaml:"run"`
		Timeout string `yaml:"timeout,omitempty"`
		OnError Policy `yaml:"on_error,omitempty"`
	}{Run: run, OnError: h.OnError}
	if h.Timeout != 0 {
		m.Timeout = h.Timeout.String()
	}
	return m, nil
}

// command reads the command of a hook: a string (shell) or a list (argv).
func (h *Hook) command(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" || n.Value == "" {
			return fmt.Errorf("line %d: hook: the command must be a non-empty string or a list of strings, not %q", n.Line, n.Value)
		}
		h.Shell, h.Argv = n.Value, nil
		return nil
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return fmt.Errorf("line %d: hook: the argv list is empty", n.Line)
		}
		argv := make([]string, len(n.Content))
		for i, a := range n.Content {
			a = resolveAlias(a)
			if a.Kind != yaml.ScalarNode || a.Tag == "!!null" {
				return fmt.Errorf("line %d: hook: argv items must be strings", a.Line)
			}
			argv[i] = a.Value
		}
		if argv[0] == "" {
			return fmt.Errorf("line %d: hook: the program (first argv item) is empty", n.Line)
		}
		h.Shell, h.Argv = "", argv
		return nil
	}
	return fmt.Errorf("line %d: hook: must be a string, a list of strings, or a mapping with a run key", n.Line)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// field returns the list of s for a phase name, or nil.
func (s *Set) field(phase string) *[]Hook {
	switch phase {
	case PreBackup:
		return &s.PreBackup
	case PreSnapshot:
		return &s.PreSnapshot
	case PostSnapshot:
		return &s.PostSnapshot
	case PostBackup:
		return &s.PostBackup
	case OnFailure:
		return &s.OnFailure
	}
	return nil
}
