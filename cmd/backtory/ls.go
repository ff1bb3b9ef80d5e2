package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "ls", summary: "list the files of a set (the newest, or --at TIME, or --set ID)", run: runLs,
		flags: func() *pflag.FlagSet { return lsFlags(new(globals), new(string), new(string), new(bool)) }})
}

// lsFlags returns the flag set of ls, bound to the given values
// (also for its help, man page and completions).
func lsFlags(g *globals, setID, at *string, asJSON *bool) *pflag.FlagSet {
	fset := pflag.NewFlagSet("ls", pflag.ContinueOnError)
	g.register(fset)
	fset.StringVar(setID, "set", "", "list this set id")
	fset.StringVar(at, "at", "", "list the newest set at or before this time")
	fset.BoolVar(asJSON, "json", false, "print one JSON object per line")
	return fset
}

func runLs(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var setID, at string
	var asJSON bool
	fset := lsFlags(&g, &setID, &at, &asJSON)
	if err := st.parseFlags(fset, args); err != nil {
		return err
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	src, inside, err := g.sourceForPaths(ses.cfg, fset.Args())
	if err != nil {
		return err
	}
	r, m, err := ses.pick(ctx, src, setID, at)
	if err != nil {
		return err
	}
	table, closer, err := r.Files(ctx, m)
	if err != nil {
		return err
	}
	defer closer.Close()
	pm := newPathMatch(fset.Args(), inside)
	out := bufio.NewWriter(st.stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for {
		e, err := table.Next()
		if err == io.EOF {
			out.Flush()
			return pm.err(src, m.ID)
		}
		if err != nil {
			return err
		}
		if !pm.selects(string(e.Path)) {
			continue
		}
		if asJSON {
			if err := enc.Encode(e); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(out, lsLine(e))
	}
}

func under(p string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, q := range prefixes {
		if q == "" || p == q || strings.HasPrefix(p, q+"/") {
			return true
		}
	}
	return false
}

// lsLine formats an entry like ls -l.
func lsLine(e *archive.Entry) string {
	mode := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch e.Type {
	case archive.TypeDir:
		mode |= fs.ModeDir
	case archive.TypeSymlink:
		mode |= fs.ModeSymlink
	case archive.TypeFIFO:
		mode |= fs.ModeNamedPipe
	case archive.TypeChar:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case archive.TypeBlock:
		mode |= fs.ModeDevice
	}
	owner := e.User
	if owner == "" {
		owner = fmt.Sprint(e.UID)
	}
	group := e.Group
	if group == "" {
		group = fmt.Sprint(e.GID)
	}
	name := fmt.Sprintf("%q", string(e.Path))
	name = name[1 : len(name)-1]
	switch e.Type {
	case archive.TypeSymlink:
		name += " -> " + string(e.Target)
	case archive.TypeHardlink:
		name += " link to " + string(e.Target)
	}
	return fmt.Sprintf("%s %-8s %-8s %12d %s %s", mode, owner, group, e.Size,
		time.Unix(0, e.MTime).Local().Format("2006-01-02 15:04"), name)
}
