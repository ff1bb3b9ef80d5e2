package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/hooks"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/snapshot"
	"github.com/backtory/backtory/state"
)

func init() {
	register(command{name: "backup", summary: "back up every source (a full, or a differential against the last full)", run: runBackup,
		flags: func() *pflag.FlagSet {
			return backupFlags(new(globals), new(bool), new(bool), new(bool), new(bool), new(bool))
		}})
}

// backupFlags returns the flag set of backup, bound to the given values
// (also for its help, man page and completions).
func backupFlags(g *globals, full, diff, verifyBase, dryRun, asJSON *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("backup", pflag.ContinueOnError)
	g.register(fs)
	fs.BoolVar(full, "full", false, "write a full, whatever the policy says")
	fs.BoolVar(diff, "diff", false, "write a differential against the last full, whatever the policy says")
	fs.BoolVar(verifyBase, "verify-base", false, "before a differential, download its full's objects and check their hashes (by default: that each is there with its size)")
	fs.BoolVarP(dryRun, "dry-run", "n", false, "say what would be written (full or diff, why, files, bytes; with -v every changed path); write nothing, run no hooks, take no snapshot")
	fs.BoolVar(asJSON, "json", false, "print one JSON object per source on stdout (see docs/json.md)")
	return fs
}

func runBackup(ctx context.Context, st streams, args []string) (err error) {
	g := globals{streams: st}
	var full, diff, dryRun, verifyBase, asJSON bool
	fs := backupFlags(&g, &full, &diff, &verifyBase, &dryRun, &asJSON)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("backup takes no arguments (got %q)", fs.Arg(0))
	}
	if full && diff {
		return usagef("backup: --full and --diff exclude each other")
	}
	var force policy.Force
	switch {
	case full:
		force = policy.ForceFull
	case diff:
		force = policy.ForceDiff
	}
	cfg, log, err := g.setup()
	if err != nil {
		return err
	}
	defer func() { err = g.finish("backup", err) }()
	srcs, err := g.sources(cfg)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if fi, err := os.Stat(s.Path); err != nil || !fi.IsDir() {
			return usagef("%s:%d: source %s: path %s is not a directory that exists", cfg.path, cfg.line("sources"), s.Name, s.Path)
		}
	}
	runLog := &runLog{}
	log = runLog.capture(log)
	run := &backupRun{session: newSession(cfg, log), runLog: runLog, force: force, progress: g.progress, out: g.stdout,
		logFile: g.logFile, started: time.Now(), listChanges: g.verbose, verifyBase: verifyBase}
	if asJSON {
		run.json = g.stdout
	}
	if dryRun {
		if err := run.connect(ctx); err != nil {
			return err
		}
		defer run.Close()
		return run.dryRun(ctx, srcs)
	}
	return run.run(ctx, srcs)
}

// backupRun is one `backtory backup`: hooks around everything, then each
// source in turn.
type backupRun struct {
	*session
	force    policy.Force
	progress *progress
	out      io.Writer // what --dry-run says
	json     io.Writer // --json: one result per source; nil without
	logFile  string    // --log-file, for the hooks
	started  time.Time
	warnings []string

	listChanges bool // --dry-run -v: every changed path
	verifyBase  bool // check the hashes of a differential's full first
	// recs are the sources' run records, in the order they ran; they are
	// saved together when the run ends (record).
	recs []state.Run
	// runLog keeps the log lines for the run records on the remote.
	runLog *runLog
	// sourceWarnings counts the warnings that belong to one source's run;
	// the others (global hooks) count for every source.
	sourceWarnings int
}

// run backs up srcs in order; a failing source stops the run. Whatever
// fails after the config was read (the remote, a hook, a snapshot, a
// source) is a failure of the run: on_failure hooks run, and every source
// is recorded as failed for status and the metrics. Only a usage error
// (exit 2) or another run holding the lock (exit 4) leave no record.
func (r *backupRun) run(ctx context.Context, srcs []*Source) error {
	env := hooks.Env{Host: r.cfg.Host, LogFile: r.logFile}
	release, err := acquireLock(r.cfg.StateDir)
	if err != nil {
		return err
	}
	defer release()
	err = r.connect(ctx)
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	if err == nil {
		defer r.Close()
		r.cleanLeftovers(false)
		if r.sealer == nil && remote.IsNetwork(r.cfg.Remote.URL) {
			r.log.Warn("objects go over the network unsealed: add an 'encryption:' section (see backtory init)")
		}
		err = r.phase(ctx, hooks.PreBackup, r.cfg.Hooks.PreBackup, env)
		if err == nil {
			for _, s := range srcs {
				if err = r.source(ctx, s, env); err != nil {
					break
				}
			}
		}
		always := context.WithoutCancel(ctx)
		env.Status, env.Error = r.outcome(err)
		if herr := r.phase(always, hooks.PostBackup, r.cfg.Hooks.PostBackup, env); err == nil {
			err = herr
		}
	}
	if err != nil {
		env.Status, env.Error = r.outcome(err)
		r.phase(context.WithoutCancel(ctx), hooks.OnFailure, r.cfg.Hooks.OnFailure, env)
	}
	r.record(ctx, srcs, err)
	if err != nil {
		return err
	}
	if n := len(r.warnings); n > 0 {
		// The warning itself, not just a count: under cron with --quiet
		// this line may be all that is read.
		msg := fmt.Sprintf("backup done with 1 warning: %s", r.warnings[0])
		if n > 1 {
			msg = fmt.Sprintf("backup done with %d warnings (the first: %s; each is logged above)", n, r.warnings[0])
		}
		return warningsError{msg}
	}
	return nil
}

