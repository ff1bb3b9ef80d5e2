package policy

import (
	"sort"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
)

func TestChoosePrune(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	// Fulls every 10 days, a diff each day in between; f40 is the oldest.
	var sets []Set
	full := ""
	for d := 40; d >= 0; d-- {
		id := day(d).Format("f20060102")
		if d%10 == 0 {
			full = id
			sets = append(sets, Set{ID: id, Kind: archive.KindFull, Time: day(d)})
			continue
		}
		sets = append(sets, Set{ID: day(d).Format("d20060102"), Kind: archive.KindDiff, Base: full, Time: day(d)})
	}
	ids := func(ps []Pruned) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		sort.Strings(out)
		return out
	}
	tests := []struct {
		name      string
		keepFulls int
		rules     string
		wantDrops int
		mustKeep  []string
	}{
		// 5 fulls (days 40, 30, 20, 10, 0) with 9 diffs each but the newest.
		{"keep 2 fulls, all their diffs", 2, "", 30, []string{"f20260601", "f20260522", "d20260531", "d20260523"}},
		{"keep all fulls", 10, "", 0, nil},
		{"keep 1 full", 1, "", 40, []string{"f20260601"}},
		{"thin: last 3 days", 5, "3d", 33, []string{"f20260422", "d20260531", "d20260529"}},
		{"thin: 3 days all, weekly for 20 days", 5, "3d:all,20d:weekly", 30, []string{"d20260531", "d20260529", "d20260530"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := ParseThinning(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			drop := ChoosePrune(sets, tc.keepFulls, rules, now)
			got := ids(drop)
			if len(got) != tc.wantDrops {
				t.Errorf("dropped %d sets, want %d: %v", len(got), tc.wantDrops, got)
			}
			for _, k := range tc.mustKeep {
				for _, g := range got {
					if g == k {
						t.Errorf("dropped %s, which must be kept", k)
					}
				}
			}
			// A kept differential never loses its full.
			dropped := map[string]bool{}
			for _, g := range got {
				dropped[g] = true
			}
			for _, s := range sets {
				if s.Kind == archive.KindDiff && !dropped[s.ID] && dropped[s.Base] {
					t.Errorf("kept %s but dropped its full %s", s.ID, s.Base)
				}
			}
			// Differentials are deleted before fulls.
			for i := 1; i < len(drop); i++ {
				if drop[i].Kind == archive.KindDiff && drop[i-1].Kind == archive.KindFull {
					t.Errorf("differential %s comes after full %s", drop[i].ID, drop[i-1].ID)
				}
			}
			// Pruning again after the drops deletes nothing more.
			var rest []Set
			for _, s := range sets {
				if !dropped[s.ID] {
					rest = append(rest, s)
				}
			}
			if again := ChoosePrune(rest, tc.keepFulls, rules, now); len(again) != 0 {
				t.Errorf("a second prune drops %v", ids(again))
			}
		})
	}
}

// TestChoosePruneKeepsNewestBase: the newest set and the full it needs
// stay, whatever keep_fulls says.
func TestChoosePruneKeepsNewestBase(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sets := []Set{
		{ID: "f1", Kind: archive.KindFull, Time: now.Add(-3 * time.Hour)},
		{ID: "f2", Kind: archive.KindFull, Time: now.Add(-2 * time.Hour)},
		{ID: "d2", Kind: archive.KindDiff, Base: "f2", Time: now.Add(-time.Hour)},
	}
	got := ChoosePrune(sets, 1, nil, now)
	if len(got) != 1 || got[0] != (Pruned{"f1", archive.KindFull, "older than the newest 1 fulls"}) {
		t.Errorf("ChoosePrune = %+v, want only f1", got)
	}
	if got := ChoosePrune(nil, 1, nil, now); len(got) != 0 {
		t.Errorf("ChoosePrune of no sets = %+v", got)
	}
}

func TestParseThinning(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		in   string
		want []Rule
		err  string
	}{
		{"", nil, ""},
		{"  ", nil, ""},
		{"30d", []Rule{{Age: 30 * day}}, ""},
		{"7d:all, 60d:weekly, 1w:daily, 52w:monthly", []Rule{{7 * day, 0}, {60 * day, 7 * day}, {7 * day, day}, {364 * day, 30 * day}}, ""},
		{"12h:daily", []Rule{{12 * time.Hour, day}}, ""},
		{"7d:hourly", nil, `keep_diffs "7d:hourly": "hourly": want all, daily, weekly or monthly`},
		{"soon", nil, `keep_diffs "soon": duration "soon": want e.g. 12h, 7d or 2w`},
		{"-1d", nil, `keep_diffs "-1d": duration "-1d": want e.g. 12h, 7d or 2w`},
	} {
		got, err := ParseThinning(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseThinning(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("ParseThinning(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("ParseThinning(%q)[%d] = %v, want %v", c.in, i, got[i], c.want[i])
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90m", 90 * time.Minute, true},
		{"12h", 12 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"0d", 0, true},
		{"", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"-2h", 0, false},
		{"soon", 0, false},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},
		{"99999999999d", 0, false},
		{"99999999999w", 0, false},
		{"99999999999999999999d", 0, false},
		{"9999999h", 0, false},
	} {
		got, err := ParseDuration(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestPlanPruneExplains: every set is either kept or dropped, each with
// the rule that decided.
func TestPlanPruneExplains(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	sets := []Set{
		{ID: "f30", Kind: archive.KindFull, Time: day(30)},
		{ID: "d29", Kind: archive.KindDiff, Base: "f30", Time: day(29)},
		{ID: "f20", Kind: archive.KindFull, Time: day(20)},
		{ID: "d15", Kind: archive.KindDiff, Base: "f20", Time: day(15)},
		{ID: "d14", Kind: archive.KindDiff, Base: "f20", Time: day(14)},
		{ID: "d2", Kind: archive.KindDiff, Base: "f20", Time: day(2)},
		{ID: "d1", Kind: archive.KindDiff, Base: "f20", Time: day(1)},
	}
	rules, err := ParseThinning("3d:all,30d:weekly")
	if err != nil {
		t.Fatal(err)
	}
	drop, keep := PlanPrune(sets, 1, rules, now)
	got := map[string]string{}
	for _, p := range append(drop, keep...) {
		got[p.ID] = p.Why
	}
	want := map[string]string{
		"f30": "older than the newest 1 fulls",
		"d29": "its full f30 is not kept",
		"f20": "one of the newest 1 fulls (keep_fulls)",
		"d15": "thinned by keep_diffs",
		"d14": "keep_diffs: the newest of its week, younger than 30d",
		"d2":  "keep_diffs: every differential younger than 3d",
		"d1":  "the newest set",
	}
	if len(drop)+len(keep) != len(sets) || len(drop) != 3 {
		t.Errorf("drop %v, keep %v", drop, keep)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
}
