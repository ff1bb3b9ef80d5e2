package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
)

// fakeSets are a source's sets: ids (oldest first) and the stored size of
// each; a differential's base is the full before it.
type fakeSets struct {
	ids     []string
	stored  map[string]int64
	err     error
	damaged error // CheckObjects' answer
}

func (f fakeSets) SetIDs(context.Context) ([]string, error) { return f.ids, f.err }

func (f fakeSets) CheckObjects(context.Context, *archive.Manifest, bool) error { return f.damaged }

func (f fakeSets) Manifest(_ context.Context, id string) (*archive.Manifest, string, error) {
	m := &archive.Manifest{ID: id}
	kind, t, _ := archive.ParseSetID(id)
	m.Kind, m.Stats.StoredBytes = kind, f.stored[id]
	if kind == archive.KindDiff {
		for _, prev := range f.ids {
			if k, pt, _ := archive.ParseSetID(prev); k == archive.KindFull && pt.Before(t) {
				m.Base = &archive.BaseRef{ID: prev}
			}
		}
	}
	return m, "hash", nil
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	id := func(kind archive.Kind, daysAgo int) string {
		return archive.NewSetID(kind, now.Add(-time.Duration(daysAgo)*24*time.Hour))
	}
	full3, diff1, full9 := id(archive.KindFull, 3), id(archive.KindDiff, 1), id(archive.KindFull, 9)
	cfg := Config{FullEvery: Duration(7 * 24 * time.Hour), FullWhenDiffExceed: 50}
	for _, c := range []struct {
		name   string
		sets   fakeSets
		force  Force
		base   string
		reason string
	}{
		{"no sets", fakeSets{}, "", "", "there is no full yet"},
		{"--full", fakeSets{ids: []string{full3}}, ForceFull, "", "--full was given"},
		{"--diff", fakeSets{ids: []string{full9}}, ForceDiff, full9, "--diff was given"},
		{"a young full", fakeSets{ids: []string{full3}}, "", full3, "a differential against " + full3},
		{"an old full", fakeSets{ids: []string{full9}}, "", "",
			fmt.Sprintf("the last full %s is 216h0m0s old (full_every 168h0m0s)", full9)},
		{"a small differential", fakeSets{ids: []string{full3, diff1}, stored: map[string]int64{full3: 1000, diff1: 500}}, "", full3,
			"a differential against " + full3},
		{"a big differential", fakeSets{ids: []string{full3, diff1}, stored: map[string]int64{full3: 1000, diff1: 501}}, "", "",
			fmt.Sprintf("the last differential %s stored 50%% of the full's size (full_when_diff_exceeds 50%%)", diff1)},
		{"a differential of an empty full", fakeSets{ids: []string{full3, diff1}, stored: map[string]int64{diff1: 501}}, "", full3,
			"a differential against " + full3},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decide(context.Background(), c.sets, cfg, c.force, now)
			if err != nil || got != (Decision{Base: c.base, Reason: c.reason}) {
				t.Errorf("Decide = %+v, %v; want base %q, reason %q", got, err, c.base, c.reason)
			}
		})
	}
	if _, err := Decide(context.Background(), fakeSets{}, cfg, ForceDiff, now); !errors.Is(err, ErrNoFull) {
		t.Errorf("--diff without a full: %v, want ErrNoFull", err)
	}
	boom := errors.New("remote down")
	if _, err := Decide(context.Background(), fakeSets{err: boom}, cfg, "", now); !errors.Is(err, boom) {
		t.Errorf("an unreadable remote: %v", err)
	}
}

func TestCheckRollback(t *testing.T) {
	t0 := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	older, seen, newer := archive.NewSetID(archive.KindFull, t0.Add(-time.Hour)), archive.NewSetID(archive.KindDiff, t0), archive.NewSetID(archive.KindDiff, t0.Add(time.Hour))
	for _, c := range []struct {
		name string
		ids  []string
		seen string
		err  string
	}{
		{"nothing seen", []string{older}, "", ""},
		{"not a set id", []string{older}, "garbage", `the record of the newest set seen of root, /state/seen/h/root, is garbled ("garbage" is not a set id): refusing to run without the rollback check (if the remote is known good, delete /state/seen/h/root`},
		{"a truncated set id", []string{older}, seen[:10], "the record of the newest set seen of root, /state/seen/h/root, is garbled"},
		{"the seen set is there", []string{older, seen}, seen, ""},
		{"a newer set", []string{older, newer}, seen, ""},
		{"rolled back", []string{older}, seen, "the remote's newest set of root is " + older + ", older than " + seen +
			" which this host already saw: the remote was rolled back or its newest sets were removed (if that was intended, delete /state/seen/h/root)"},
		{"emptied", nil, seen, "the remote's newest set of root is none, older than " + seen},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckRollback(context.Background(), fakeSets{ids: c.ids}, "root", c.seen, "/state/seen/h/root")
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)) {
				t.Errorf("CheckRollback: %v, want %q", err, c.err)
			}
		})
	}
}

func TestCheckBase(t *testing.T) {
	ctx := context.Background()
	full := archive.NewSetID(archive.KindFull, time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC))
	diff := Decision{Base: full, Reason: "a differential against " + full}
	damaged := fmt.Errorf("vol-000001.tar is missing on the remote: %w", archive.ErrDamaged)
	down := errors.New("connection refused")
	for _, c := range []struct {
		name    string
		in      Decision
		damaged error
		want    Decision
		err     error
	}{
		{"a full needs no check", Decision{Reason: "there is no full yet"}, damaged, Decision{Reason: "there is no full yet"}, nil},
		{"an intact full", diff, nil, diff, nil},
		{"a damaged full", diff, damaged, Decision{Reason: "the full " + full + " is damaged on the remote (" + damaged.Error() +
			"): a differential against it could not be restored", Warn: true}, nil},
		{"the remote is down", diff, down, Decision{}, down},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := CheckBase(ctx, fakeSets{ids: []string{full}, damaged: c.damaged}, c.in, false)
			if got != c.want || !errors.Is(err, c.err) {
				t.Errorf("CheckBase = %+v, %v; want %+v, %v", got, err, c.want, c.err)
			}
		})
	}
}