// record saves the run of every source in srcs for status and the
// metrics, and uploads it beside the sets for the dashboard: the records of the sources that ran, and a failure for those
// that did not run because err stopped the run first. Warnings of no
// source (global hooks, the unsealed remote) count for each.
func (r *backupRun) record(ctx context.Context, srcs []*Source, err error) {
	global := len(r.warnings) - r.sourceWarnings
	now := time.Now()
	for _, s := range srcs {
		var rec *state.Run
		for i := range r.recs {
			if r.recs[i].Source == s.Name {
				rec = &r.recs[i]
			}
		}
		if rec == nil {
			if err == nil {
				continue // cannot happen: every source ran
			}
			rec = &state.Run{Host: r.cfg.Host, Source: s.Name, Started: r.started, Finished: now,
				Outcome: hooks.StatusFailure, Error: "not backed up: " + oneLine(err.Error())}
		}
		rec.Warnings += global
		if rec.Outcome == hooks.StatusSuccess && rec.Warnings > 0 {
			rec.Outcome = hooks.StatusWarning
		}
		if rec.Outcome == hooks.StatusSuccess && err != nil {
			// A later step (a global post_backup hook) failed the run.
			rec.Outcome, rec.Error = hooks.StatusFailure, oneLine(err.Error())
		}
		if serr := r.state.SaveRun(*rec); serr != nil {
			r.log.Warn("cannot record the run for backtory status", "source", s.Name, "err", serr)
		}
		r.publishRun(context.WithoutCancel(ctx), s, *rec)
		r.result(*rec)
	}
	if r.cfg.MetricsFile != "" {
		recs, _ := lastRuns(r.cfg) // unreadable records are reported as never run
		if merr := writeMetrics(r.cfg.MetricsFile, recs); merr != nil {
			r.log.Warn("cannot write metrics_file", "err", merr)
		}
	}
}

// oneLine joins the lines of msg with "; ".
func oneLine(msg string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ; ")), " ")
}

// phase runs hooks; a failure of continue-hooks becomes a warning.
func (r *backupRun) phase(ctx context.Context, phase string, hs []hooks.Hook, env hooks.Env) error {
	if len(hs) == 0 {
		return nil
	}
	err := hooks.Run(ctx, phase, hs, env, r.log)
	if hooks.IsWarning(err) {
		r.warn(r.log, err.Error(), "phase", phase)
		return nil
	}
	return err
}

// warn records a warning of the run and logs it. Every warning of a backup
// takes this one way: the archive's (a file changed while read), failed
// on_error: continue hooks, the layout, the recovery script, the snapshot.
func (r *backupRun) warn(log *slog.Logger, msg string, args ...any) {
	r.warnings = append(r.warnings, msg)
	log.Warn(msg, args...)
}

func (r *backupRun) outcome(err error) (status, msg string) {
	switch {
	case err != nil:
		return hooks.StatusFailure, err.Error()
	case len(r.warnings) > 0:
		return hooks.StatusWarning, r.warnings[0]
	}
	return hooks.StatusSuccess, ""
}

