package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "verify", summary: "check every object of every set against its manifest (--deep: decode everything)", run: runVerify})
}

func runVerify(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var setID string
	var deep, asJSON bool
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(&setID, "set", "", "verify only this set")
	fs.BoolVar(&deep, "deep", false, "also decrypt and decompress every volume and check every file's hash")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per source on stdout (see docs/json.md)")
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = g.finish("verify", err) }()
	defer ses.Close()
	srcs, err := g.sources(ses.cfg)
	if err != nil {
		return err
	}
	checked := 0
	for _, s := range srcs {
		res := verifyJSON{Source: s.Name, Deep: deep, Damaged: []verifyDamaged{}}
		started := time.Now()
		if err := verifySource(ctx, ses, &g, s, setID, deep, &res); err != nil {
			if asJSON {
				writeJSON(st.stdout, res)
			}
			return err
		}
		checked += res.Checked
		res.Seconds = time.Since(started).Round(time.Millisecond).Seconds()
		if asJSON {
			if err := writeJSON(st.stdout, res); err != nil {
				return err
			}
		}
	}
	if setID != "" && checked == 0 {
		return usagef("no set %q on the remote (see backtory list)", setID)
	}
	if !asJSON {
		fmt.Fprintf(st.stdout, "%d sets verified\n", checked)
	}
	return nil
}

// verifySource checks the sets of one source (only setID when set),
// counting them in res.
func verifySource(ctx context.Context, ses *session, g *globals, s *Source, setID string, deep bool, res *verifyJSON) error {
	log := ses.log
	{
		r := ses.reader(s)
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if setID != "" && id != setID {
				continue
			}
			m, _, err := r.Manifest(ctx, id)
			if err != nil {
				return err
			}
			g.progress.Start(m.Stats.Entries, m.Stats.Bytes)
			err = r.VerifyProgress(ctx, m, deep, g.progress.Update)
			g.progress.Done()
			if err != nil {
				return res.damaged(id, fmt.Errorf("verify %s/%s: %w", s.Name, id, err))
			}
			if setID != "" && m.Base != nil {
				// One point in time: its full must be there and intact too.
				bm, hash, err := r.Manifest(ctx, m.Base.ID)
				if err != nil {
					return res.damaged(id, fmt.Errorf("verify %s/%s: its full: %w", s.Name, id, err))
				}
				if hash != m.Base.ManifestSHA256 {
					return res.damaged(id, fmt.Errorf("verify %s/%s: the full %s on the remote is not the one it was taken against", s.Name, id, m.Base.ID))
				}
				if err := r.Verify(ctx, bm, deep); err != nil {
					return res.damaged(id, fmt.Errorf("verify %s/%s: its full: %w", s.Name, id, err))
				}
			}
			res.Checked++
			log.Info("set verified", "source", s.Name, "set", id, "deep", deep)
		}
	}
	return nil
}

// damaged records err as the damage of set id, and returns it.
func (res *verifyJSON) damaged(id string, err error) error {
	res.Damaged = append(res.Damaged, verifyDamaged{Set: id, Error: oneLine(err.Error())})
	return err
}
