package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/policy"
)

func init() {
	register(command{name: "prune", summary: "delete old sets by the retention policy, and leftovers of interrupted runs", run: runPrune})
}

// leftoverGrace is how old an incomplete set must be before prune removes
// it, so that a run still uploading is never disturbed.
const leftoverGrace = 24 * time.Hour

func runPrune(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var dryRun, all bool
	fs := pflag.NewFlagSet("prune", pflag.ContinueOnError)
	g.register(fs)
	allHostsFlag(fs, &all)
	fs.BoolVarP(&dryRun, "dry-run", "n", false, "say what would be deleted, delete nothing")
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	cfg, b := ses.cfg, ses.b
	log := ses.log
	targets, err := ses.targets(ctx, &g, all)
	if err != nil {
		return err
	}
	rules, _ := policy.ParseThinning(cfg.Policy.KeepDiffs)
	release, err := acquireLock(cfg.StateDir)
	if err != nil {
		return err
	}
	defer release()
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	now := time.Now()
	for _, tg := range targets {
		name := tg.name(all)
		r, err := ses.readerOf(tg)
		if err != nil {
			return err
		}
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return err
		}
		var sets []policy.Set
		for _, id := range ids {
			m, _, err := r.Manifest(ctx, id)
			if err != nil {
				return fmt.Errorf("prune %s: %w (refusing to prune around a set it cannot read)", name, err)
			}
			set := policy.Set{ID: id, Kind: m.Kind, Time: m.Started}
			if m.Base != nil {
				set.Base = m.Base.ID
			}
			sets = append(sets, set)
		}
		drop := policy.ChoosePrune(sets, cfg.Policy.KeepFulls, rules, now)
		for _, d := range drop {
			fmt.Fprintf(st.stdout, "%s %s/%s: %s\n", verb, name, d.ID, d.Why)
			if !dryRun {
				if err := r.DeleteSet(ctx, d.ID); err != nil {
					return err
				}
				if d.Kind == archive.KindFull {
					ses.state.RemoveCache(tg.host, tg.src.Name, d.ID)
				}
			}
		}
		left, err := r.Leftovers(ctx)
		if err != nil {
			return err
		}
		for _, l := range left {
			if now.Sub(l.ModTime) < leftoverGrace {
				log.Info("leaving a recent incomplete upload alone", "dir", l.Dir)
				continue
			}
			fmt.Fprintf(st.stdout, "%s %s: %d objects left by an interrupted run\n", verb, l.Dir, len(l.Objects))
			if dryRun {
				continue
			}
			for _, o := range l.Objects {
				if err := b.Delete(ctx, l.Dir+"/"+o); err != nil {
					return fmt.Errorf("delete %s/%s: %w", l.Dir, o, err)
				}
			}
		}
	}
	return nil
}