// source backs up one source: its hooks, its snapshot, a full or a
// differential, and cleanup whatever happens.
func (r *backupRun) source(ctx context.Context, s *Source, genv hooks.Env) (err error) {
	log := r.log.With("source", s.Name)
	env := genv
	env.Source, env.SourcePath = s.Name, s.Path
	always := context.WithoutCancel(ctx)
	rec := state.Run{Host: r.cfg.Host, Source: s.Name, Started: time.Now()}
	warnedBefore := len(r.warnings)
	var dec policy.Decision
	defer func() {
		rec.Finished, rec.Warnings = time.Now(), len(r.warnings)-warnedBefore
		r.sourceWarnings += rec.Warnings
		rec.Outcome = hooks.StatusSuccess
		if err != nil {
			// The error itself ends the run: report prints it, and
			// globals.finish logs it to --log-file.
			rec.Outcome, rec.Error = hooks.StatusFailure, oneLine(err.Error())
		} else {
			log.Info("backup done", runSummary(rec)...)
		}
		r.recs = append(r.recs, rec)
	}()
	defer func() {
		env.Status, env.Error = r.outcome(err)
		if herr := r.phase(always, hooks.PostBackup, s.Hooks.PostBackup, env); err == nil {
			err = herr
		}
		if err != nil {
			env.Status, env.Error = r.outcome(err)
			r.phase(always, hooks.OnFailure, s.Hooks.OnFailure, env)
			err = fmt.Errorf("source %s: %w", s.Name, err)
		}
	}()
	if err := r.phase(ctx, hooks.PreBackup, s.Hooks.PreBackup, env); err != nil {
		return err
	}
	repo := r.repository(s)
	if err := checkRollback(ctx, r.state, repo); err != nil {
		return err
	}
	started := time.Now()
	resume, err := r.resumable(ctx, repo, s, log)
	if err != nil {
		return err
	}
	if resume.From != nil {
		dec = policy.Decision{Reason: fmt.Sprintf("resuming the interrupted full %s (%d volumes uploaded, after %s)",
			resume.From.ID, len(resume.From.Volumes), resume.From.After)}
		started = resume.From.Started
	} else if dec, err = decide(ctx, r.cfg, repo, r.force, r.verifyBase, started); err != nil {
		return err
	}
	rec.Why = dec.Reason
	kind := archive.KindFull
	if dec.Base != "" {
		kind = archive.KindDiff
	}
	if dec.Warn {
		r.warn(log, "writing a full: "+dec.Reason)
	}
	if resume.From == nil {
		if started, err = freeSetTime(ctx, repo, kind, started, log); err != nil {
			return err
		}
	}
	id := archive.NewSetID(kind, started)
	env.SetID, env.SetKind = id, string(kind)
	log.Info("writing a "+string(kind), "set", id, "why", dec.Reason)

	spec := s.spec()
	if err := snapshot.CleanupStale(ctx, spec); err != nil {
		return fmt.Errorf("remove stale snapshots: %w", err)
	}
	pre := append(append([]hooks.Hook(nil), r.cfg.Hooks.PreSnapshot...), s.Hooks.PreSnapshot...)
	var snap snapshot.Snapshot
	err = r.phase(ctx, hooks.PreSnapshot, pre, env)
	if err == nil {
		snap, err = snapshot.Create(ctx, spec, id)
	}
	if snap != nil {
		defer snap.Release(always)
		env.SnapshotPath = snap.Path()
	}
	env.Status, _ = r.outcome(err)
	post := append(append([]hooks.Hook(nil), s.Hooks.PostSnapshot...), r.cfg.Hooks.PostSnapshot...)
	if herr := r.phase(ctx, hooks.PostSnapshot, post, env); err == nil {
		err = herr
	}
	if err != nil {
		return err
	}

	// The machine's layout, from the same moment as the data.
	layout, lerr := captureLayout(ctx)
	if lerr != nil {
		r.warn(log, "cannot capture the machine's layout for bare-metal recovery: "+lerr.Error())
	}
	comp, _ := archive.ParseCompression(r.cfg.Compression)
	opt := archive.BackupOptions{
		SourcePath:  s.Path,
		Root:        snap.Path(),
		Snapshot:    snapshotLabel(snap),
		Exclude:     r.excludes(s),
		CrossMounts: s.CrossMounts,
		VolumeSize:  int64(r.cfg.VolumeSize),
		Compression: comp,
		Uploads:     r.b.Capabilities().Connections,
		Tool:        "backtory " + version,
		Started:     started,
		Layout:      layout,
		Progress: func(entries int, read int64) {
			rec.Read = read
			r.progress.Update(entries, read)
		},
		BeforeCommit: snap.Verify,
		Resume:       resume,
		Warn: func(path, msg string) {
			r.warn(log, path+": "+msg)
		},
	}
	if dec.Base != "" {
		base, err := repo.OpenBase(ctx, dec.Base, r.state)
		if err != nil {
			return err
		}
		defer base.Close()
		opt.Base = base
		opt.Changes = changeList(ctx, spec, snap, dec.Base, log)
		opt.Info = func(msg string) { log.Info(msg) }
	}
	m, err := r.backupWithProgress(ctx, repo, dec, opt, log)
	if err != nil {
		return err
	}
	if m.Kind == archive.KindFull {
		// The next differentials ask zfs diff what changed since this one.
		if err := snapshot.Keep(ctx, snap, m.ID); err != nil {
			r.warn(log, err.Error())
		}
	}
	if err := r.publishRecovery(ctx, m); err != nil {
		r.warn(log, "cannot publish the recovery script: "+err.Error())
	}
	rec.SetID, rec.Kind, rec.Files, rec.Bytes, rec.Stored = m.ID, string(m.Kind), m.Stats.Files, m.Stats.Bytes, m.Stats.StoredBytes
	rec.Entries, rec.Changed, rec.Scan = m.Stats.Entries, m.Stats.Changed, m.Scan
	if err := r.state.Remember(r.cfg.Host, s.Name, m.ID); err != nil {
		log.Warn("cannot remember the newest set", "err", err)
	}
	if err := snap.Release(ctx); err != nil {
		if errors.Is(err, snapshot.ErrInvalidated) {
			return err
		}
		r.warn(log, "release snapshot: "+err.Error())
	}
	return nil
}

