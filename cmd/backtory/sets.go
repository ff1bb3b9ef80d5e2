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
	pick, t, err := archive.PickAt(ids, at, time.Local)
	if err != nil {
		return "", usagef("%v", err)
	}
	if pick == "" {
		return "", usagef("no set of %s/%s at or before %s (the oldest is %s)", r.Host, r.Source, showTime(t), ids[0])
	}
	return pick, nil
}

// showTime formats t for people: local time with its zone's offset, a
// form --at reads back.
func showTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 -07:00") }
