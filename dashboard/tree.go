package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/backtory/backtory/archive"
)

// maxRows bounds the rows of a directory listing or a difference page;
// the rest is counted, not shown.
const maxRows = 5000

// pick returns the set that at names (a set id or a time, as --at takes
// it; the newest when ""), and the ids of all sets, oldest first.
func pick(ctx context.Context, repo *archive.Repository, at string) (*archive.Manifest, []string, error) {
	ids, err := repo.SetIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, notFoundError{"the source has no sets"}
	}
	id := ids[len(ids)-1]
	if at != "" {
		if id, _, err = archive.PickAt(ids, at, time.UTC); err != nil {
			return nil, nil, notFoundError{err.Error()}
		}
		if id == "" {
			return nil, nil, notFoundError{fmt.Sprintf("no set at or before %s", at)}
		}
	}
	m, _, err := repo.Manifest(ctx, id)
	return m, ids, err
}

// cleanPath returns p as a path in a file table: relative, "." the root.
func cleanPath(p string) string {
	c := path.Clean("/" + p)[1:]
	if c == "" {
		return "."
	}
	return c
}

// each calls f for every entry of set m's file table, in walk order,
// until f returns false.
func each(ctx context.Context, repo *archive.Repository, m *archive.Manifest, f func(e *archive.Entry) bool) error {
	table, tc, err := repo.Files(ctx, m)
	if err != nil {
		return err
	}
	defer tc.Close()
	for {
		e, err := table.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !f(e) {
			return nil
		}
	}
}

// Crumb is one directory of the path shown above a listing.
type Crumb struct{ Name, Path string }

func crumbs(p string) []Crumb {
	out := []Crumb{{"/", "."}}
	if p == "." {
		return out
	}
	parts := strings.Split(p, "/")
	for i := range parts {
		out = append(out, Crumb{parts[i], strings.Join(parts[:i+1], "/")})
	}
	return out
}

