package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "prune", summary: "delete old sets by the retention policy, and leftovers of interrupted runs", run: runPrune})
}

// leftoverGrace is how old an incomplete set must be before prune removes
// it, so that a run still uploading is never disturbed.
const leftoverGrace = 24 * time.Hour

func runPrune(ctx context.Context, args []string) error {
	var g globals
	var dryRun bool
	fs := pflag.NewFlagSet("prune", pflag.ContinueOnError)
	g.register(fs)
	fs.BoolVarP(&dryRun, "dry-run", "n", false, "say what would be deleted, delete nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	cfg, b := ses.cfg, ses.b
	log := ses.log
	srcs, err := g.sources(cfg)
	if err != nil {
		return err
	}
	rules, _ := parseThinning(cfg.Policy.KeepDiffs)
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
	for _, s := range srcs {
		r := ses.reader(s)
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return err
		}
		var sets []setMeta
		for _, id := range ids {
			m, _, err := r.Manifest(ctx, id)
			if err != nil {
				return fmt.Errorf("prune %s: %w (refusing to prune around a set it cannot read)", s.Name, err)
			}
			sm := setMeta{id: id, kind: m.Kind, t: m.Started}
			if m.Base != nil {
				sm.base = m.Base.ID
			}
			sets = append(sets, sm)
		}
		drop := choosePrune(sets, cfg.Policy.KeepFulls, rules, now)
		for _, d := range drop {
			fmt.Printf("%s %s/%s: %s\n", verb, s.Name, d.id, d.why)
			if !dryRun {
				if err := r.DeleteSet(ctx, d.id); err != nil {
					return err
				}
				if d.kind == archive.KindFull {
					removeCachedSigs(cfg, s.Name, d.id)
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
			fmt.Printf("%s %s: %d objects left by an interrupted run\n", verb, l.Dir, len(l.Objects))
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

// setMeta is what prune needs to know of a set.
type setMeta struct {
	id, base string
	kind     archive.Kind
	t        time.Time
}

// pruned is a set prune removes, and why.
type pruned struct {
	id   string
	kind archive.Kind
	why  string
}

// choosePrune decides which sets (oldest first in sets) to delete: fulls
// beyond the newest keepFulls; differentials whose full goes or is gone;
// differentials the thinning rules do not keep. The newest set is always
// kept, and so is every full a kept differential needs.
func choosePrune(sets []setMeta, keepFulls int, rules []thinRule, now time.Time) []pruned {
	keptFull := map[string]bool{}
	nfull := 0
	for i := len(sets) - 1; i >= 0; i-- {
		if sets[i].kind == archive.KindFull && nfull < keepFulls {
			keptFull[sets[i].id] = true
			nfull++
		}
	}
	// Thinning: for each rule with a period, the newest diff of each bucket.
	keepByRule := map[string]bool{}
	for _, r := range rules {
		seen := map[int64]bool{}
		for i := len(sets) - 1; i >= 0; i-- {
			s := sets[i]
			if s.kind != archive.KindDiff || now.Sub(s.t) > r.Age {
				continue
			}
			if r.Every == 0 {
				keepByRule[s.id] = true
				continue
			}
			b := s.t.UnixNano() / int64(r.Every)
			if !seen[b] {
				seen[b] = true
				keepByRule[s.id] = true
			}
		}
	}
	var drop []pruned
	newest := ""
	if len(sets) > 0 {
		newest = sets[len(sets)-1].id
	}
	for _, s := range sets {
		if s.id == newest {
			continue
		}
		switch {
		case s.kind == archive.KindFull && !keptFull[s.id] && !neededBy(s.id, newest, sets):
			drop = append(drop, pruned{s.id, s.kind, fmt.Sprintf("older than the newest %d fulls", keepFulls)})
		case s.kind == archive.KindDiff && !keptFull[s.base]:
			drop = append(drop, pruned{s.id, s.kind, "its full " + s.base + " is not kept"})
		case s.kind == archive.KindDiff && len(rules) > 0 && !keepByRule[s.id]:
			drop = append(drop, pruned{s.id, s.kind, "thinned by keep_diffs"})
		}
	}
	sort.SliceStable(drop, func(i, j int) bool { return drop[i].kind == archive.KindDiff && drop[j].kind != archive.KindDiff })
	return drop
}

// neededBy reports whether full is the base of the set newest.
func neededBy(full, newest string, sets []setMeta) bool {
	for _, s := range sets {
		if s.id == newest && s.base == full {
			return true
		}
	}
	return false
}

// removeCachedSigs drops the local copy of a deleted full's signatures.
func removeCachedSigs(cfg *Config, source, id string) {
	matches, _ := filepath.Glob(filepath.Join(cfg.StateDir, "cache", cfg.Host, source, id+".*"))
	for _, m := range matches {
		os.Remove(m)
	}
}
