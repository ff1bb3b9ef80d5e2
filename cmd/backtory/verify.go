package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "verify", summary: "check every object of every set against its manifest (--deep: decode everything)", run: runVerify})
}

func runVerify(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var setID string
	var deep, all bool
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	g.register(fs)
	allHostsFlag(fs, &all)
	fs.StringVar(&setID, "set", "", "verify only this set")
	fs.BoolVar(&deep, "deep", false, "also decrypt and decompress every volume and check every file's hash")
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	log := ses.log
	targets, err := ses.targets(ctx, &g, all)
	if err != nil {
		return err
	}
	checked := 0
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
		for _, id := range ids {
			if setID != "" && id != setID {
				continue
			}
			m, _, err := r.Manifest(ctx, id)
			if err != nil {
				return err
			}
			if err := r.Verify(ctx, m, deep); err != nil {
				return fmt.Errorf("verify %s/%s: %w", name, id, err)
			}
			if setID != "" && m.Base != nil {
				// One point in time: its full must be there and intact too.
				bm, hash, err := r.Manifest(ctx, m.Base.ID)
				if err != nil {
					return fmt.Errorf("verify %s/%s: its full: %w", name, id, err)
				}
				if hash != m.Base.ManifestSHA256 {
					return fmt.Errorf("verify %s/%s: the full %s on the remote is not the one it was taken against", name, id, m.Base.ID)
				}
				if err := r.Verify(ctx, bm, deep); err != nil {
					return fmt.Errorf("verify %s/%s: its full: %w", name, id, err)
				}
			}
			checked++
			log.Info("set verified", "source", name, "set", id, "deep", deep)
		}
	}
	if setID != "" && checked == 0 {
		return usagef("no set %q on the remote (see backtory list)", setID)
	}
	fmt.Fprintf(st.stdout, "%d sets verified\n", checked)
	return nil
}
