package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "list", summary: "list the sets on the remote", run: runList,
		flags: func() *pflag.FlagSet { return listFlags(new(globals), new(bool), new(bool)) }})
}

// setRow is one line of `backtory list`.
type setRow struct {
	Host        string    `json:"host"`
	Source      string    `json:"source"`
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Base        string    `json:"base,omitempty"`
	Time        time.Time `json:"time"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	StoredBytes int64     `json:"stored_bytes"`
	Sealed      bool      `json:"sealed"`
}

// listFlags returns the flag set of list, bound to the given values
// (also for its help, man page and completions).
func listFlags(g *globals, asJSON, all *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("list", pflag.ContinueOnError)
	g.register(fs)
	fs.BoolVar(asJSON, "json", false, "print JSON")
	allHostsFlag(fs, all)
	return fs
}

func runList(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var asJSON, all bool
	fs := listFlags(&g, &asJSON, &all)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	targets, err := ses.targets(ctx, &g, all)
	if err != nil {
		return err
	}
	rows := []setRow{}
	for _, tg := range targets {
		r, err := ses.repositoryOf(tg)
		if err != nil {
			return err
		}
		ids, err := r.SetIDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			m, _, err := r.Manifest(ctx, id)
			if err != nil {
				return err
			}
			row := setRow{Host: tg.host, Source: tg.name(all), ID: m.ID, Kind: string(m.Kind), Time: m.Started, Files: m.Stats.Files,
				Bytes: m.Stats.Bytes, StoredBytes: m.Stats.StoredBytes, Sealed: m.Sealed}
			if m.Base != nil {
				row.Base = m.Base.ID
			}
			rows = append(rows, row)
		}
	}
	if asJSON {
		enc := json.NewEncoder(st.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(st.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSET\tKIND\tBASE\tTIME\tFILES\tSIZE\tSTORED")
	for _, r := range rows {
		base := r.Base
		if base == "" {
			base = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Source, r.ID, r.Kind, base,
			showTime(r.Time), r.Files, humanBytes(r.Bytes), humanBytes(r.StoredBytes))
	}
	return tw.Flush()
}
