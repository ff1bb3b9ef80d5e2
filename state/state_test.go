package state

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRuns(t *testing.T) {
	root := t.TempDir()
	d := New(root)
	t0 := time.Date(2026, 11, 23, 3, 30, 0, 0, time.UTC)
	ok := Run{Host: "h", Source: "root", Outcome: "success", Started: t0, Finished: t0.Add(time.Minute), SetID: "full-a", Files: 3}
	failed := Run{Host: "h", Source: "root", Outcome: "failure", Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour), Error: "boom"}
	warned := Run{Host: "h", Source: "data", Outcome: "warning", Finished: t0, SetID: "diff-b", Warnings: 1}
	for _, rec := range []Run{ok, failed, warned} {
		if err := d.SaveRun(rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Runs("h", []string{"root", "never", "data"})
	if err != nil {
		t.Fatal(err)
	}
	okAlone, warnedAlone, failedAlone := ok, warned, failed
	wantRoot, wantData := failed, warned
	wantRoot.LastSuccess, wantData.LastSuccess = &okAlone, &warnedAlone
	wantRoot.LastFailure = &failedAlone // the last failure is kept beside the last success
	want := []Run{wantData, {Host: "h", Source: "never"}, wantRoot}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Runs:\n got %+v\nwant %+v", got, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "runs", "h", "root.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("run record: %v, mode %v", err, fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "runs", "h")); len(ents) != 2 {
		t.Errorf("runs/h holds %v, want two records and no temporary files", ents)
	}

	// A damaged record is a source that never ran; an unreadable
	// directory is an error, with the records still there.
	os.WriteFile(filepath.Join(root, "runs", "h", "data.json"), []byte("{"), 0o600)
	if got, err := d.Runs("h", []string{"data"}); err != nil || got[0].Outcome != "" {
		t.Errorf("damaged record: %+v, %v", got, err)
	}
	other := New(t.TempDir())
	os.WriteFile(filepath.Join(other.Root(), "runs"), nil, 0o600)
	if got, err := other.Runs("h", []string{"root"}); err == nil || len(got) != 1 || got[0].Source != "root" {
		t.Errorf("unreadable records: %+v, %v", got, err)
	}
	if got, err := New(t.TempDir()).Runs("h", []string{"root"}); err != nil || len(got) != 1 {
		t.Errorf("no records yet: %+v, %v", got, err)
	}
}

func TestSeen(t *testing.T) {
	d := New(t.TempDir())
	if got, err := d.Seen("h", "root"); got != "" || err != nil {
		t.Errorf("Seen before any set = %q, %v", got, err)
	}
	for _, id := range []string{"full-20260101T000000Z", "diff-20260102T000000Z"} {
		if err := d.Remember("h", "root", id); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Seen("h", "root"); got != id || err != nil {
			t.Errorf("Seen = %q, %v, want %q", got, err, id)
		}
	}
	if b, _ := os.ReadFile(d.SeenFile("h", "root")); string(b) != "diff-20260102T000000Z\n" {
		t.Errorf("seen file holds %q", b)
	}
	if got, err := d.Seen("h", "data"); d.SeenFile("h", "root") != filepath.Join(d.Root(), "seen", "h", "root") || got != "" || err != nil {
		t.Errorf("SeenFile %s", d.SeenFile("h", "root"))
	}
	// An empty or unreadable record fails closed, saying how to reset it.
	os.WriteFile(d.SeenFile("h", "root"), []byte("\n"), 0o600)
	if _, err := d.Seen("h", "root"); err == nil || !strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), "delete "+d.SeenFile("h", "root")) {
		t.Errorf("empty record: %v", err)
	}
	os.Remove(d.SeenFile("h", "root"))
	os.Mkdir(d.SeenFile("h", "root"), 0o700)
	if _, err := d.Seen("h", "root"); err == nil || !strings.Contains(err.Error(), "delete "+d.SeenFile("h", "root")) {
		t.Errorf("unreadable record: %v", err)
	}
}

func TestSpoolAndCache(t *testing.T) {
	d := New(filepath.Join(t.TempDir(), "state"))
	spool, release, err := d.Spool()
	if fi, serr := os.Stat(spool); err != nil || serr != nil || !fi.IsDir() || filepath.Dir(spool) != filepath.Join(d.Root(), "spool") {
		t.Fatalf("Spool = %s, %v, %v", spool, err, serr)
	}
	release()
	if _, err := os.Stat(spool); err == nil {
		t.Error("the spool directory outlived its release")
	}
	if p := d.Path("h", "root", "full-x", "sigs.zst"); p != filepath.Join(d.Root(), "cache", "h", "root", "full-x.sigs.zst") {
		t.Errorf("Path = %s", p)
	}
	keep := d.Path("h", "root", "full-y", "sigs")
	for _, p := range []string{d.Path("h", "root", "full-x", "sigs.zst"), d.Path("h", "root", "full-x", "sigs.zst.gpg"), keep} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, nil, 0o600)
	}
	d.RemoveCache("h", "root", "full-x")
	ents, _ := os.ReadDir(filepath.Dir(keep))
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "full-y.") {
		t.Errorf("after RemoveCache: %v", ents)
	}
	if _, _, err := New(filepath.Join(keep, "state")).Spool(); err == nil {
		t.Error("Spool under a file: no error")
	}
}
