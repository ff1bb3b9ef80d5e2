package main

import (
	"context"
	"errors"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/state"
)

// decide asks the policy for a full or a differential of r's source, and
// for a differential checks that its full is intact on the remote (with
// verifyBase, its objects' hashes too); --diff without a full to take it
// against is a usage error.
func decide(ctx context.Context, cfg *Config, r *archive.Repository, force policy.Force, verifyBase bool, now time.Time) (policy.Decision, error) {
	dec, err := policy.Decide(ctx, r, cfg.Policy, force, now)
	if errors.Is(err, policy.ErrNoFull) {
		return dec, usagef("--diff: there is no full of %s/%s to take a differential against", r.Host, r.Source)
	}
	if err != nil {
		return dec, err
	}
	return policy.CheckBase(ctx, r, dec, verifyBase)
}

// checkRollback refuses a remote whose newest set of r's source is older
// than the newest this host wrote or saw.
func checkRollback(ctx context.Context, st *state.Dir, r *archive.Repository) error {
	seen, err := st.Seen(r.Host, r.Source)
	if err != nil {
		return err
	}
	return policy.CheckRollback(ctx, r, r.Source, seen, st.SeenFile(r.Host, r.Source))
}
