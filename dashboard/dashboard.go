// Package dashboard is the read-only web dashboard of `backtory serve`:
// every host's and source's sets and runs on a remote, a source's
// timeline, run history and retention plan, and a set's tree (browse,
// versions of a file, the difference of two points in time, a download as
// tar). It reads through archive.Repository and never writes to the remote
// (ReadOnly makes sure). Pages are html/template with embedded assets and
// server-drawn SVG charts: no JavaScript.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/state"
)

//go:embed assets
var assets embed.FS

// SourceRef names one source of one host on the remote.
type SourceRef struct{ Host, Source string }

// Config is what the dashboard reads and how it judges what it reads.
type Config struct {
	// Sources lists every host's sources on the remote.
	Sources func(ctx context.Context) ([]SourceRef, error)
	// Open returns the repository of a source (with the keys that read
	// that host's sets).
	Open func(host, source string) (*archive.Repository, error)
	// MaxAge is how old a source's last successful run may be before it
	// shows amber (twice as old: red).
	MaxAge time.Duration
	// KeepFulls and Rules are the retention policy the plan is drawn from.
	KeepFulls int
	Rules     []policy.Rule
	Log       *slog.Logger
	Now       func() time.Time // time.Now when nil
}

// Server serves the dashboard's pages.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template

	mu    sync.Mutex
	repos map[SourceRef]*archive.Repository
	runs  *lru[string, *state.Run] // decoded run records, by host/source/name
}

// maxCachedRuns bounds the decoded run records kept in memory.
const maxCachedRuns = 4096

// New returns the dashboard's handler.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), pages: map[string]*template.Template{},
		repos: map[SourceRef]*archive.Repository{}, runs: newLRU[string, *state.Run](maxCachedRuns)}
	base, err := template.New("base").Funcs(funcs).ParseFS(assets, "assets/base.tmpl")
	if err != nil {
		return nil, err
	}
	for _, p := range []string{"fleet", "source", "tree", "versions", "diff"} {
		t, err := template.Must(base.Clone()).ParseFS(assets, "assets/"+p+".tmpl")
		if err != nil {
			return nil, err
		}
		s.pages[p] = t
	}
	static, _ := fs.Sub(assets, "assets/static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.fleet)
	s.mux.HandleFunc("GET /s/{host}/{source}/{$}", s.source)
	s.mux.HandleFunc("GET /s/{host}/{source}/tree", s.tree)
	s.mux.HandleFunc("GET /s/{host}/{source}/versions", s.versions)
	s.mux.HandleFunc("GET /s/{host}/{source}/diff", s.diff)
	s.mux.HandleFunc("GET /s/{host}/{source}/tar", s.tar)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

// repo returns the repository of a source named in the request's path,
// after checking that the remote has it.
func (s *Server) repo(r *http.Request) (SourceRef, *archive.Repository, error) {
	ref := SourceRef{r.PathValue("host"), r.PathValue("source")}
	s.mu.Lock()
	repo, ok := s.repos[ref]
	s.mu.Unlock()
	if ok {
		return ref, repo, nil
	}
	refs, err := s.cfg.Sources(r.Context())
	if err != nil {
		return ref, nil, err
	}
	known := false
	for _, x := range refs {
		known = known || x == ref
	}
	if !known {
		return ref, nil, errNotFound
	}
	repo, err = s.cfg.Open(ref.Host, ref.Source)
	if err != nil {
		return ref, nil, err
	}
	s.mu.Lock()
	s.repos[ref] = repo
	s.mu.Unlock()
	return ref, repo, nil
}

var errNotFound = errors.New("no such source on the remote")

// render writes page p with data, or an error page.
func (s *Server) render(w http.ResponseWriter, p string, data any) {
	var b strings.Builder
	if err := s.pages[p].ExecuteTemplate(&b, "page", data); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, b.String())
}

// fail answers with an error: 404 for what does not exist, else 500.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var nf notFoundError
	if errors.Is(err, errNotFound) || errors.As(err, &nf) {
		code = http.StatusNotFound
	} else {
		s.cfg.Log.Warn("dashboard", "err", err)
	}
	http.Error(w, err.Error(), code)
}

// notFoundError is a request for something a set does not hold.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string { return e.msg }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"bytes": humanBytes,
	"time":  showTime,
	"age":   humanAge,
	"q":     url.QueryEscape,
	"p":     url.PathEscape,
	"secs": func(d time.Duration) string {
		return d.Round(100 * time.Millisecond).String()
	},
	"base":  func(n archive.Name) string { return path.Base(string(n)) },
	"mode":  func(m uint32) string { return fmt.Sprintf("%04o", m) },
	"mtime": func(ns int64) string { return showTime(time.Unix(0, ns)) },
	"short": func(h string) string {
		if len(h) > 16 {
			return h[:16] + "…"
		}
		return h
	},
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// humanBytes writes n in binary units: 512 B, 1.5 KiB, 3.2 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanAge writes d with its two largest units: 45s, 12m30s, 3h5m, 2d4h.
func humanAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	day := 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < day:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/day), int(d%day/time.Hour))
}
