package archive

import (
	"testing"
	"time"
)

// FuzzParseTime: ParseTime never panics, and a time it reads comes back the
// same instant when written the way list prints it and read again.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-20T14:00:00Z", "2026-11-20T15:00:00+01:00", "2026-11-20 15:00:00 +01:00",
		"2026-11-20", "2026-11-20 14:00", "2026-11-20T14:00:05.5", "20261120T140000Z", "2026-02-29", "9999-12-31T23:59:59-23:59"} {
		f.Add(s)
	}
	loc := time.FixedZone("X", 3600)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, loc)
		if y := got.In(loc).Year(); err != nil || y < 1 || y > 9999 {
			return
		}
		again, err := ParseTime(got.In(loc).Format("2006-01-02 15:04:05.999999999 -07:00"), loc)
		if err != nil || !again.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v; written and read again: %v, %v", s, got, again, err)
		}
	})
}

func TestPickAt(t *testing.T) {
	ids := []string{"full-20261122T030000Z", "diff-20261122T130000Z", "full-20261122T130000Z", "diff-20261123T000000Z"}
	for _, c := range []struct{ at, want string }{
		{"2026-11-22T02:59:59Z", ""},
		{"2026-11-22T03:00:00Z", "full-20261122T030000Z"},
		{"2026-11-22T13:00:00Z", "full-20261122T130000Z"},
		{"diff-20261122T130000Z", "diff-20261122T130000Z"}, // a set id names its set
		{"diff-20261122T140000Z", "full-20261122T130000Z"}, // an id of no set stands for its time
		{"2026-11-23", "diff-20261123T000000Z"},
	} {
		got, _, err := PickAt(ids, c.at, time.UTC)
		if err != nil || got != c.want {
			t.Errorf("PickAt(%q) = %q, %v; want %q", c.at, got, err, c.want)
		}
	}
}
