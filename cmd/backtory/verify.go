package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "verify", summary: "check every object of every set against its manifest and report every damaged set (--deep: decode everything)", run: runVerify,
		flags: func() *pflag.FlagSet { return verifyFlags(new(globals), new(string), new(bool), new(bool), new(bool)) }})
}

// verifyFlags returns the flag set of verify, bound to the given values
// (also for its help, man page and completions).
func verifyFlags(g *globals, setID *string, deep, asJSON, all *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	g.register(fs)
	allHostsFlag(fs, all)
	fs.StringVar(setID, "set", "", "verify only this set")
	fs.BoolVar(deep, "deep", false, "also decrypt and decompress every volume and check every file's hash")
	fs.BoolVar(asJSON, "json", false, "print one JSON object per source on stdout (see docs/json.md)")
	return fs
}

func runVerify(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var setID string
	var deep, asJSON, all bool
	fs := verifyFlags(&g, &setID, &deep, &asJSON, &all)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = g.finish("verify", err) }()
	defer ses.Close()
	targets, err := ses.targets(ctx, &g, all)
	if err != nil {
		return err
	}
	checked := 0
	var damaged []string
	for _, tg := range targets {
		name := tg.name(all)
		res := verifyJSON{Source: name, Deep: deep, Damaged: []verifyDamaged{}}
		started := time.Now()
		err := verifySource(ctx, ses, &g, tg, name, setID, deep, &res)
		res.Seconds = time.Since(started).Round(time.Millisecond).Seconds()
		if asJSON {
			if werr := writeJSON(st.stdout, res); err == nil {
				err = werr
			}
		}
		if err != nil {
			return err
		}
		checked += res.Checked + len(res.Damaged)
		for _, d := range res.Damaged {
			damaged = append(damaged, name+"/"+d.Set)
		}
	}
	if setID != "" && checked == 0 {
		return usagef("no set %q on the remote (see backtory list)", setID)
	}
	if len(damaged) > 0 {
		return fmt.Errorf("verify: %d of %d sets damaged: %s", len(damaged), checked, strings.Join(damaged, ", "))
	}
	if !asJSON && !g.quiet {
		fmt.Fprintf(st.stdout, "%d sets verified\n", checked)
	}
	return nil
}

// verifySource checks the sets of one target (a source, or another host's) (only setID when set): every
// one, each damaged set recorded in res and logged, the others counted.
// It fails only when the sets cannot be listed or the run is interrupted.
func verifySource(ctx context.Context, ses *session, g *globals, tg target, name, setID string, deep bool, res *verifyJSON) error {
	r, err := ses.repositoryOf(tg)
	if err != nil {
		return err
	}
	ids, err := r.SetIDs(ctx)
	if err != nil {
		return err
	}
	bad := map[string]bool{} // this source's damaged sets
	for _, id := range ids {
		if setID != "" && id != setID {
			continue
		}
		if err := verifySet(ctx, r, g, id, deep, setID != "", bad); err != nil {
			if ctx.Err() != nil || errors.Is(err, archive.ErrNewerFormat) {
				return err // a set of a newer format is not damaged: this binary is too old
			}
			bad[id] = true
			res.damaged(id, err)
			ses.log.Error("set damaged", "source", name, "set", id, "err", err)
			continue
		}
		res.Checked++
		ses.log.Info("set verified", "source", name, "set", id, "deep", deep)
	}
	return nil
}

// verifySet checks set id of r; a differential also needs its full on the
// remote, the very one it was taken against and not damaged (bad holds the
// sets found damaged so far). With withBase the full is verified too.
func verifySet(ctx context.Context, r *archive.Repository, g *globals, id string, deep, withBase bool, bad map[string]bool) error {
	m, _, err := r.Manifest(ctx, id)
	if err != nil {
		return err
	}
	g.progress.Start(m.Stats.Entries, m.Stats.Bytes)
	err = r.VerifyProgress(ctx, m, deep, g.progress.Update)
	g.progress.Done()
	if err != nil {
		return err
	}
	if m.Base == nil {
		return nil
	}
	if bad[m.Base.ID] {
		return fmt.Errorf("its full %s is damaged", m.Base.ID)
	}
	bm, hash, err := r.Manifest(ctx, m.Base.ID)
	if err != nil {
		return fmt.Errorf("its full: %w", err)
	}
	if hash != m.Base.ManifestSHA256 {
		return fmt.Errorf("the full %s on the remote is not the one it was taken against", m.Base.ID)
	}
	if withBase {
		if err := r.Verify(ctx, bm, deep); err != nil {
			return fmt.Errorf("its full: %w", err)
		}
	}
	return nil
}

// damaged records err as the damage of set id.
func (res *verifyJSON) damaged(id string, err error) {
	res.Damaged = append(res.Damaged, verifyDamaged{Set: id, Error: oneLine(err.Error())})
}
