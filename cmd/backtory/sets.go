package main

import (
	"context"
	"fmt"
	"time"

	"github.com/backtory/backtory/archive"
)

// pickSet returns the set a read command acts on: --set ID, else the newest
// at or before --at, else the newest.
func pickSet(ctx context.Context, r *archive.Repository, id, at string) (string, error) {
	if id != "" && at != "" {
		return "", usagef("--set and --at exclude each other: --set names one set, --at picks one by time")
	}
	ids, err := r.SetIDs(ctx)
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("no sets of %s/%s on the remote yet: run 'backtory backup' first", r.Host, r.Source)
	}
	if id != "" {
		for _, x := range ids {
			if x == id {
				return id, nil
			}
		}
		return "", usagef("no set %q of %s/%s on the remote (see backtory list)", id, r.Host, r.Source)
	}
	if at == "" {
		return ids[len(ids)-1], nil
	}
	t, err := parseTime(at)
	if err != nil {
		return "", err
	}
	pick := ""
	for _, x := range ids {
		if _, st, _ := archive.ParseSetID(x); !st.After(t) {
			pick = x
		}
	}
	if pick == "" {
		return "", usagef("no set of %s/%s at or before %s (the oldest is %s)", r.Host, r.Source, t.Format(time.RFC3339), ids[0])
	}
	return pick, nil
}

// parseTime reads RFC 3339, or "YYYY-MM-DD[ HH:MM[:SS]]" in local time.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("time %q: want RFC 3339 (2026-11-20T14:00:00Z) or YYYY-MM-DD[ HH:MM] local time", s)
}
