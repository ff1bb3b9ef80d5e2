package snapshot

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseZFSDiff(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []zfsChange
		err      string
	}{
		{"every change", "1700000000.123456789\tM\t/\t/tank/srv\n" +
			"1700000000.123456789\t+\tF\t/tank/srv/new\\0040file\n" +
			"1700000000.123456789\t-\t@\t/tank/srv/link\n" +
			"1700000000.123456789\tR\t/\t/tank/srv/a\t/tank/srv/b\\0134c\n" +
			"1700000000.123456789\tM\tF\t/tank/srv/\\0303\\0251t\\0351\n",
			[]zfsChange{{'M', '/', "/tank/srv", ""}, {'+', 'F', "/tank/srv/new file", ""}, {'-', '@', "/tank/srv/link", ""},
				{'R', '/', "/tank/srv/a", "/tank/srv/b\\c"}, {'M', 'F', "/tank/srv/\xc3\xa9t\xe9", ""}}, ""},
		{"empty", "", nil, ""},
		{"no time", "M\t/\t/tank\n", nil, "fields"},
		{"bad change", "1.0\tX\tF\t/tank/a\n", nil, "bad change"},
		{"bad type", "1.0\tM\tQ\t/tank/a\n", nil, "bad file type"},
		{"rename without new path", "1.0\tR\tF\t/tank/a\n", nil, "4 fields for change R"},
		{"relative path", "1.0\tM\tF\ttank/a\n", nil, "not a clean absolute path"},
		{"dot dot", "1.0\tM\tF\t/tank/../etc\n", nil, "not a clean absolute path"},
		{"escaped slash dot dot", "1.0\tM\tF\t/tank/\\0056\\0056/etc\n", nil, "not a clean absolute path"},
		{"short escape", "1.0\tM\tF\t/tank/a\\004\n", nil, "bad escape"},
		{"NUL", "1.0\tM\tF\t/tank/a\\0000b\n", nil, "not a clean absolute path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []zfsChange
			err := parseZFSDiff(strings.NewReader(c.in), func(z zfsChange) error { got = append(got, z); return nil })
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, %v\nwant %q", got, err, c.want)
			}
		})
	}
}

// FuzzParseZFSDiff: whatever zfs diff prints, every path handed on is
// absolute and clean, and errors are one line.
func FuzzParseZFSDiff(f *testing.F) {
	f.Add("1700000000.123456789\tM\t/\t/tank/srv\n1.5\tR\tF\t/tank/a\t/tank/b\\0040c\n")
	f.Add("1.0\t+\tF\t/tank/\\0056\\0056\n")
	f.Add("1.0\t-\t@\t/\n")
	f.Fuzz(func(t *testing.T, in string) {
		stop := errors.New("stop")
		n := 0
		err := parseZFSDiff(strings.NewReader(in), func(c zfsChange) error {
			for _, p := range []string{c.path, c.newPath} {
				if p == "" && c.kind != 'R' {
					continue
				}
				if !strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") || strings.Contains(p+"/", "/../") || strings.Contains(p+"/", "/./") {
					t.Fatalf("handed on %q", p)
				}
			}
			if (c.kind == 'R') != (c.newPath != "") {
				t.Fatalf("change %c with new path %q", c.kind, c.newPath)
			}
			if n++; n > 1000 {
				return stop
			}
			return nil
		})
		if err != nil && err != stop && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of several lines: %q", err)
		}
	})
}