// freeSetTime returns the start time of a new set of kind: t, or, when a
// set of that kind already started in the same second (set ids count
// seconds), the next second, after waiting for it.
func freeSetTime(ctx context.Context, r *archive.Repository, kind archive.Kind, t time.Time, log *slog.Logger) (time.Time, error) {
	for {
		taken, err := r.SetExists(ctx, archive.NewSetID(kind, t))
		if err != nil || !taken {
			return t, err
		}
		next := t.Truncate(time.Second).Add(time.Second)
		log.Info("a set started in this second already: waiting for the next second (set ids count seconds)", "set", archive.NewSetID(kind, t))
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(time.Until(next)):
		}
		t = time.Now()
	}
}

// backupWithProgress writes the set with the progress shown, if it is:
// what the backup will read is estimated beside it (see expected), and the
// line shows the total once it is known, so the estimate never delays
// the backup.
func (r *backupRun) backupWithProgress(ctx context.Context, reader *archive.Repository, dec policy.Decision, opt archive.BackupOptions, log *slog.Logger) (*archive.Manifest, error) {
	r.progress.Start(0, 0)
	defer r.progress.Done()
	if !r.progress.Shown() {
		return reader.Backup(ctx, opt)
	}
	pctx, stop := context.WithCancel(ctx)
	estimated := make(chan struct{})
	go func() {
		defer close(estimated)
		if entries, bytes := r.expected(pctx, reader, dec, opt, log); pctx.Err() == nil {
			r.progress.SetTotal(entries, bytes)
		}
	}()
	m, err := reader.Backup(ctx, opt)
	stop()
	<-estimated
	return m, err
}

// expected returns the entries and bytes a backup will read, for the
// progress line's percentage and ETA: for a
// full, the tree the last successful run of the source found; for a
// differential, or a full without a previous run, a walk of the tree that
// reads no content (a differential's against a second reading of the
// full's table: the new and changed files' bytes). 0, 0 when unknown.
func (r *backupRun) expected(ctx context.Context, reader *archive.Repository, dec policy.Decision, opt archive.BackupOptions, log *slog.Logger) (int, int64) {
	opt.Warn, opt.Progress = nil, nil
	if dec.Base == "" {
		recs, _ := r.state.Runs(r.cfg.Host, []string{reader.Source})
		if len(recs) == 1 && recs[0].LastSuccess != nil && recs[0].LastSuccess.Bytes > 0 {
			last := recs[0].LastSuccess
			return max(last.Entries, last.Files), last.Bytes
		}
	} else {
		base, err := reader.OpenBase(ctx, dec.Base, r.state)
		if err != nil {
			log.Debug("no estimate for the progress", "err", err)
			return 0, 0
		}
		defer base.Close()
		opt.Base = base
	}
	st, err := archive.Plan(ctx, opt, nil)
	if err != nil {
		log.Debug("no estimate for the progress", "err", err)
		return 0, 0
	}
	if dec.Base == "" {
		return st.Entries, st.Bytes
	}
	return st.Entries, st.ChangedBytes
}

// result prints rec as one JSON object on stdout with --json.
func (r *backupRun) result(rec state.Run) {
	if r.json == nil {
		return
	}
	if err := writeJSON(r.json, backupResult(rec)); err != nil {
		r.log.Warn("cannot write the --json result", "err", err)
	}
}

