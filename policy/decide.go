package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/backtory/backtory/archive"
)

// Sets is what the policy reads of a source's sets on the remote.
type Sets interface {
	// SetIDs returns the ids of the source's complete sets, oldest first.
	SetIDs(ctx context.Context) ([]string, error)
	// Manifest returns a set's verified manifest and its hash.
	Manifest(ctx context.Context, id string) (*archive.Manifest, string, error)
	// CheckObjects checks that a set's objects are on the remote, with
	// their sizes (and with hashes, their hashes); its error wraps
	// archive.ErrDamaged when they are not.
	CheckObjects(ctx context.Context, m *archive.Manifest, hashes bool) error
}

// Force overrides the policy: "" lets it decide.
type Force string

// The overrides of `backtory backup --full` and `--diff`.
const (
	ForceFull Force = "full"
	ForceDiff Force = "diff"
)

// Decision is what Decide chose for one source.
type Decision struct {
	Base   string // the full to take a differential against; "" for a full
	Reason string
	Warn   bool // the reason is a problem to report as a warning (a damaged full)
}

// ErrNoFull is Decide's answer to ForceDiff when the source has no full.
var ErrNoFull = errors.New("there is no full to take a differential against")

// Decide chooses between a full and a differential (docs in README.md):
// ForceFull or ForceDiff win; otherwise a full when there is none, when
// the last full is older than FullEvery, or when the last differential
// against it stored more than FullWhenDiffExceed of the full's size.
func Decide(ctx context.Context, sets Sets, cfg Config, force Force, now time.Time) (Decision, error) {
	ids, err := sets.SetIDs(ctx)
	if err != nil {
		return Decision{}, err
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
	case force == ForceFull:
		return Decision{Reason: "--full was given"}, nil
	case full == "" && force == ForceDiff:
		return Decision{}, ErrNoFull
	case full == "":
		return Decision{Reason: "there is no full yet"}, nil
	case force == ForceDiff:
		return Decision{Base: full, Reason: "--diff was given"}, nil
	}
	_, fullTime, _ := archive.ParseSetID(full)
	if age := now.Sub(fullTime); age >= time.Duration(cfg.FullEvery) {
		return Decision{Reason: fmt.Sprintf("the last full %s is %s old (full_every %s)", full, age.Round(time.Minute), time.Duration(cfg.FullEvery))}, nil
	}
	if lastDiff != "" {
		fm, _, err := sets.Manifest(ctx, full)
		if err != nil {
			return Decision{}, err
		}
		dm, _, err := sets.Manifest(ctx, lastDiff)
		if err != nil {
			return Decision{}, err
		}
		if dm.Base != nil && dm.Base.ID == full && fm.Stats.StoredBytes > 0 {
			pct := 100 * float64(dm.Stats.StoredBytes) / float64(fm.Stats.StoredBytes)
			if pct > float64(cfg.FullWhenDiffExceed) {
				return Decision{Reason: fmt.Sprintf("the last differential %s stored %.0f%% of the full's size (full_when_diff_exceeds %.0f%%)", lastDiff, pct, float64(cfg.FullWhenDiffExceed))}, nil
			}
		}
	}
	return Decision{Base: full, Reason: fmt.Sprintf("a differential against %s", full)}, nil
}

// CheckBase makes sure that the full a differential would be taken
// against is intact on the remote: every object there with its size, and
// with hashes its content too. When it is not, the decision becomes a new
// full, saying why: a differential against it could never be restored.
// Other errors (the remote is down) are returned.
func CheckBase(ctx context.Context, sets Sets, dec Decision, hashes bool) (Decision, error) {
	if dec.Base == "" {
		return dec, nil
	}
	m, _, err := sets.Manifest(ctx, dec.Base)
	if err != nil {
		return Decision{}, err
	}
	err = sets.CheckObjects(ctx, m, hashes)
	if errors.Is(err, archive.ErrDamaged) {
		return Decision{Reason: fmt.Sprintf("the full %s is damaged on the remote (%v): a differential against it could not be restored", dec.Base, err), Warn: true}, nil
	}
	if err != nil {
		return Decision{}, err
	}
	return dec, nil
}
