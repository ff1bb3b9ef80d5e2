package policy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/backtory/backtory/archive"
)

// Set is what retention needs to know of a set.
type Set struct {
	ID   string
	Kind archive.Kind
	Base string // a differential's full
	Time time.Time
}

// Pruned is a set to delete, and why.
type Pruned struct {
	ID   string
	Kind archive.Kind
	Why  string
}

// Rule keeps the differentials younger than Age: all of them, or one per
// Every (the newest of each day, week or month bucket).
type Rule struct {
	Age   time.Duration
	Every time.Duration // 0 keeps all
}

// ParseThinning reads keep_diffs: "" (keep every differential of a kept
// full), "30d" (those younger than 30 days), or rules such as
// "7d:all, 60d:weekly, 1y:monthly".
func ParseThinning(s string) ([]Rule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var rules []Rule
	for _, part := range strings.Split(s, ",") {
		age, every, _ := strings.Cut(strings.TrimSpace(part), ":")
		a, err := ParseDuration(strings.TrimSpace(age))
		if err != nil {
			return nil, fmt.Errorf("keep_diffs %q: %v", s, err)
		}
		r := Rule{Age: a}
		switch strings.TrimSpace(every) {
		case "", "all":
		case "daily":
			r.Every = 24 * time.Hour
		case "weekly":
			r.Every = 7 * 24 * time.Hour
		case "monthly":
			r.Every = 30 * 24 * time.Hour
		default:
			return nil, fmt.Errorf("keep_diffs %q: %q: want all, daily, weekly or monthly", s, every)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ChoosePrune decides which sets (oldest first in sets) to delete: fulls
// beyond the newest keepFulls; differentials whose full goes or is gone;
// differentials the thinning rules do not keep. The newest set is always
// kept, and so is every full a kept differential needs. Differentials come
// first in the answer, so that no differential outlives its full.
func ChoosePrune(sets []Set, keepFulls int, rules []Rule, now time.Time) []Pruned {
	keptFull := map[string]bool{}
	nfull := 0
	for i := len(sets) - 1; i >= 0; i-- {
		if sets[i].Kind == archive.KindFull && nfull < keepFulls {
			keptFull[sets[i].ID] = true
			nfull++
		}
	}
	// Thinning: for each rule with a period, the newest diff of each bucket.
	keepByRule := map[string]bool{}
	for _, r := range rules {
		seen := map[int64]bool{}
		for i := len(sets) - 1; i >= 0; i-- {
			s := sets[i]
			if s.Kind != archive.KindDiff || now.Sub(s.Time) > r.Age {
				continue
			}
			if r.Every == 0 {
				keepByRule[s.ID] = true
				continue
			}
			b := s.Time.UnixNano() / int64(r.Every)
			if !seen[b] {
				seen[b] = true
				keepByRule[s.ID] = true
			}
		}
	}
	var drop []Pruned
	newest := ""
	if len(sets) > 0 {
		newest = sets[len(sets)-1].ID
	}
	for _, s := range sets {
		if s.ID == newest {
			continue
		}
		switch {
		case s.Kind == archive.KindFull && !keptFull[s.ID] && !neededBy(s.ID, newest, sets):
			drop = append(drop, Pruned{s.ID, s.Kind, fmt.Sprintf("older than the newest %d fulls", keepFulls)})
		case s.Kind == archive.KindDiff && !keptFull[s.Base]:
			drop = append(drop, Pruned{s.ID, s.Kind, "its full " + s.Base + " is not kept"})
		case s.Kind == archive.KindDiff && len(rules) > 0 && !keepByRule[s.ID]:
			drop = append(drop, Pruned{s.ID, s.Kind, "thinned by keep_diffs"})
		}
	}
	sort.SliceStable(drop, func(i, j int) bool { return drop[i].Kind == archive.KindDiff && drop[j].Kind != archive.KindDiff })
	return drop
}

// neededBy reports whether full is the base of the set newest.
func neededBy(full, newest string, sets []Set) bool {
	for _, s := range sets {
		if s.ID == newest && s.Base == full {
			return true
		}
	}
	return false
}
