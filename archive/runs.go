package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/backtory/backtory/remote"
)

// Run records: what a backup run of a source reported (outcome, counts,
// the log lines of a failed or warning run), stored beside the sets so
// that a reader of the remote (backtory serve) sees every host's history.
// The record is opaque JSON to this package; it is sealed like a manifest
// (docs/format.md §1, "Run records").
//
//	<host>/<source>/run-<set id>.json[.pgp]         a run that made set <set id>
//	<host>/<source>/run-failed-<time>.json[.pgp]    a run that made no set

// maxRunRecord bounds a run record read into memory.
const maxRunRecord = 4 << 20

// runPrefix starts the name of every run record.
const runPrefix = "run-"

// failedTag is the set id part of the record of a run that made no set.
const failedTag = "failed-"

// RunRecordName returns the object name of the record of a run: by the
// set it made, or, when setID is "", by the time the run started.
func RunRecordName(setID string, started time.Time, sealed bool) string {
	id := setID
	if id == "" {
		id = failedTag + started.UTC().Format(setIDTime)
	}
	return runPrefix + id + ".json" + objectExt(false, sealed)
}

// RunRecord is one run record on the remote.
type RunRecord struct {
	Name  string    // object name in the source's directory
	SetID string    // the set the run made, "" for a failed run
	Time  time.Time // the set's time, or the failed run's start
}

// ParseRunRecordName reads an object name written by RunRecordName.
func ParseRunRecordName(name string) (rec RunRecord, ok bool) {
	rest, found := strings.CutPrefix(name, runPrefix)
	if !found {
		return RunRecord{}, false
	}
	rest, found = strings.CutSuffix(strings.TrimSuffix(rest, ".pgp"), ".json")
	if !found {
		return RunRecord{}, false
	}
	if ts, failed := strings.CutPrefix(rest, failedTag); failed {
		t, err := time.Parse(setIDTime, ts)
		if err != nil {
			return RunRecord{}, false
		}
		return RunRecord{Name: name, Time: t}, true
	}
	_, t, ok := ParseSetID(rest)
	if !ok {
		return RunRecord{}, false
	}
	return RunRecord{Name: name, SetID: rest, Time: t}, true
}

// PutRunRecord stores a run's record (JSON) beside the sets, sealed when
// the repository seals: by the set it made, or by its start when setID is "".
func (r *Repository) PutRunRecord(ctx context.Context, setID string, started time.Time, record []byte) error {
	name := objectPath(SourceDir(r.Host, r.Source), RunRecordName(setID, started, r.Sealer != nil))
	stored := record
	if r.Sealer != nil {
		var buf bytes.Buffer
		sw, err := r.Sealer.Seal(&buf)
		if err == nil {
			if _, err = sw.Write(record); err != nil {
				sw.Close()
			} else {
				err = sw.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("seal %s: %w", name, err)
		}
		stored = buf.Bytes()
	}
	if err := r.Backend.Put(ctx, name, bytes.NewReader(stored)); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// RunRecords lists the run records of the source, oldest first. Records
// of the other sealing (sealed when the repository is not, or the
// reverse) are left out.
func (r *Repository) RunRecords(ctx context.Context) ([]RunRecord, error) {
	dir := SourceDir(r.Host, r.Source)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []RunRecord
	for _, i := range infos {
		rec, ok := ParseRunRecordName(i.Name)
		if i.IsDir || !ok || strings.HasSuffix(i.Name, ".pgp") != (r.Sealer != nil) {
			continue
		}
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// ReadRunRecord downloads a run record and opens it (checking its seal);
// it returns the record's JSON.
func (r *Repository) ReadRunRecord(ctx context.Context, rec RunRecord) ([]byte, error) {
	name := objectPath(SourceDir(r.Host, r.Source), rec.Name)
	rc, err := r.Backend.Get(ctx, name, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	var src io.Reader = io.LimitReader(rc, maxRunRecord+1)
	if r.Sealer != nil {
		if src, err = r.Sealer.Open(src); err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
	}
	raw, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(raw) > maxRunRecord {
		return nil, fmt.Errorf("%s: run record larger than %d bytes", name, maxRunRecord)
	}
	return raw, nil
}

// deleteRunRecords removes the record of set id and those of the failed
// runs that started before it (called by DeleteSet: the history of runs
// goes with the sets).
func (r *Repository) deleteRunRecords(ctx context.Context, id string) error {
	_, t, ok := ParseSetID(id)
	if !ok {
		return nil
	}
	dir := SourceDir(r.Host, r.Source)
	infos, err := r.Backend.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, i := range infos {
		rec, ok := ParseRunRecordName(i.Name)
		if i.IsDir || !ok || !(rec.SetID == id || rec.SetID == "" && rec.Time.Before(t)) {
			continue
		}
		name := objectPath(dir, i.Name)
		if err := r.Backend.Delete(ctx, name); err != nil && !remote.IsNotExist(err) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	return nil
}
