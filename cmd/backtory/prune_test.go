package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/state"
)

// TestPruneCLI writes fulls and differentials of a real tree over several
// simulated weeks, prunes with the CLI, and restores every kept set.
func TestPruneCLI(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "policy:\n  keep_fulls: 2\n  keep_diffs: 10d\n")
	b, err := remote.NewLocal(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	os.MkdirAll(spool, 0o700)
	ctx := context.Background()
	start := time.Now().Add(-30 * 24 * time.Hour)
	var ids []string
	snapshots := map[string]string{}
	full := ""
	r := &archive.Repository{Backend: b, SpoolDir: spool, Host: "testhost", Source: "root"}
	for d := 0; d < 30; d += 3 {
		os.WriteFile(filepath.Join(src, "etc/hosts"), []byte(time.Duration(d).String()), 0o644)
		opt := archive.BackupOptions{SourcePath: src, Root: src, Snapshot: "none",
			VolumeSize: 1 << 20, Compression: archive.Compression{Kind: "zstd", Level: 1},
			Started: start.Add(time.Duration(d) * 24 * time.Hour)}
		if d%9 != 0 {
			base, err := r.OpenBase(ctx, full, state.New(dir))
			if err != nil {
				t.Fatal(err)
			}
			opt.Base = base
		}
		m, err := r.Backup(ctx, opt)
		if opt.Base != nil {
			opt.Base.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == archive.KindFull {
			full = m.ID
		}
		ids = append(ids, m.ID)
		snapshots[m.ID] = copyDir(t, src)
	}
	// An interrupted run's leftovers, old enough to go.
	stale := archive.SetDir("testhost", "root", archive.NewSetID(archive.KindFull, start.Add(-time.Hour)))
	os.MkdirAll(filepath.Join(dir, "remote", stale), 0o700)
	os.WriteFile(filepath.Join(dir, "remote", stale, "vol-000001.tar.zst"), []byte("partial"), 0o600)
	old := start.Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(dir, "remote", stale, "vol-000001.tar.zst"), old, old)

	// --dry-run names every set once, kept or deleted, with its rule.
	_, plan, _ := backtoryOut(t, "prune", "--config", cfg, "--dry-run")
	for _, id := range ids {
		n := strings.Count(plan, "would keep root/"+id+": ") + strings.Count(plan, "would delete root/"+id+": ")
		if n != 1 {
			t.Errorf("prune --dry-run names %s %d times:\n%s", id, n, plan)
		}
	}
	for _, want := range []string{": the newest set\n", ": one of the newest 2 fulls (keep_fulls)\n", ": keep_diffs: every differential younger than 10d\n"} {
		if !strings.Contains(plan, want) {
			t.Errorf("prune --dry-run gives no set the reason %q:\n%s", want, plan)
		}
	}
	after, _ := r.SetIDs(ctx)
	if !reflect.DeepEqual(after, ids) {
		t.Fatalf("--dry-run deleted sets: %v -> %v", ids, after)
	}
	mustRun(t, "prune", "--config", cfg)
	kept, _ := r.SetIDs(ctx)
	if len(kept) == 0 || len(kept) >= len(ids) || kept[len(kept)-1] != ids[len(ids)-1] {
		t.Fatalf("prune kept %v of %v", kept, ids)
	}
	if _, err := os.Stat(filepath.Join(dir, "remote", stale)); err == nil {
		if left, _ := r.Leftovers(ctx); len(left) > 0 {
			t.Errorf("prune left the interrupted run's objects: %+v", left)
		}
	}
	for _, id := range kept {
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, "restore", "--config", cfg, "--set", id, "--to", out)
		assertSameTree(t, snapshots[id], out)
	}
	// A second prune deletes nothing.
	mustRun(t, "prune", "--config", cfg)
	if again, _ := r.SetIDs(ctx); !reflect.DeepEqual(again, kept) {
		t.Errorf("a second prune changed %v to %v", kept, again)
	}
}

// TestBackupDryRun: --dry-run says full or diff and what changed, and
// writes nothing to the remote.
func TestBackupDryRun(t *testing.T) {
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, src, "")
	code, out, stderr := backtoryOut(t, "backup", "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(out, "would write a full (there is no full yet)") {
		t.Fatalf("dry run before any backup: exit %d, %q %q", code, out, stderr)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "remote/*/*/*")); len(m) != 0 {
		t.Fatalf("a dry run wrote %v", m)
	}
	mustRun(t, "backup", "--config", cfg)
	os.WriteFile(filepath.Join(src, "etc/hosts"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(src, "brand-new"), []byte("new\n"), 0o644)
	os.Remove(filepath.Join(src, "tiny"))
	before, _ := filepath.Glob(filepath.Join(dir, "remote/*/*/*"))
	code, out, _ = backtoryOut(t, "backup", "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(out, "would write a differential") || !strings.Contains(out, "1 new") || !strings.Contains(out, "1 deleted") {
		t.Fatalf("dry run after changes: exit %d, %q", code, out)
	}
	// -v lists each changed path, as it is live, with its kind of change.
	os.Chmod(filepath.Join(src, "etc/text.conf"), 0o600)
	code, out, _ = backtoryOut(t, "backup", "--config", cfg, "--dry-run", "-v")
	for _, want := range []string{"  content  " + src + "/etc/hosts\n", "  new      " + src + "/brand-new\n",
		"  deleted  " + src + "/tiny\n", "  metadata " + src + "/etc/text.conf\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("dry run -v: exit %d, no %q in\n%s", code, want, out)
		}
	}
	if strings.Contains(out, src+"/empty\n") {
		t.Errorf("dry run -v lists an unchanged path:\n%s", out)
	}
	if after, _ := filepath.Glob(filepath.Join(dir, "remote/*/*/*")); len(after) != len(before) {
		t.Fatalf("a dry run wrote to the remote: %v -> %v", before, after)
	}
	// The full's signatures are cached where state_dir's owner says.
	b, err := remote.NewLocal(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	r := &archive.Repository{Backend: b, Host: "testhost", Source: "root"}
	ids, _ := r.SetIDs(context.Background())
	m, _, err := r.Manifest(context.Background(), ids[0])
	if err != nil || m.Sigs == nil {
		t.Fatalf("the full's manifest: %v", err)
	}
	if _, err := os.Stat(state.New(filepath.Join(dir, "state")).Path("testhost", "root", m.ID, m.Sigs.Name)); err != nil {
		t.Errorf("the full's signatures are not in the cache: %v", err)
	}
}
