package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/snapshot"
)

func init() {
	register(command{name: "prune", summary: "delete old sets by the retention policy, and leftovers of interrupted runs", run: runPrune,
		flags: func() *pflag.FlagSet { return pruneFlags(new(globals), new(bool), new(bool), new(bool)) }})
}

// leftoverGrace is how old an incomplete set must be before prune removes
// it, so that a run still uploading is never disturbed.
const leftoverGrace = 24 * time.Hour

// pruneFlags returns the flag set of prune, bound to the given values
// (also for its help, man page and completions).
func pruneFlags(g *globals, dryRun, asJSON, all *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("prune", pflag.ContinueOnError)
	g.register(fs)
	allHostsFlag(fs, all)
	fs.BoolVarP(dryRun, "dry-run", "n", false, "say what would be kept and deleted, and why; delete nothing")
	fs.BoolVar(asJSON, "json", false, "print one JSON object per source on stdout instead of lines (see docs/json.md)")
	return fs
}

func runPrune(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var dryRun, asJSON, all bool
	fs := pruneFlags(&g, &dryRun, &asJSON, &all)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = g.finish("prune", err) }()
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
	out := st.stdout
	if asJSON {
		out = io.Discard
	}
	if l := ses.cleanLeftovers(dryRun); l.Files > 0 {
		fmt.Fprintf(out, "%s %d files (%s) that interrupted runs left in %s\n", verb, l.Files, humanBytes(l.Bytes), cfg.StateDir)
	}
	now := time.Now()
	for _, tg := range targets {
		name := tg.name(all)
		r, err := ses.repositoryOf(tg)
		if err != nil {
			return err
		}
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return err
		}
		res := pruneJSON{Source: name, DryRun: dryRun, Sets: len(ids), Kept: []prunedSet{}, Deleted: []prunedSet{}, Leftovers: []prunedExtra{}}
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
		drop, keep := policy.PlanPrune(sets, cfg.Policy.KeepFulls, rules, now)
		for _, k := range keep {
			if dryRun {
				fmt.Fprintf(out, "would keep %s/%s: %s\n", name, k.ID, k.Why)
			}
			res.Kept = append(res.Kept, prunedSet{Set: k.ID, Why: k.Why})
		}
		for _, d := range drop {
			fmt.Fprintf(out, "%s %s/%s: %s\n", verb, name, d.ID, d.Why)
			res.Deleted = append(res.Deleted, prunedSet{Set: d.ID, Why: d.Why})
			if !dryRun {
				if err := r.DeleteSet(ctx, d.ID); err != nil {
					return err
				}
				if d.Kind == archive.KindFull {
					ses.state.RemoveCache(tg.host, tg.src.Name, d.ID)
					if tg.host == cfg.Host && tg.src.Path != "" {
						// The full's kept snapshot (zfs diff's start).
						if err := snapshot.Forget(ctx, tg.src.spec(), d.ID); err != nil {
							log.Warn("cannot destroy the pruned full's kept snapshot", "err", oneLine(err.Error()))
						}
					}
				}
			}
		}
		left, err := r.Leftovers(ctx)
		if err != nil {
			return err
		}
		for _, l := range left {
			if !l.Removable(ids, now, leftoverGrace) {
				if l.Unfinished {
					log.Info("leaving an unfinished full alone: the next backup resumes it (prune removes it once a newer full is complete)", "dir", l.Dir)
				} else {
					log.Info("leaving a recent incomplete upload alone", "dir", l.Dir)
				}
				continue
			}
			fmt.Fprintf(out, "%s %s: %d objects left by an interrupted run\n", verb, l.Dir, len(l.Objects))
			res.Leftovers = append(res.Leftovers, prunedExtra{Dir: l.Dir, Objects: len(l.Objects)})
			if dryRun {
				continue
			}
			for _, o := range l.Objects {
				if err := b.Delete(ctx, l.Dir+"/"+o); err != nil {
					return fmt.Errorf("delete %s/%s: %w", l.Dir, o, err)
				}
			}
		}
		log.Info("prune done", "source", name, "dry_run", dryRun, "sets", res.Sets,
			"deleted", len(res.Deleted), "leftovers", len(res.Leftovers))
		if asJSON {
			if err := writeJSON(st.stdout, res); err != nil {
				return err
			}
		}
	}
	return nil
}
