package main

// Resumable fulls against the built binary, killed with SIGKILL at a fault
// point (BACKTORY_TEST_KILL_AFTER_VOLUMES): the next run uploads only the
// volumes the checkpoint does not hold, and the set restores as the tree;
// list, verify and prune with the unfinished set present.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/ftptest"
)

// addVolumes adds n files of 1100 KiB of incompressible bytes (a fixed
// seed) to src: with volume_size 1MiB, three fill about two volumes.
func addVolumes(t *testing.T, src string, n int) {
	t.Helper()
	rng := rand.New(rand.NewSource(19))
	os.MkdirAll(filepath.Join(src, "data"), 0o755)
	for i := range n {
		b := make([]byte, 1100<<10)
		rng.Read(b)
		if err := os.WriteFile(filepath.Join(src, "data", string(rune('a'+i))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// killedAt runs backtory with the fault point set to kill it once a
// checkpoint holds n volumes, and checks that it was killed.
func (e *sigTestEnv) killedAt(t *testing.T, n int, args ...string) {
	t.Helper()
	cmd := exec.Command(e.bin, append(args, "--config", e.cfg)...)
	cmd.Env = append(os.Environ(), "BACKTORY_TEST_KILL_AFTER_VOLUMES="+string(rune('0'+n)))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("backtory %v was not killed at its fault point: %v\n%s", args, err, out)
	}
}

// volumeTimes returns the modification time of each object of the set
// directories of the source (by set/name).
func (e *sigTestEnv) objectTimes(t *testing.T) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	objs, _ := filepath.Glob(filepath.Join(e.dir, "remote/testhost/root/*/*"))
	for _, o := range objs {
		if fi, err := os.Stat(o); err == nil {
			rel, _ := filepath.Rel(filepath.Join(e.dir, "remote/testhost/root"), o)
			m[rel] = fi.ModTime()
		}
	}
	return m
}

// TestResumeAfterKill: a full killed after 3 of its volumes were uploaded
// is resumed by the next run, which uploads only the volumes after the
// checkpoint; meanwhile list and verify see only complete sets and prune
// keeps the unfinished one. A full whose checkpoint is lost is replaced,
// and prune then removes it.
func TestResumeAfterKill(t *testing.T) {
	bin := sigBuild(t)
	e := sigEnv(t, bin, "")
	e.run(t, exitOK, "backup", "--full")
	first := strings.Fields(e.run(t, exitOK, "list"))
	addVolumes(t, e.src, 7)

	e.killedAt(t, 3, "backup", "--full")
	before := e.objectTimes(t)
	var unfinished string
	for o := range before {
		if strings.HasSuffix(o, "/vol-000003.tar.zst") {
			unfinished = filepath.Dir(o)
		}
	}
	if unfinished == "" {
		t.Fatalf("no third volume on the remote after the kill: %v", before)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state/resume/testhost/root/checkpoint.json")); err != nil {
		t.Fatalf("no checkpoint after the kill: %v", err)
	}
	if got := strings.Fields(e.run(t, exitOK, "list")); strings.Join(got, " ") != strings.Join(first, " ") {
		t.Errorf("list with an unfinished full: %v, want %v", got, first)
	}
	e.run(t, exitOK, "verify")
	if out := e.run(t, exitOK, "backup", "--dry-run"); !strings.Contains(out, "would resume the interrupted full "+filepath.Base(unfinished)) {
		t.Errorf("backup --dry-run with an unfinished full: %q", out)
	}
	if _, stdout, stderr := backtoryOut(t, "prune", "--config", e.cfg, "-v"); !strings.Contains(stderr, "leaving an unfinished full alone") {
		t.Errorf("prune with an unfinished full: %s%s", stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "remote/testhost/root", unfinished, "vol-000001.tar.zst")); err != nil {
		t.Fatalf("prune removed the unfinished full: %v", err)
	}

	// No --full: the policy would write a differential, but the
	// interrupted full is finished first.
	code, _, stderr := backtoryOut(t, "backup", "--config", e.cfg, "-v")
	if code != exitOK || !strings.Contains(stderr, "resuming the interrupted full") {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	after := e.objectTimes(t)
	for _, n := range []string{"vol-000001.tar.zst", "vol-000002.tar.zst", "vol-000003.tar.zst"} {
		o := filepath.Join(unfinished, n)
		if !after[o].Equal(before[o]) {
			t.Errorf("%s was uploaded again (%v, then %v)", o, before[o], after[o])
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "remote/testhost/root", unfinished, "manifest.json")); err != nil {
		t.Fatalf("the resumed full has no manifest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state/resume/testhost/root")); !os.IsNotExist(err) {
		t.Errorf("the checkpoint is still in state_dir: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	e.run(t, exitOK, "restore", "--to", out)
	assertSameTree(t, e.src, out)
	e.run(t, exitOK, "verify", "--deep")

	// A lost checkpoint: the unfinished full stays on the remote until a
	// newer full is complete, then prune removes it.
	e.killedAt(t, 2, "backup", "--full")
	os.RemoveAll(filepath.Join(e.dir, "state/resume"))
	time.Sleep(time.Second) // set ids count seconds
	e.run(t, exitOK, "backup", "--full")
	_, stdout, _ := backtoryOut(t, "prune", "--config", e.cfg)
	if !strings.Contains(stdout, "objects left by an interrupted run") {
		t.Errorf("prune after a newer full: %q", stdout)
	}
	sets, _ := filepath.Glob(filepath.Join(e.dir, "remote/testhost/root/full-*"))
	for _, s := range sets {
		if _, err := os.Stat(filepath.Join(s, "manifest.json")); err != nil {
			t.Errorf("prune left the unfinished full %s", s)
		}
	}

	// A changed config between the runs starts afresh, with the reason.
	e.killedAt(t, 2, "backup", "--full")
	os.WriteFile(e.cfg, []byte(strings.Replace(string(mustRead(t, e.cfg)), "volume_size: 1MiB\n", "volume_size: 1MiB\ncompression: none\n", 1)), 0o600)
	code, _, stderr = backtoryOut(t, "backup", "--config", e.cfg, "--full")
	if code != exitOK || !strings.Contains(stderr, "not resuming the interrupted full: the configuration or the keys changed") {
		t.Errorf("backup after a config change: exit %d: %s", code, stderr)
	}
	sets, _ = filepath.Glob(filepath.Join(e.dir, "remote/testhost/root/full-*"))
	for _, s := range sets {
		if _, err := os.Stat(filepath.Join(s, "manifest.json")); err != nil {
			t.Errorf("the interrupted full %s is still there after a new one started afresh", s)
		}
	}
}

// TestResumeOverFTP: the FTP server is killed while a full uploads its
// volumes; the run fails, and the next one, with the server back, resumes
// the full and uploads only the volumes after the checkpoint.
func TestResumeOverFTP(t *testing.T) {
	srv := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	addVolumes(t, src, 24)
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + src + "\n" +
		"remote:\n  url: " + srv.URL("backups") + "\n  user: " + ftptest.User + "\n  password_file: " + srv.PasswordFile +
		"\n  tls_ca: " + srv.CAFile + "\n  retries: 1\n" +
		"volume_size: 1MiB\n"
	os.WriteFile(cfg, []byte(body), 0o600)
	setDir := filepath.Join(srv.Data, "backups/testhost/root")

	done := make(chan string)
	go func() {
		code, _, stderr := backtoryOut(t, "backup", "--config", cfg)
		done <- fmt.Sprintf("exit %d: %s", code, stderr)
	}()
	var third []string
	for len(third) == 0 {
		select {
		case got := <-done:
			t.Fatalf("the backup ended before the server was killed: %s", got)
		case <-time.After(5 * time.Millisecond):
		}
		third, _ = filepath.Glob(filepath.Join(setDir, "full-*", "vol-000003.tar.zst"))
	}
	srv.Kill()
	if got := <-done; !strings.HasPrefix(got, fmt.Sprintf("exit %d:", exitFailed)) {
		t.Fatalf("a backup whose server was killed: %s", got)
	}
	srv.Launch()
	ck, err := os.ReadFile(filepath.Join(dir, "state/resume/testhost/root/checkpoint.json"))
	if err != nil {
		t.Fatalf("no checkpoint after the server was killed: %v", err)
	}
	var saved struct{ Volumes []struct{ Name string } }
	json.Unmarshal(ck, &saved)
	before := map[string]time.Time{}
	for _, v := range saved.Volumes {
		fi, err := os.Stat(filepath.Join(filepath.Dir(third[0]), v.Name))
		if err != nil {
			t.Fatalf("checkpointed %s is not on the server: %v", v.Name, err)
		}
		before[v.Name] = fi.ModTime()
	}
	if len(before) == 0 {
		t.Fatal("the checkpoint holds no volume")
	}

	code, _, stderr := backtoryOut(t, "backup", "--config", cfg, "-v")
	if code != exitOK || !strings.Contains(stderr, "resuming the interrupted full") {
		t.Fatalf("resume over FTP: exit %d: %s", code, stderr)
	}
	for n, mt := range before {
		if fi, err := os.Stat(filepath.Join(filepath.Dir(third[0]), n)); err != nil || !fi.ModTime().Equal(mt) {
			t.Errorf("%s was uploaded again", n)
		}
	}
	out := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	sets, parts := serverSets(setDir[:len(setDir)-len("/testhost/root")])
	if len(sets) != 1 || len(parts) != 0 {
		t.Errorf("on the server: sets %q, leftover temporary objects %q", sets, parts)
	}
}

// TestResumeKillPoints kills a full of 8 or 9 volumes (12 files of a fixed
// seed; where a volume closes depends on the compressor's pace) with
// SIGKILL once 1, 4 and 7 are checkpointed, about 10%, 50% and 90% of its
// bytes: the next run uploads exactly the volumes after the checkpoint,
// and the set restores as the tree.
func TestResumeKillPoints(t *testing.T) {
	bin := sigBuild(t)
	for _, n := range []int{1, 4, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := sigEnv(t, bin, "")
			addVolumes(t, e.src, 12)
			e.killedAt(t, n, "backup")
			b, err := os.ReadFile(filepath.Join(e.dir, "state/resume/testhost/root/checkpoint.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ck struct {
				ID      string
				Volumes []struct{ Name string }
			}
			json.Unmarshal(b, &ck)
			if len(ck.Volumes) != n {
				t.Fatalf("killed with %d volumes checkpointed, want %d", len(ck.Volumes), n)
			}
			before := e.objectTimes(t)
			e.run(t, exitOK, "backup")
			after := e.objectTimes(t)
			uploaded, vols := 0, 0
			for o, mt := range after {
				if !strings.HasPrefix(filepath.Base(o), "vol-") {
					continue
				}
				vols++
				if bt, ok := before[o]; !ok || !bt.Equal(mt) {
					uploaded++
				}
			}
			if uploaded != vols-n {
				t.Errorf("the resumed run uploaded %d of %d volumes, want %d", uploaded, vols, vols-n)
			}
			out := filepath.Join(t.TempDir(), "out")
			e.run(t, exitOK, "restore", "--to", out)
			assertSameTree(t, e.src, out)
		})
	}
}
