package archive_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
)

func TestRunRecordNames(t *testing.T) {
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		set    string
		sealed bool
		name   string
	}{
		{"full-20261122T030000Z", true, "run-full-20261122T030000Z.json.pgp"},
		{"diff-20261123T030000Z", false, "run-diff-20261123T030000Z.json"},
		{"", true, "run-failed-20261124T030000Z.json.pgp"},
		{"", false, "run-failed-20261124T030000Z.json"},
	} {
		name := archive.RunRecordName(tc.set, at, tc.sealed)
		if name != tc.name {
			t.Errorf("RunRecordName(%q, %v) = %s, want %s", tc.set, tc.sealed, name, tc.name)
		}
		rec, ok := archive.ParseRunRecordName(name)
		if !ok || rec.SetID != tc.set || rec.Name != name {
			t.Errorf("ParseRunRecordName(%s) = %+v, %v", name, rec, ok)
		}
		if _, want, _ := archive.ParseSetID(tc.set); tc.set != "" && !rec.Time.Equal(want) || tc.set == "" && !rec.Time.Equal(at) {
			t.Errorf("ParseRunRecordName(%s): time %v", name, rec.Time)
		}
	}
	for _, bad := range []string{"recover.sh", "run-.json", "run-full-2026.json", "run-failed-x.json", "run-full-20261122T030000Z.txt",
		"full-20261122T030000Z", "run-other-20261122T030000Z.json", "run-full-20261122T030000Z.json.part"} {
		if rec, ok := archive.ParseRunRecordName(bad); ok {
			t.Errorf("ParseRunRecordName(%s) = %+v, want not a run record", bad, rec)
		}
	}
}

func FuzzParseRunRecordName(f *testing.F) {
	f.Add("run-full-20261122T030000Z.json.pgp")
	f.Add("run-failed-20261124T030000Z.json")
	f.Fuzz(func(t *testing.T, name string) {
		rec, ok := archive.ParseRunRecordName(name)
		if !ok {
			return
		}
		again := archive.RunRecordName(rec.SetID, rec.Time, strings.HasSuffix(name, ".pgp"))
		if back, ok2 := archive.ParseRunRecordName(again); !ok2 || back.SetID != rec.SetID || !back.Time.Equal(rec.Time) {
			t.Fatalf("%q -> %+v -> %q -> %+v", name, rec, again, back)
		}
	})
}

// TestRunRecords: records are sealed, listed oldest first, refused when
// tampered with, and deleted with their set (with the failed runs before
// it); a set's listing and leftovers ignore them.
func TestRunRecords(t *testing.T) {
	r := newSealedRepo(t)
	ctx := context.Background()
	repo := r.repo()
	_, fullT, _ := archive.ParseSetID(r.full)
	_, diffT, _ := archive.ParseSetID(r.diff)
	put := func(set string, started time.Time, body string) {
		t.Helper()
		if err := repo.PutRunRecord(ctx, set, started, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	put("", fullT.Add(-time.Hour), `{"outcome":"failure","n":1}`)
	put(r.full, fullT, `{"outcome":"success","n":2}`)
	put("", fullT.Add(time.Hour), `{"outcome":"failure","n":3}`)
	put(r.diff, diffT, `{"outcome":"warning","n":4}`)

	recs, err := repo.RunRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(recs), recs)
	}
	for i, rec := range recs {
		raw, err := repo.ReadRunRecord(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"n":` + string(rune('1'+i)); !bytes.Contains(raw, []byte(want)) {
			t.Errorf("record %d (%s): %s, want %s", i, rec.Name, raw, want)
		}
	}
	stored, err := os.ReadFile(filepath.Join(r.remote, "h/s", recs[1].Name))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("outcome")) {
		t.Error("a sealed run record holds its plaintext")
	}
	// Another key's record is refused.
	other := &archive.Repository{Backend: r.b, Sealer: r.box(t, "other", "host"), SpoolDir: r.spool, Host: "h", Source: "s"}
	if err := other.PutRunRecord(ctx, "", diffT.Add(time.Hour), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	recs, _ = repo.RunRecords(ctx)
	if _, err := repo.ReadRunRecord(ctx, recs[len(recs)-1]); err == nil {
		t.Error("a record signed by another key was read")
	}

	ids, err := repo.SetIDs(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("sets beside run records: %v %v", ids, err)
	}
	if left, err := repo.Leftovers(ctx); err != nil || len(left) != 0 {
		t.Fatalf("leftovers beside run records: %v %v", left, err)
	}
	if err := repo.DeleteSet(ctx, r.full); err != nil {
		t.Fatal(err)
	}
	recs, _ = repo.RunRecords(ctx)
	var names []string
	for _, rec := range recs {
		names = append(names, rec.Name)
	}
	want := []string{
		archive.RunRecordName("", fullT.Add(time.Hour), true),
		archive.RunRecordName(r.diff, diffT, true),
		archive.RunRecordName("", diffT.Add(time.Hour), true),
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("after deleting %s: records %v, want %v", r.full, names, want)
	}
}
