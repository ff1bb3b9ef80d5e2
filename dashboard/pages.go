package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/state"
)

// Health is how a source is doing, as a colour.
type Health string

// The colours of a source's health.
const (
	Green Health = "green" // the last run succeeded, no older than MaxAge
	Amber Health = "amber" // warnings, or the last success is older than MaxAge
	Red   Health = "red"   // the last run failed, no success, or older than twice MaxAge
)

// SourceRow is one source on the fleet page.
type SourceRow struct {
	SourceRef
	Health  Health
	Why     string
	LastRun *state.Run // nil: no run record on the remote
	Age     time.Duration
	Sets    int
	Stored  int64
	Err     string // the source could not be read
}

// SetRow is one set of a source, for its timeline.
type SetRow struct {
	*archive.Manifest
	Duration time.Duration // of its run, else from the manifest's times
}

// sourceData is what the fleet and the source page know of a source.
type sourceData struct {
	sets []SetRow
	runs []*state.Run
}

// load reads the manifests (each once per repository) and the run
// records (decoded once, in a bounded cache) of a source, as many at once
// as the remote declares connections.
func (s *Server) load(ctx context.Context, ref SourceRef, repo *archive.Repository) (*sourceData, error) {
	ids, err := repo.SetIDs(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := repo.RunRecords(ctx)
	if err != nil {
		return nil, err
	}
	d := &sourceData{sets: make([]SetRow, len(ids)), runs: make([]*state.Run, len(recs))}
	err = parallel(ctx, repo.Backend.Capabilities().Connections, len(ids)+len(recs), func(i int) error {
		if i < len(ids) {
			m, _, err := repo.Manifest(ctx, ids[i])
			if err != nil {
				return err
			}
			d.sets[i] = SetRow{m, m.Finished.Sub(m.Started)}
			return nil
		}
		rec := recs[i-len(ids)]
		key := ref.Host + "/" + ref.Source + "/" + rec.Name
		run, ok := s.runs.get(key)
		if !ok {
			raw, err := repo.ReadRunRecord(ctx, rec)
			if err != nil {
				return err
			}
			run = &state.Run{}
			if err := json.Unmarshal(raw, run); err != nil {
				return fmt.Errorf("run record %s of %s/%s: %w", rec.Name, ref.Host, ref.Source, err)
			}
			s.runs.put(key, run)
		}
		d.runs[i-len(ids)] = run
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(d.runs, func(i, j int) bool { return d.runs[i].Started.Before(d.runs[j].Started) })
	// A set's duration is its run's (hooks and snapshot included), when
	// the run left a record.
	took := map[string]time.Duration{}
	for _, run := range d.runs {
		if run.SetID != "" {
			took[run.SetID] = run.Finished.Sub(run.Started)
		}
	}
	for i := range d.sets {
		if t, ok := took[d.sets[i].ID]; ok {
			d.sets[i].Duration = t
		}
	}
	return d, nil
}

// parallel calls f(0) … f(n-1) in at most workers goroutines and returns
// the first error.
func parallel(ctx context.Context, workers, n int, f func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers = max(1, min(workers, n))
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

// health judges a source by its last run and its last success at now.
func (s *Server) health(d *sourceData, now time.Time) (Health, string, *state.Run, time.Duration) {
	var last, ok *state.Run
	for _, r := range d.runs {
		last = r
		if r.Outcome != "failure" {
			ok = r
		}
	}
	var lastOK time.Time
	if ok != nil {
		lastOK = ok.Finished
	}
	if n := len(d.sets); n > 0 && d.sets[n-1].Started.After(lastOK) {
		lastOK = d.sets[n-1].Started // a set made by a run that left no record
	}
	// The age of the last run: its record's, or the newest set's when a
	// run left no record (a version of backtory before run records).
	var lastT time.Time
	if last != nil {
		lastT = last.Finished
	}
	if lastOK.After(lastT) {
		lastT = lastOK
	}
	var age time.Duration
	if !lastT.IsZero() {
		age = now.Sub(lastT)
	}
	okAge := now.Sub(lastOK)
	switch {
	case lastOK.IsZero():
		return Red, "never backed up successfully", last, age
	case last != nil && last.Outcome == "failure":
		return Red, "the last run failed: " + last.Error, last, age
	case s.cfg.MaxAge > 0 && okAge > 2*s.cfg.MaxAge:
		return Red, fmt.Sprintf("last success %s ago, more than twice max age %s", humanAge(okAge), humanAge(s.cfg.MaxAge)), last, age
	case s.cfg.MaxAge > 0 && okAge > s.cfg.MaxAge:
		return Amber, fmt.Sprintf("last success %s ago, older than max age %s", humanAge(okAge), humanAge(s.cfg.MaxAge)), last, age
	case last != nil && last.Outcome == "warning":
		return Amber, fmt.Sprintf("the last run had %d warnings", last.Warnings), last, age
	}
	return Green, "", last, age
}

func (s *Server) fleet(w http.ResponseWriter, r *http.Request) {
	refs, err := s.cfg.Sources(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	now := s.cfg.Now()
	var rows []SourceRow
	for _, ref := range refs {
		row := SourceRow{SourceRef: ref}
		repo, err := s.open(ref)
		var d *sourceData
		if err == nil {
			d, err = s.load(r.Context(), ref, repo)
		}
		if err != nil {
			row.Health, row.Err = Red, err.Error()
			rows = append(rows, row)
			continue
		}
		row.Health, row.Why, row.LastRun, row.Age = s.health(d, now)
		row.Sets = len(d.sets)
		for _, set := range d.sets {
			row.Stored += set.Stats.StoredBytes
		}
		rows = append(rows, row)
	}
	s.render(w, "fleet", map[string]any{"Rows": rows, "Now": now, "MaxAge": s.cfg.MaxAge})
}

// open returns the repository of ref, once per server.
func (s *Server) open(ref SourceRef) (*archive.Repository, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if repo, ok := s.repos[ref]; ok {
		return repo, nil
	}
	repo, err := s.cfg.Open(ref.Host, ref.Source)
	if err != nil {
		return nil, err
	}
	s.repos[ref] = repo
	return repo, nil
}

// PlanRow is a set of the retention plan.
type PlanRow struct {
	policy.Pruned
	Drop bool
}

func (s *Server) source(w http.ResponseWriter, r *http.Request) {
	ref, repo, err := s.repo(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	d, err := s.load(r.Context(), ref, repo)
	if err != nil {
		s.fail(w, err)
		return
	}
	now := s.cfg.Now()
	row := SourceRow{SourceRef: ref, Sets: len(d.sets)}
	row.Health, row.Why, row.LastRun, row.Age = s.health(d, now)
	var psets []policy.Set
	for _, set := range d.sets {
		row.Stored += set.Stats.StoredBytes
		ps := policy.Set{ID: set.ID, Kind: set.Kind, Time: set.Started}
		if _, t, ok := archive.ParseSetID(set.ID); ok {
			ps.Time = t
		}
		if set.Base != nil {
			ps.Base = set.Base.ID
		}
		psets = append(psets, ps)
	}
	var plan []PlanRow
	if len(psets) > 0 {
		drop, keep := policy.PlanPrune(psets, s.cfg.KeepFulls, s.cfg.Rules, now)
		for _, p := range drop {
			plan = append(plan, PlanRow{p, true})
		}
		for _, p := range keep {
			plan = append(plan, PlanRow{p, false})
		}
		sort.Slice(plan, func(i, j int) bool { return plan[i].ID > plan[j].ID })
	}
	runs := make([]*state.Run, len(d.runs))
	for i, run := range d.runs {
		runs[len(runs)-1-i] = run // newest first
	}
	sets := make([]SetRow, len(d.sets))
	for i, set := range d.sets {
		sets[len(sets)-1-i] = set
	}
	drops := countDrops(plan)
	all := r.FormValue("all") != ""
	hidden := 0
	if !all {
		// The newest rows; the timeline shows every set.
		hidden = max(len(sets)-pageRows, len(runs)-pageRows, len(plan)-drops-pageRows, 0)
		sets, runs = sets[:min(len(sets), pageRows)], runs[:min(len(runs), pageRows)]
		var short []PlanRow
		kept := 0
		for _, p := range plan {
			if p.Drop || kept < pageRows {
				short = append(short, p)
			}
			if !p.Drop {
				kept++
			}
		}
		plan = short
	}
	s.render(w, "source", map[string]any{
		"Ref": ref, "Row": row, "Sets": sets, "Runs": runs, "Plan": plan, "Drops": drops, "Hidden": hidden,
		"Chart": timeline(d.sets), "KeepFulls": s.cfg.KeepFulls, "Rules": s.cfg.Rules,
	})
}

// pageRows is how many of the newest sets, runs and kept sets a source's
// page lists without ?all=1.
const pageRows = 100

func countDrops(plan []PlanRow) int {
	n := 0
	for _, p := range plan {
		if p.Drop {
			n++
		}
	}
	return n
}
