package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "verify", summary: "check every object of every set against its manifest and report every damaged set (--deep: decode everything)", run: runVerify})
}

func runVerify(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var setID string
	var deep bool
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	g.register(fs)
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
	cfg := ses.cfg
	log := ses.log
	srcs, err := g.sources(cfg)
	if err != nil {
		return err
	}
	checked := 0
	var damaged []string
	for _, s := range srcs {
		r := ses.repository(s)
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return err
		}
		bad := map[string]bool{} // this source's damaged sets
		for _, id := range ids {
			if setID != "" && id != setID {
				continue
			}
			checked++
			if err := verifySet(ctx, r, id, deep, setID != "", bad); err != nil {
				if ctx.Err() != nil {
					return err
				}
				bad[id] = true
				damaged = append(damaged, s.Name+"/"+id)
				log.Error("set damaged", "source", s.Name, "set", id, "err", err)
				continue
			}
			log.Info("set verified", "source", s.Name, "set", id, "deep", deep)
		}
	}
	if setID != "" && checked == 0 {
		return usagef("no set %q on the remote (see backtory list)", setID)
	}
	if len(damaged) > 0 {
		return fmt.Errorf("verify: %d of %d sets damaged: %s", len(damaged), checked, strings.Join(damaged, ", "))
	}
	if !g.quiet {
		fmt.Fprintf(st.stdout, "%d sets verified\n", checked)
	}
	return nil
}

// verifySet checks set id of r; a differential also needs its full on the
// remote, the very one it was taken against and not damaged (bad holds the
// sets found damaged so far). With withBase the full is verified too.
func verifySet(ctx context.Context, r *archive.Repository, id string, deep, withBase bool, bad map[string]bool) error {
	m, _, err := r.Manifest(ctx, id)
	if err != nil {
		return err
	}
	if err := r.Verify(ctx, m, deep); err != nil {
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
