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
