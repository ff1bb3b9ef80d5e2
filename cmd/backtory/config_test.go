package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigErrors: values out of range, binary files and configs that
// are not a mapping are refused with the file, the line and a clear reason.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	good := "host: h\nstate_dir: " + dir + "/state\nsources:\n  - name: s\n    path: " + dir + "\nremote:\n  url: file://" + dir + "/remote\n"
	for _, c := range []struct {
		name, body, want string
	}{
		{"full_every wraps", good + "policy:\n  full_every: 99999999999d\n", `c.yaml:9: duration "99999999999d" is too long`},
		{"full_every in hours", good + "policy:\n  full_every: 99999999999h\n", `c.yaml:9: duration "99999999999h" is too long`},
		{"volume_size wraps", good + "volume_size: 99999999999TiB\n", `c.yaml:8: size "99999999999TiB" is too large`},
		{"volume_size beyond int64", good + "volume_size: 99999999999999999999\n", `c.yaml:8: size "99999999999999999999" is too large`},
		{"nice too low", good + "nice: -21\n", `c.yaml:8: nice -21: want -20 (highest priority) to 19 (lowest)`},
		{"nice too high", good + "nice: 20\n", `c.yaml:8: nice 20: want -20`},
		{"nice not a number", good + "nice: low\n", `c.yaml:8: cannot unmarshal !!str`},
		{"ionice level", good + "ionice: best-effort:9\n", `c.yaml:8: ionice "best-effort:9": the level must be 0 (highest) to 7 (lowest)`},
		{"ionice class", good + "ionice: lowest\n", `c.yaml:8: ionice "lowest": want idle, best-effort[:LEVEL] or realtime[:LEVEL]`},
		{"bwlimit unit", good + "  bwlimit: 10Mbit/s\n", `c.yaml:8: bwlimit "10Mbit/s": want bytes per second`},
		{"bwlimit too large", "\n" + good + "  bwlimit: 99999999999TiB/s\n", `c.yaml:9: bwlimit "99999999999TiB/s" is too large`},
		{"a percentage that is not a number", good + "policy:\n  full_when_diff_exceeds: NaN%\n", `c.yaml:9: percentage "NaN%"`},
		{"NUL bytes", good + "\x00\x00\x00", "c.yaml:8: not a YAML text: a NUL byte at column 1"},
		{"a control character", "host: h\x01\n", "c.yaml:1: not a YAML text: a control character U+0001 at column 8"},
		{"not UTF-8", "host: \xc3\x28\n", "c.yaml:1: not a YAML text: a byte 0xc3 that is not UTF-8 at column 7"},
		{"an ELF binary", "\x7fELF\x02\x01\x01\x00", "c.yaml:1: not a YAML text: a control character U+007F"},
		{"a list", "- host: h\n", "c.yaml:1: the config is a list, not a mapping"},
		{"plain text", "back up everything\n", `c.yaml:1: the config is a single value "back up everything", not a mapping`},
		{"only comments", "# nothing yet\n", "c.yaml: the config is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(p, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stderr := backtory(t, "list", "--config", p)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, c.want)
			}
		})
	}
}
