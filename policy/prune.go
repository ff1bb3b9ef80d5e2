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
	drop, _ := PlanPrune(sets, keepFulls, rules, now)
	return drop
}

// PlanPrune is ChoosePrune that also returns the sets it keeps, oldest
// first, each with the rule that keeps it (prune --dry-run shows both).
func PlanPrune(sets []Set, keepFulls int, rules []Rule, now time.Time) (drop, keep []Pruned) {
	keptFull := map[string]bool{}
	nfull := 0
	for i := len(sets) - 1; i >= 0; i-- {
		if sets[i].Kind == archive.KindFull && nfull < keepFulls {
			keptFull[sets[i].ID] = true
			nfull++
		}
	}
	// Thinning: for each rule with a period, the newest diff of each
	// bucket; keptBy names the first rule that keeps a differential.
	keptBy := map[string]string{}
	for _, r := range rules {
		seen := map[int64]bool{}
		for i := len(sets) - 1; i >= 0; i-- {
			s := sets[i]
			if s.Kind != archive.KindDiff || now.Sub(s.Time) > r.Age {
				continue
			}
			b := s.Time.UnixNano() / max(int64(r.Every), 1)
			if r.Every == 0 || !seen[b] {
				seen[b] = true
				if keptBy[s.ID] == "" {
					keptBy[s.ID] = r.String()
				}
			}
		}
	}
	newest := ""
	if len(sets) > 0 {
		newest = sets[len(sets)-1].ID
	}
	for _, s := range sets {
		why, kept := "", false
		switch {
		case s.ID == newest:
			why, kept = "the newest set", true
		case s.Kind == archive.KindFull && keptFull[s.ID]:
			why, kept = fmt.Sprintf("one of the newest %d fulls (keep_fulls)", keepFulls), true
		case s.Kind == archive.KindFull && neededBy(s.ID, newest, sets):
			why, kept = "the full of the newest set", true
		case s.Kind == archive.KindFull:
			why = fmt.Sprintf("older than the newest %d fulls", keepFulls)
		case !keptFull[s.Base]:
			why = "its full " + s.Base + " is not kept"
		case len(rules) == 0:
			why, kept = "a differential of a kept full (no keep_diffs)", true
		case keptBy[s.ID] != "":
			why, kept = "keep_diffs: "+keptBy[s.ID], true
		default:
			why = "thinned by keep_diffs"
		}
		if kept {
			keep = append(keep, Pruned{s.ID, s.Kind, why})
		} else {
			drop = append(drop, Pruned{s.ID, s.Kind, why})
		}
	}
	sort.SliceStable(drop, func(i, j int) bool { return drop[i].Kind == archive.KindDiff && drop[j].Kind != archive.KindDiff })
	return drop, keep
}

// String describes the rule as prune --dry-run explains a kept set.
func (r Rule) String() string {
	age := fmt.Sprintf("younger than %s", fmtDays(r.Age))
	switch r.Every {
	case 0:
		return "every differential " + age
	case 24 * time.Hour:
		return "the newest of its day, " + age
	case 7 * 24 * time.Hour:
		return "the newest of its week, " + age
	}
	return "the newest of its month, " + age
}

// fmtDays writes a span in days when it is whole days.
func fmtDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d > 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
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