// runSummary is the attributes of a source's closing log line: kind, why,
// files, changed, bytes read, stored, seconds, warnings; numbers as numbers.
func runSummary(rec state.Run) []any {
	out := []any{"set", rec.SetID, "kind", rec.Kind, "why", rec.Why, "files", rec.Files,
		"changed", rec.Changed, "bytes", rec.Bytes, "read", rec.Read, "stored", rec.Stored,
		"seconds", rec.Finished.Sub(rec.Started).Round(100 * time.Millisecond).Seconds(),
		"warnings", rec.Warnings}
	if rec.Scan != "" {
		out = append(out, "scan", rec.Scan) // a differential's: walk or zfs diff
	}
	return out
}

// changeList asks the snapshot provider what changed since the kept
// snapshot of full base; nil (walk the tree) when it cannot say, with a
// one-line notice where a provider could have (ZFS).
func changeList(ctx context.Context, spec snapshot.Spec, snap snapshot.Snapshot, base string, log *slog.Logger) *archive.ChangeList {
	list := archive.NewChangeList("")
	scan, err := snapshot.Changes(ctx, spec, snap, base, list.Add)
	if err != nil {
		if snap.Kind() == snapshot.KindZFS {
			log.Info("walking the tree: " + oneLine(err.Error()))
		}
		return nil
	}
	list.Scan = scan
	return list
}

// dryRun says, for each source, what a backup would write.
func (r *backupRun) dryRun(ctx context.Context, srcs []*Source) error {
	for _, s := range srcs {
		repo := r.repository(s)
		if err := checkRollback(ctx, r.state, repo); err != nil {
			return err
		}
		if r.force != policy.ForceDiff {
			if ck, err := archive.ReadCheckpoint(r.state.ResumeDir(r.cfg.Host, s.Name)); err == nil {
				fmt.Fprintf(r.out, "source %s: would resume the interrupted full %s (%d volumes uploaded, after %s), if its checkpoint still matches\n",
					s.Name, ck.ID, len(ck.Volumes), livePath(s, string(ck.After)))
				continue
			}
		}
		dec, err := decide(ctx, r.cfg, repo, r.force, r.verifyBase, time.Now())
		if err != nil {
			return err
		}
		opt := archive.BackupOptions{Root: s.Path, Exclude: r.excludes(s), CrossMounts: s.CrossMounts}
		kind := "full"
		if dec.Base != "" {
			kind = "differential"
			base, err := repo.OpenBase(ctx, dec.Base, r.state)
			if err != nil {
				return err
			}
			opt.Base = base
			defer base.Close()
		}
		fmt.Fprintf(r.out, "source %s: would write a %s (%s)\n", s.Name, kind, dec.Reason)
		var changed func(string, archive.PlanChange)
		if r.listChanges {
			changed = func(p string, c archive.PlanChange) { fmt.Fprintf(r.out, "  %-8s %s\n", c, livePath(s, p)) }
		}
		st, err := archive.Plan(ctx, opt, changed)
		if err != nil {
			return fmt.Errorf("source %s: %w", s.Name, err)
		}
		fmt.Fprintf(r.out, "  tree: %d paths, %d files, %s\n", st.Entries, st.Files, humanBytes(st.Bytes))
		if dec.Base != "" {
			fmt.Fprintf(r.out, "  since %s: %d new, %d changed, %d deleted; at most %s to read\n", dec.Base, st.New, st.Changed, st.Deleted, humanBytes(st.ChangedBytes))
		}
	}
	return nil
}

// liveTreeLabel is the manifest's snapshot field of a set read from the
// live tree (snapshot: none).
const liveTreeLabel = "none: live tree"

func snapshotLabel(s snapshot.Snapshot) string {
	if s.Kind() == snapshot.KindNone {
		return liveTreeLabel
	}
	return s.Kind() + ": " + s.Name()
}

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

// excludes returns the source's excludes, plus backtory's own directories
// when they lie inside the source: state_dir (its spool changes while the
// walk reads it) and a file:// remote or copy_to (a backup of the backups).
func (r *backupRun) excludes(s *Source) []string {
	x := append([]string(nil), s.Exclude...)
	own := []string{r.cfg.StateDir}
	for _, u := range []string{r.cfg.Remote.URL, r.cfg.CopyTo.URL} {
		if p, ok := strings.CutPrefix(u, "file://"); ok && filepath.IsAbs(p) {
			own = append(own, p)
		}
	}
	for _, d := range own {
		rel, err := filepath.Rel(s.Path, filepath.Clean(d))
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		x = append(x, "/"+globEscape.Replace(rel))
	}
	return x
}

// globEscape escapes what path.Match would read as a pattern.
var globEscape = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
