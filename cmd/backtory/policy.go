package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/backtory/backtory/archive"
)

// decision is what the policy chose for one source.
type decision struct {
	base   string // the full to take a differential against; "" for a full
	reason string
}

// decide chooses between a full and a differential (docs in README.md):
// --full or --diff win; otherwise a full when there is none, when the last
// full is older than full_every, or when the last differential against it
// stored more than full_when_diff_exceeds of the full's size.
func decide(ctx context.Context, r *archive.Repository, pol Policy, force string, now time.Time) (decision, error) {
	ids, err := r.SetIDs(ctx)
	if err != nil {
		return decision{}, err
	}
	full, lastDiff := "", ""
	for _, id := range ids {
		switch kind, _, _ := archive.ParseSetID(id); kind {
		case archive.KindFull:
			full, lastDiff = id, ""
		case archive.KindDiff:
			lastDiff = id
		}
	}
	switch {
	case force == "full":
		return decision{reason: "--full was given"}, nil
	case full == "" && force == "diff":
		return decision{}, usagef("--diff: there is no full of %s/%s to take a differential against", r.Host, r.Source)
	case full == "":
		return decision{reason: "there is no full yet"}, nil
	case force == "diff":
		return decision{base: full, reason: "--diff was given"}, nil
	}
	_, fullTime, _ := archive.ParseSetID(full)
	if age := now.Sub(fullTime); age >= time.Duration(pol.FullEvery) {
		return decision{reason: fmt.Sprintf("the last full %s is %s old (full_every %s)", full, age.Round(time.Minute), time.Duration(pol.FullEvery))}, nil
	}
	if lastDiff != "" {
		fm, _, err := r.Manifest(ctx, full)
		if err != nil {
			return decision{}, err
		}
		dm, _, err := r.Manifest(ctx, lastDiff)
		if err != nil {
			return decision{}, err
		}
		if dm.Base != nil && dm.Base.ID == full && fm.Stats.StoredBytes > 0 {
			pct := 100 * float64(dm.Stats.StoredBytes) / float64(fm.Stats.StoredBytes)
			if pct > float64(pol.FullWhenDiffExceed) {
				return decision{reason: fmt.Sprintf("the last differential %s stored %.0f%% of the full's size (full_when_diff_exceeds %.0f%%)", lastDiff, pct, float64(pol.FullWhenDiffExceed))}, nil
			}
		}
	}
	return decision{base: full, reason: fmt.Sprintf("a differential against %s", full)}, nil
}

// seenFile remembers the newest set id this host has seen of a source, to
// catch a remote that serves an older state (rollback).
func seenFile(cfg *Config, source string) string {
	return filepath.Join(cfg.StateDir, "seen", cfg.Host, source)
}

// checkRollback fails if the remote's newest set is older than the newest
// this host wrote or saw.
func checkRollback(ctx context.Context, cfg *Config, r *archive.Repository) error {
	raw, err := os.ReadFile(seenFile(cfg, r.Source))
	if err != nil {
		return nil // nothing seen yet
	}
	seen := strings.TrimSpace(string(raw))
	_, seenTime, ok := archive.ParseSetID(seen)
	if !ok {
		return nil
	}
	ids, err := r.SetIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, t, _ := archive.ParseSetID(id); !t.Before(seenTime) {
			return nil
		}
	}
	newest := "none"
	if len(ids) > 0 {
		newest = ids[len(ids)-1]
	}
	return fmt.Errorf("the remote's newest set of %s is %s, older than %s which this host already saw: the remote was rolled back or its newest sets were removed (if that was intended, delete %s)",
		r.Source, newest, seen, seenFile(cfg, r.Source))
}

// rememberSet records id as the newest set seen of a source.
func rememberSet(cfg *Config, source, id string) error {
	p := seenFile(cfg, source)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// thinRule keeps differentials younger than Age: all of them, or one per
// Every (the newest of each day/week/month bucket).
type thinRule struct {
	Age   time.Duration
	Every time.Duration // 0 keeps all
}

// parseThinning reads keep_diffs: "" (keep every differential of a kept
// full), "30d" (those younger than 30 days), or rules such as
// "7d:all, 60d:weekly, 1y:monthly".
func parseThinning(s string) ([]thinRule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var rules []thinRule
	for _, part := range strings.Split(s, ",") {
		age, every, _ := strings.Cut(strings.TrimSpace(part), ":")
		a, err := parseDuration(strings.TrimSpace(age))
		if err != nil {
			return nil, fmt.Errorf("keep_diffs %q: %v", s, err)
		}
		r := thinRule{Age: a}
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
