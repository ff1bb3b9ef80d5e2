package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/state"
)

func TestHealth(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	run := func(outcome string, ago time.Duration) *state.Run {
		return &state.Run{Outcome: outcome, Started: now.Add(-ago - time.Minute), Finished: now.Add(-ago), Warnings: 2}
	}
	set := func(ago time.Duration) SetRow {
		return SetRow{Manifest: &archive.Manifest{Started: now.Add(-ago)}}
	}
	s := &Server{cfg: Config{MaxAge: 24 * time.Hour}}
	for _, tc := range []struct {
		name string
		d    sourceData
		want Health
		why  string
		age  time.Duration
	}{
		{"fine", sourceData{runs: []*state.Run{run("success", time.Hour)}}, Green, "", time.Hour},
		{"warnings", sourceData{runs: []*state.Run{run("warning", time.Hour)}}, Amber, "2 warnings", time.Hour},
		{"failed after a success", sourceData{runs: []*state.Run{run("success", 2*time.Hour), run("failure", time.Hour)}}, Red, "the last run failed", time.Hour},
		{"stale", sourceData{runs: []*state.Run{run("success", 30*time.Hour)}}, Amber, "older than max age 1d0h", 30 * time.Hour},
		{"very stale", sourceData{runs: []*state.Run{run("success", 50*time.Hour)}}, Red, "more than twice max age", 50 * time.Hour},
		{"never ran", sourceData{}, Red, "never backed up successfully", 0},
		{"only failures", sourceData{runs: []*state.Run{run("failure", time.Hour)}}, Red, "never backed up successfully", time.Hour},
		{"a set without a record", sourceData{sets: []SetRow{set(3 * time.Hour)}}, Green, "", 3 * time.Hour},
		{"an old record, a newer set", sourceData{sets: []SetRow{set(time.Hour)}, runs: []*state.Run{run("success", 40*time.Hour)}}, Green, "", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, why, _, age := s.health(&tc.d, now)
			if h != tc.want || !strings.Contains(why, tc.why) || tc.why == "" && why != "" || age != tc.age {
				t.Errorf("health %s %q age %v, want %s %q %v", h, why, age, tc.want, tc.why, tc.age)
			}
		})
	}
}
