package hooks

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// config is how the lead embeds a Set: "hooks:" in a strictly decoded file.
type config struct {
	Hooks Set `yaml:"hooks"`
}

func decode(doc string) (Set, error) {
	var c config
	d := yaml.NewDecoder(strings.NewReader(doc))
	d.KnownFields(true)
	err := d.Decode(&c)
	return c.Hooks, err
}

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Set
	}{
		{"string is shell", `
hooks:
  pre_backup: ["/usr/local/sbin/dump-db --all"]`,
			Set{PreBackup: []Hook{{Shell: "/usr/local/sbin/dump-db --all"}}}},
		{"list is argv", `
hooks:
  pre_backup:
    - [/usr/local/sbin/dump-db, --all, 5]`,
			Set{PreBackup: []Hook{{Argv: []string{"/usr/local/sbin/dump-db", "--all", "5"}}}}},
		{"mapping", `
hooks:
  post_snapshot:
    - run: mysql -e 'UNLOCK TABLES'
      timeout: 90s
      on_error: abort
    - run: [/bin/true]
      on_error: continue
    - run: |
        set -e
        echo done`,
			Set{PostSnapshot: []Hook{
				{Shell: "mysql -e 'UNLOCK TABLES'", Timeout: 90 * time.Second, OnError: Abort},
				{Argv: []string{"/bin/true"}, OnError: Continue},
				{Shell: "set -e\necho done"},
			}}},
		{"every phase", `
hooks:
  pre_backup: [a]
  pre_snapshot: [b]
  post_snapshot: [c]
  post_backup: [d]
  on_failure: [e]`,
			Set{PreBackup: []Hook{{Shell: "a"}}, PreSnapshot: []Hook{{Shell: "b"}}, PostSnapshot: []Hook{{Shell: "c"}},
				PostBackup: []Hook{{Shell: "d"}}, OnFailure: []Hook{{Shell: "e"}}}},
		{"anchors and aliases", `
x: &dump /usr/local/sbin/dump-db
hooks:
  pre_backup: [*dump, [*dump, --all]]`,
			Set{PreBackup: []Hook{{Shell: "/usr/local/sbin/dump-db"}, {Argv: []string{"/usr/local/sbin/dump-db", "--all"}}}}},
		{"empty", "hooks: {}", Set{}},
		{"null set", "hooks: ~", Set{}},
		{"null phase", "hooks:\n  pre_backup: ~\n  on_failure: []", Set{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if strings.HasPrefix(tt.name, "anchors") {
				// x is not a field of config; decode the anchor through a wider struct.
				var c struct {
					X     string `yaml:"x"`
					Hooks Set    `yaml:"hooks"`
				}
				if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(c.Hooks, tt.want) {
					t.Errorf("got %+v, want %+v", c.Hooks, tt.want)
				}
				return
			}
			got, err := decode(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		doc, want string
	}{
		{"hooks:\n  pre-backup: [a]", `line 2: hooks: unknown phase "pre-backup" (known: pre_backup, `},
		{"hooks:\n  pre_backup: a", `line 2: hooks: pre_backup must be a list of hooks, e.g. pre_backup: ["/usr/local/sbin/dump-db"]`},
		{"hooks:\n  pre_backup: [a]\n  pre_backup: [b]", "line 3: hooks: pre_backup given twice"},
		{"hooks: [a]", "line 1: hooks: must be a mapping from phase"},
		{"hooks:\n  pre_backup: [a, ~]", `line 2: hook: the command must be a non-empty string`},
		{"hooks:\n  pre_backup: [\"\"]", `line 2: hook: the command must be a non-empty string`},
		{"hooks:\n  pre_backup: [~]", `line 2: hook: the command must be a non-empty string`},
		{"hooks:\n  pre_backup: [[]]", "line 2: hook: the argv list is empty"},
		{"hooks:\n  pre_backup: [[\"\", x]]", "line 2: hook: the program (first argv item) is empty"},
		{"hooks:\n  pre_backup: [[a, [b]]]", "line 2: hook: argv items must be strings"},
		{"hooks:\n  pre_backup: [[a, ~]]", "line 2: hook: argv items must be strings"},
		{"hooks:\n  pre_backup:\n    - run: x\n      timout: 5m", `line 4: hook: unknown key "timout" (known: run, timeout, on_error)`},
		{"hooks:\n  pre_backup:\n    - timeout: 5m", "line 3: hook: run is missing"},
		{"hooks:\n  pre_backup:\n    - run: x\n      timeout: 5", `line 4: hook: timeout must be a positive duration like 90s, 5m or 1h, not "5"`},
		{"hooks:\n  pre_backup:\n    - run: x\n      timeout: -1s", "timeout must be a positive duration"},
		{"hooks:\n  pre_backup:\n    - run: x\n      timeout: [5m]", "timeout must be a positive duration"},
		{"hooks:\n  pre_backup:\n    - run: x\n      on_error: ignore", `line 4: hook: on_error must be abort or continue, not "ignore"`},
		{"hooks:\n  pre_backup:\n    - run: {run: x}", "line 3: hook: run must be a string or a list of strings"},
		{"hooks:\n  pre_backup:\n    - run: x\n      run: y", "line 4: hook: run given twice"},
		{"hooks:\n  pre_backup: [true]", "the command must be a non-empty string or a list of strings, not \"true\""},
	}
	for _, tt := range tests {
		_, err := decode(tt.doc)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want %q", tt.doc, err, tt.want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	in := Set{
		PreBackup: []Hook{{Shell: "dump"}, {Argv: []string{"/bin/x", "$HOME"}}},
		OnFailure: []Hook{{Shell: "page", Timeout: 90 * time.Second}, {Argv: []string{"/bin/y"}, OnError: Abort}},
	}
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(config{in}); err != nil {
		t.Fatal(err)
	}
	out, err := decode(buf.String())
	if err != nil {
		t.Fatalf("%v in\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip\n%+v\ngave\n%+v via\n%s", in, out, buf.String())
	}
}

// FuzzUnmarshal checks that any document either fails to decode or gives
// hooks that can be run: a non-empty program, a known policy, a timeout
// that is not negative.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		"hooks:\n  pre_backup: [a, [b, c], {run: d, timeout: 5m, on_error: continue}]",
		"hooks:\n  post_backup:\n    - run: [x]\n      on_error: abort",
		"x: &a [q]\nhooks: {on_failure: [*a]}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var c struct {
			X     any `yaml:"x"`
			Hooks Set `yaml:"hooks"`
		}
		if yaml.Unmarshal([]byte(doc), &c) != nil {
			return
		}
		for _, phase := range []string{PreBackup, PreSnapshot, PostSnapshot, PostBackup, OnFailure} {
			for _, h := range c.Hooks.Hooks(phase) {
				argv := h.argv()
				if len(argv) == 0 || argv[0] == "" {
					t.Errorf("hook %+v decoded without a program", h)
				}
				if h.Timeout < 0 || (h.OnError != "" && h.OnError != Abort && h.OnError != Continue) {
					t.Errorf("hook %+v decoded with bad settings", h)
				}
			}
		}
	})
}
