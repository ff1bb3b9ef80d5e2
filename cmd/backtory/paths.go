package main

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/backtory/backtory/archive"
)

// sourceForPaths returns the source that ls and restore act on, and their
// PATH arguments as paths inside it. A path is typed as it was live
// (/etc/hosts for a source at /etc) or as the path inside the source
// (hosts, /hosts). Without --source, a config of several sources picks the
// source from the live paths given: the one whose path holds them.
func (g *globals) sourceForPaths(cfg *Config, args []string) (*Source, []string, error) {
	var src *Source
	switch {
	case g.source != "" || len(cfg.Sources) == 1:
		s, err := g.oneSource(cfg)
		if err != nil {
			return nil, nil, err
		}
		src = s
	default:
		for _, a := range args {
			s := holdingSource(cfg, a)
			if s == nil {
				return nil, nil, usagef("%q is in no source's path: with several sources, say which with --source (%s)", a, sourceList(cfg))
			}
			if src != nil && s != src {
				return nil, nil, usagef("%q is in source %s, %q in source %s: give the paths of one source at a time", args[0], src.Name, a, s.Name)
			}
			src = s
		}
		if src == nil {
			return nil, nil, usagef("the config has several sources: say which with --source (%s), or give live paths (such as %s)", sourceList(cfg), cfg.Sources[0].Path)
		}
	}
	inside := make([]string, len(args))
	for i, a := range args {
		inside[i] = insidePath(src, a)
	}
	return src, inside, nil
}

// holdingSource returns the source whose path holds the absolute path p
// (the deepest one), or nil.
func holdingSource(cfg *Config, p string) *Source {
	if !path.IsAbs(p) {
		return nil
	}
	p = path.Clean(p)
	var best *Source
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		if under(strings.TrimPrefix(p, "/"), []string{strings.TrimPrefix(path.Clean(s.Path), "/")}) &&
			(best == nil || len(s.Path) > len(best.Path)) {
			best = s
		}
	}
	return best
}

// insidePath returns the path inside src ("" for the whole source) of a
// PATH argument: a live path under the source's path, or a path inside it.
func insidePath(src *Source, p string) string {
	p = path.Clean("/" + p)
	root := path.Clean(src.Path)
	if root == "/" {
		return strings.TrimPrefix(p, "/")
	}
	if p == root {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, root+"/"); ok {
		return rest
	}
	return strings.TrimPrefix(p, "/")
}

// livePath is the path on the live system of a path inside src.
func livePath(src *Source, inside string) string { return path.Join(src.Path, inside) }

// pathMatch tracks which of the PATH arguments a set's file table holds
// and, for those it lacks, the nearest parent it holds.
type pathMatch struct {
	args   []string // as typed
	inside []string
	found  []bool
	parent []string
}

func newPathMatch(args, inside []string) *pathMatch {
	return &pathMatch{args: args, inside: inside, found: make([]bool, len(inside)), parent: make([]string, len(inside))}
}

// selects reports whether the table's path p is asked for (every path is,
// without arguments), and notes what it learns from p.
func (pm *pathMatch) selects(p string) bool {
	if len(pm.inside) == 0 {
		return true
	}
	sel := false
	for i, q := range pm.inside {
		switch {
		case q == "" || p == q || strings.HasPrefix(p, q+"/"):
			pm.found[i], sel = true, true
		case strings.HasPrefix(q, p+"/") && len(p) > len(pm.parent[i]):
			pm.parent[i] = p
		}
	}
	return sel
}

// err says which arguments the set does not hold: what paths are relative
// to, and the nearest parent that exists.
func (pm *pathMatch) err(src *Source, setID string) error {
	var msgs []string
	for i, ok := range pm.found {
		if ok {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%q (the nearest parent in the set is %s)", pm.args[i], livePath(src, pm.parent[i])))
	}
	if len(msgs) == 0 {
		return nil
	}
	return usagef("set %s of source %s has no %s: paths are live paths under %s or relative to it",
		setID, src.Name, strings.Join(msgs, ", no "), src.Path)
}

// checkPaths reads the file table of m and returns pm.err: every argument
// the set lacks.
func checkPaths(ctx context.Context, r *archive.Repository, m *archive.Manifest, src *Source, pm *pathMatch) error {
	if len(pm.inside) == 0 {
		return nil
	}
	table, closer, err := r.Files(ctx, m)
	if err != nil {
		return err
	}
	defer closer.Close()
	for {
		e, err := table.Next()
		if err == io.EOF {
			return pm.err(src, m.ID)
		}
		if err != nil {
			return err
		}
		pm.selects(string(e.Path))
	}
}

// sourceList names the configured sources.
func sourceList(cfg *Config) string {
	names := make([]string, len(cfg.Sources))
	for i, s := range cfg.Sources {
		names[i] = s.Name + " at " + s.Path
	}
	return strings.Join(names, ", ")
}