func (s *Server) tree(w http.ResponseWriter, r *http.Request) {
	ref, repo, err := s.repo(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	m, ids, err := pick(r.Context(), repo, r.FormValue("at"))
	if err != nil {
		s.fail(w, err)
		return
	}
	dir := cleanPath(r.FormValue("path"))
	var self *archive.Entry
	var children []*archive.Entry
	more := 0
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	err = each(r.Context(), repo, m, func(e *archive.Entry) bool {
		p := string(e.Path)
		switch {
		case p == dir:
			self = e
		case p != "." && strings.HasPrefix(p, prefix):
			if strings.Contains(p[len(prefix):], "/") {
				break
			}
			if len(children) < maxRows {
				children = append(children, e)
			} else {
				more++
			}
		case self != nil:
			return false // the table is in walk order: the subtree is over
		}
		return true
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	if self == nil {
		s.fail(w, notFoundError{fmt.Sprintf("set %s has no %s", m.ID, dir)})
		return
	}
	s.render(w, "tree", map[string]any{"Ref": ref, "Set": m, "IDs": ids, "Dir": dir, "Self": self,
		"Children": children, "More": more, "Crumbs": crumbs(dir), "Join": prefix})
}

// Version is a path's state in one set.
type Version struct {
	SetID   string
	Kind    archive.Kind
	Time    time.Time
	Entry   *archive.Entry // nil: not in this set
	Changed bool           // differs from the version before
	First   bool           // the oldest set's version
	Hash    string         // content hash, known or taken from the full
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	ref, repo, err := s.repo(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	p := cleanPath(r.FormValue("path"))
	ids, err := repo.SetIDs(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	var vs []Version
	fullHash := map[string]string{} // a full's hash of p, for its differentials' unchanged entries
	var prev *Version
	for _, id := range ids {
		m, _, err := repo.Manifest(r.Context(), id)
		if err != nil {
			s.fail(w, err)
			return
		}
		v := Version{SetID: id, Kind: m.Kind, Time: m.Started}
		err = each(r.Context(), repo, m, func(e *archive.Entry) bool {
			switch c := archive.ComparePaths(string(e.Path), p); {
			case c == 0:
				v.Entry = e
				return false
			case c > 0:
				return false // past where p would be: not in this set
			}
			return true
		})
		if err != nil {
			s.fail(w, err)
			return
		}
		if e := v.Entry; e != nil {
			v.Hash = e.Hash
			if m.Kind == archive.KindFull {
				fullHash[id] = e.Hash
			} else if v.Hash == "" && m.Base != nil && (e.Change == archive.ChangeUnchanged || e.Change == archive.ChangeMeta) {
				v.Hash = fullHash[m.Base.ID]
			}
		}
		v.First = prev == nil
		v.Changed = prev == nil || !sameVersion(prev, &v)
		vs = append(vs, v)
		prev = &vs[len(vs)-1]
	}
	for i, j := 0, len(vs)-1; i < j; i, j = i+1, j-1 {
		vs[i], vs[j] = vs[j], vs[i]
	}
	s.render(w, "versions", map[string]any{"Ref": ref, "Path": p, "Versions": vs, "Crumbs": crumbs(p)})
}

func sameVersion(a, b *Version) bool {
	if (a.Entry == nil) != (b.Entry == nil) {
		return false
	}
	if a.Entry == nil {
		return true
	}
	return !entryChanged(a.Entry, b.Entry, a.Hash, b.Hash)
}

// entryChanged says whether two states of a path differ: kind, content
// (by hash when both are known, else by size and time), metadata.
func entryChanged(a, b *archive.Entry, ha, hb string) bool {
	if a.Type != b.Type || a.Size != b.Size || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.Target != b.Target {
		return true
	}
	if ha != "" && hb != "" {
		return ha != hb
	}
	return a.MTime != b.MTime
}

// Change is one path of a difference.
type Change struct {
	Path     string
	What     string // added, removed, changed
	From, To *archive.Entry
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	ref, repo, err := s.repo(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx := r.Context()
	ids, err := repo.SetIDs(ctx)
	if err != nil {
		s.fail(w, err)
		return
	}
	from, to := r.FormValue("from"), r.FormValue("to")
	if to == "" && len(ids) > 0 {
		to = ids[len(ids)-1]
	}
	if from == "" && len(ids) > 1 {
		from = ids[len(ids)-2]
	}
	if from == "" {
		s.fail(w, notFoundError{"a difference needs two sets"})
		return
	}
	a, _, err := pick(ctx, repo, from)
	if err != nil {
		s.fail(w, err)
		return
	}
	b, _, err := pick(ctx, repo, to)
	if err != nil {
		s.fail(w, err)
		return
	}
	changes, counts, err := diffSets(ctx, repo, a, b)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "diff", map[string]any{"Ref": ref, "IDs": ids, "From": a, "To": b, "Changes": changes, "Counts": counts,
		"More": counts["added"] + counts["removed"] + counts["changed"] - len(changes)})
}

// diffSets merge-joins the file tables of a and b (both in walk order) and
// returns the paths added, removed and changed from a to b (at most
// maxRows of them) and how many of each.
func diffSets(ctx context.Context, repo *archive.Repository, a, b *archive.Manifest) ([]Change, map[string]int, error) {
	ta, ca, err := repo.Files(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	defer ca.Close()
	tb, cb, err := repo.Files(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	defer cb.Close()
	next := func(t *archive.TableReader) (*archive.Entry, error) {
		e, err := t.Next()
		if err == io.EOF {
			return nil, nil
		}
		return e, err
	}
	counts := map[string]int{"added": 0, "removed": 0, "changed": 0}
	var out []Change
	add := func(c Change) {
		counts[c.What]++
		if len(out) < maxRows {
			out = append(out, c)
		}
	}
	ea, err := next(ta)
	if err != nil {
		return nil, nil, err
	}
	eb, err := next(tb)
	if err != nil {
		return nil, nil, err
	}
	for ea != nil || eb != nil {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		c := 0
		switch {
		case ea == nil:
			c = 1
		case eb == nil:
			c = -1
		default:
			c = archive.ComparePaths(string(ea.Path), string(eb.Path))
		}
		switch {
		case c < 0:
			add(Change{Path: string(ea.Path), What: "removed", From: ea})
			ea, err = next(ta)
		case c > 0:
			add(Change{Path: string(eb.Path), What: "added", To: eb})
			eb, err = next(tb)
		default:
			if entryChanged(ea, eb, ea.Hash, eb.Hash) {
				add(Change{Path: string(ea.Path), What: "changed", From: ea, To: eb})
			}
			if ea, err = next(ta); err == nil {
				eb, err = next(tb)
			}
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return out, counts, nil
}

// Download is the one function the tar download goes through, so that it
// can move to a random-access read path: it writes the entries of set m
// under paths to w as a tar stream.
var Download = func(ctx context.Context, repo *archive.Repository, m *archive.Manifest, paths []string, w io.Writer) error {
	_, err := repo.WriteTar(ctx, m, paths, w)
	return err
}

func (s *Server) tar(w http.ResponseWriter, r *http.Request) {
	ref, repo, err := s.repo(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	m, _, err := pick(r.Context(), repo, r.FormValue("at"))
	if err != nil {
		s.fail(w, err)
		return
	}
	p := cleanPath(r.FormValue("path"))
	name := ref.Source + "-" + m.ID
	if p != "." {
		name += "-" + strings.ReplaceAll(p, "/", "_")
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", sanitizeName(name)+".tar"))
	var paths []string
	if p != "." {
		paths = []string{p}
	}
	sw := &startedWriter{w: w}
	if err := Download(r.Context(), repo, m, paths, sw); err != nil {
		if !sw.started {
			w.Header().Del("Content-Disposition")
			s.fail(w, err)
			return
		}
		// The status is sent: cut the stream so the client sees a broken tar.
		s.cfg.Log.Warn("download stopped", "source", ref.Host+"/"+ref.Source, "set", m.ID, "path", p, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// sanitizeName keeps a download's file name to safe characters.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r) {
			return r
		}
		return '_'
	}, s)
}

// startedWriter tells whether anything was written.
type startedWriter struct {
	w       io.Writer
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}
