package archive_test

import (
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/internal/treecmp"
	"github.com/backtory/backtory/remote"
)

// flakyBackend counts the objects put and fails the put of one object
// name, as a remote that goes down mid-run.
type flakyBackend struct {
	remote.Backend
	mu       sync.Mutex
	failOn   string
	puts     []string
	listDown bool // List fails too
}

func (f *flakyBackend) List(ctx context.Context, dir string) ([]remote.Info, error) {
	if f.listDown {
		return nil, errRemoteDown
	}
	return f.Backend.List(ctx, dir)
}

var errRemoteDown = errors.New("remote down (test)")

func (f *flakyBackend) Put(ctx context.Context, name string, r io.Reader) error {
	f.mu.Lock()
	fail := f.failOn != "" && strings.HasSuffix(name, "/"+f.failOn)
	f.mu.Unlock()
	if fail {
		return errRemoteDown
	}
	if err := f.Backend.Put(ctx, name, r); err != nil {
		return err
	}
	f.mu.Lock()
	f.puts = append(f.puts, name[strings.LastIndex(name, "/")+1:])
	f.mu.Unlock()
	return nil
}

// addIncompressible adds n files of size bytes from a fixed seed, so that
// the tree fills several 1 MiB volumes, and a hardlink whose first name
// comes early in the walk and whose second name comes last.
func addIncompressible(t *testing.T, src string, n, size int) {
	t.Helper()
	rng := rand.New(rand.NewSource(19))
	for _, d := range []string{"aaa", "mmm", "zzz"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		b := make([]byte, size)
		rng.Read(b)
		dir := []string{"aaa", "mmm", "zzz"}[i%3]
		if err := os.WriteFile(filepath.Join(src, dir, "f"+string(rune('a'+i))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "aaa", "0first"), []byte("hardlinked across the checkpoint\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "aaa", "0first"), filepath.Join(src, "zzz", "zlast")); err != nil {
		t.Fatal(err)
	}
}

type resumeRun struct {
	r    *testRepo
	dir  string // the checkpoint's local directory
	fb   *flakyBackend
	opts func(*archive.BackupOptions)
}

func newResumeRun(t *testing.T, sealer archive.Sealer) *resumeRun {
	r := newTestRepo(t, sealer)
	addIncompressible(t, r.src, 16, 400<<10)
	return &resumeRun{r: r, dir: filepath.Join(t.TempDir(), "resume"), fb: &flakyBackend{Backend: r.b}}
}

func (x *resumeRun) repo() *archive.Repository {
	rp := x.r.repo()
	rp.Backend = x.fb
	return rp
}

// backup runs a resumable full with fingerprint fp, resuming the
// checkpoint if there is a valid one; it returns why one was not resumed.
func (x *resumeRun) backup(fp string) (*archive.Manifest, *archive.Checkpoint, string, error) {
	ctx := context.Background()
	ck, reason, err := x.repo().CheckResume(ctx, x.dir, fp, "none")
	if err != nil {
		x.r.t.Fatal(err)
	}
	x.r.clock = x.r.clock.Add(3600e9)
	opt := archive.BackupOptions{
		SourcePath: x.r.src, Root: x.r.src, Snapshot: "none",
		VolumeSize: 1 << 20, Compression: archive.Compression{Kind: "zstd", Level: 3},
		Uploads: 2, Tool: "test", Started: x.r.clock,
		Resume: &archive.Resume{Dir: x.dir, Fingerprint: fp, From: ck},
	}
	if x.opts != nil {
		x.opts(&opt)
	}
	m, err := x.repo().Backup(ctx, opt)
	return m, ck, reason, err
}

// TestResumeFull interrupts a full at several points (a volume's upload,
// the file table's, the manifest's) and checks that the next run uploads
// only what the checkpoint does not hold, and that the set restores as
// the tree and is the same as an uninterrupted one.
func TestResumeFull(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("resume\n"), 0o600)
	box, err := seal.New(seal.Config{Mode: seal.ModePassphrase, PassphraseFile: pf})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		failOn string
		sealer archive.Sealer
		stock  bool // also restore with the stock tools
	}{
		{"vol-000002.tar.zst", nil, true},
		{"vol-000004.tar.zst.pgp", box, false},
		{"files.jsonl.zst", nil, false},
		{"manifest.json.pgp", box, false},
	} {
		t.Run(tc.failOn, func(t *testing.T) {
			x := newResumeRun(t, tc.sealer)
			x.fb.failOn = tc.failOn
			if _, _, _, err := x.backup("fp"); !errors.Is(err, errRemoteDown) {
				t.Fatalf("interrupted backup: %v, want the remote's failure", err)
			}
			ids, err := x.r.repo().SetIDs(context.Background())
			if err != nil || len(ids) != 0 {
				t.Fatalf("after the interruption the remote lists sets %v (%v), want none", ids, err)
			}
			x.fb.failOn, x.fb.puts = "", nil
			m, ck, reason, err := x.backup("fp")
			if err != nil {
				t.Fatal(err)
			}
			if ck == nil {
				t.Fatalf("no checkpoint was resumed (%s)", reason)
			}
			if m.ID != ck.ID {
				t.Errorf("resumed set %s, the checkpoint names %s", m.ID, ck.ID)
			}
			held := map[string]bool{}
			for _, v := range ck.Volumes {
				held[v.Name] = true
			}
			vols := 0
			for _, p := range x.fb.puts {
				if held[p] {
					t.Errorf("%s was uploaded again though the checkpoint holds it", p)
				}
				if strings.HasPrefix(p, "vol-") {
					vols++
				}
			}
			if want := len(m.Volumes) - len(ck.Volumes); vols != want {
				t.Errorf("the resumed run uploaded %d volumes, want %d (%d of %d were checkpointed)", vols, want, len(ck.Volumes), len(m.Volumes))
			}
			if len(ck.Volumes) == 0 {
				t.Errorf("the checkpoint holds no volume")
			}
			if _, err := os.Stat(x.dir); !os.IsNotExist(err) {
				t.Errorf("the checkpoint directory is still there after the set was finished: %v", err)
			}
			out, err := x.r.restore(m.ID)
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, x.r.src, out, m.ID)
			if err := x.r.repo().Verify(context.Background(), m, true); err != nil {
				t.Fatalf("verify --deep: %v", err)
			}
			if tc.stock {
				for _, tool := range []string{"zstd", "tar"} {
					testenv.NeedTool(t, tool)
				}
				out := filepath.Join(t.TempDir(), "stock")
				cmd := exec.Command("../scripts/restore-with-stock-tools.sh", "--unauthenticated", x.r.setDir(m.ID), out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("stock-tools procedure: %v\n%s", err, b)
				}
				// Stock tools write holes as zeros (docs/format.md §8).
				diffs, err := treecmp.Diff(x.r.src, out, treecmp.Options{IgnoreRootMeta: true, SkipPrefixes: []string{"data/sparse", "data/sparse-tail-data"}})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range diffs {
					t.Error("stock tools: " + d)
				}
			}

			// The same tree backed up without interruption: the same
			// table.
			y := &resumeRun{r: x.r, dir: filepath.Join(t.TempDir(), "resume"), fb: &flakyBackend{Backend: x.r.b}}
			m2, _, _, err := y.backup("fp")
			if err != nil {
				t.Fatal(err)
			}
			// (Where a volume closes depends on the compressor's pace,
			// so the volume counts may differ.)
			if m2.Stats.Entries != m.Stats.Entries || m2.Stats.Files != m.Stats.Files || m2.Stats.Bytes != m.Stats.Bytes {
				t.Errorf("resumed: %+v; uninterrupted: %+v", m.Stats, m2.Stats)
			}
			if a, b := tableOf(t, x.r, m), tableOf(t, x.r, m2); a != b {
				t.Errorf("the resumed set's file table differs from an uninterrupted one's")
			}
		})
	}
}

// tableOf returns the decoded file table of set m.
func tableOf(t *testing.T, r *testRepo, m *archive.Manifest) string {
	t.Helper()
	tr, c, err := r.repo().Files(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sb strings.Builder
	for {
		e, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(string(e.Path) + " " + e.Type + " " + e.Hash + " " + string(e.Target) + "\n")
	}
	return sb.String()
}

// TestResumeStartsAfresh: a checkpoint that does not match the run (another
// fingerprint, a volume gone from the remote) is dropped with a reason,
// with its unfinished set, and the run writes a new full.
func TestResumeStartsAfresh(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spoil  func(x *resumeRun, ck string)
		fp     string
		reason string
	}{
		{"fingerprint", func(*resumeRun, string) {}, "other", "configuration or the keys changed"},
		{"volume gone", func(x *resumeRun, id string) {
			os.Remove(filepath.Join(x.r.setDir(id), "vol-000001.tar.zst"))
		}, "fp", "does not hold"},
		{"volume replaced", func(x *resumeRun, id string) {
			os.WriteFile(filepath.Join(x.r.setDir(id), "vol-000001.tar.zst"), []byte("short"), 0o644)
		}, "fp", "does not hold"},
		{"local table cut", func(x *resumeRun, _ string) {
			os.Truncate(filepath.Join(x.dir, "files.jsonl"), 10)
		}, "fp", "shorter"},
		{"checkpoint damaged", func(x *resumeRun, _ string) {
			os.WriteFile(filepath.Join(x.dir, "checkpoint.json"), []byte("{"), 0o600)
		}, "fp", "cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newResumeRun(t, nil)
			x.fb.failOn = "vol-000004.tar.zst"
			if _, _, _, err := x.backup("fp"); err == nil {
				t.Fatal("the interrupted backup succeeded")
			}
			ck, _, err := x.repo().CheckResume(context.Background(), x.dir, "fp", "none")
			if err != nil || ck == nil {
				t.Fatalf("no checkpoint after the interruption: %v", err)
			}
			tc.spoil(x, ck.ID)
			x.fb.failOn = ""
			m, got, reason, err := x.backup(tc.fp)
			if err != nil {
				t.Fatal(err)
			}
			if got != nil || !strings.Contains(reason, tc.reason) {
				t.Errorf("resumed %v, reason %q; want a new full because %q", got != nil, reason, tc.reason)
			}
			if m.ID == ck.ID {
				t.Errorf("the new full has the interrupted one's id %s", m.ID)
			}
			_, err = os.Stat(x.r.setDir(ck.ID))
			if tc.name == "checkpoint damaged" {
				// Its set cannot be named: it stays an unfinished set,
				// which prune removes since a newer full exists.
				left, _ := x.r.repo().Leftovers(context.Background())
				if len(left) != 1 || !left[0].Unfinished {
					t.Errorf("leftovers %+v, want the unfinished full", left)
				}
			} else if !os.IsNotExist(err) {
				t.Errorf("the unfinished set %s is still on the remote: %v", ck.ID, err)
			}
			out, err := x.r.restore(m.ID)
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, x.r.src, out, m.ID)
		})
	}
}

// TestResumeChangedSource: with snapshot none, files changed between the
// runs are in the set as they were when read: before the checkpoint as the
// first run read them, after it as the second did.
func TestResumeChangedSource(t *testing.T) {
	x := newResumeRun(t, nil)
	x.fb.failOn = "vol-000004.tar.zst"
	if _, _, _, err := x.backup("fp"); err == nil {
		t.Fatal("the interrupted backup succeeded")
	}
	ck, _, err := x.repo().CheckResume(context.Background(), x.dir, "fp", "none")
	if err != nil || ck == nil {
		t.Fatalf("no checkpoint: %v", err)
	}
	if archive.ComparePaths("aaa/0first", string(ck.After)) >= 0 || archive.ComparePaths("zzz/fl", string(ck.After)) <= 0 {
		t.Fatalf("the checkpoint stops at %s: the test needs aaa/ before it and zzz/ after", ck.After)
	}
	early := filepath.Join(x.r.src, "aaa", "0first") // archived before the checkpoint
	late := filepath.Join(x.r.src, "zzz", "fl")      // archived after it
	os.WriteFile(early+".new", []byte("new early\n"), 0o644)
	os.Rename(early+".new", early) // breaks the hardlink with zzz/zlast
	os.WriteFile(late, []byte("new late\n"), 0o644)
	os.WriteFile(filepath.Join(x.r.src, "zzz", "znew"), []byte("added\n"), 0o644)

	x.fb.failOn = ""
	m, got, _, err := x.backup("fp")
	if err != nil || got == nil {
		t.Fatalf("resume: %v (resumed %v)", err, got != nil)
	}
	out, err := x.r.restore(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"aaa/0first": "hardlinked across the checkpoint\n", // as the first run read it
		"zzz/zlast":  "hardlinked across the checkpoint\n", // the second run's: the old inode
		"zzz/fl":     "new late\n",
		"zzz/znew":   "added\n",
	} {
		if b, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q (%v), want %q", p, b, err, want)
		}
	}
}

// TestResumeCheckpointOfCompleteSet: a run killed after its manifest and
// before it removed its checkpoint leaves a checkpoint of a complete set;
// the next run drops the checkpoint and keeps the set.
func TestResumeCheckpointOfCompleteSet(t *testing.T) {
	x := newResumeRun(t, nil)
	saved := filepath.Join(t.TempDir(), "saved")
	x.opts = func(o *archive.BackupOptions) {
		o.Resume.Checkpointed = func(int) {
			os.RemoveAll(saved)
			if out, err := exec.Command("cp", "-a", x.dir, saved).CombinedOutput(); err != nil {
				t.Errorf("cp: %v %s", err, out)
			}
		}
	}
	m, _, _, err := x.backup("fp")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(saved, x.dir); err != nil {
		t.Fatal(err)
	}
	x.opts = nil
	m2, ck, reason, err := x.backup("fp")
	if err != nil || ck != nil || !strings.Contains(reason, "complete") {
		t.Fatalf("after a checkpoint of a complete set: resumed %v, reason %q, %v", ck != nil, reason, err)
	}
	ids, err := x.r.repo().SetIDs(context.Background())
	if err != nil || len(ids) != 2 || ids[0] != m.ID || ids[1] != m2.ID {
		t.Errorf("sets %v (%v), want %s and %s", ids, err, m.ID, m2.ID)
	}
	out, err := x.r.restore(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, x.r.src, out, m.ID)
}

// TestResumeRemoteDownAtStart: when the remote cannot be listed, the
// checkpoint can be neither trusted nor dropped: the run fails and keeps
// it, and a later run resumes.
func TestResumeRemoteDownAtStart(t *testing.T) {
	x := newResumeRun(t, nil)
	x.fb.failOn = "vol-000003.tar.zst"
	if _, _, _, err := x.backup("fp"); err == nil {
		t.Fatal("the interrupted backup succeeded")
	}
	x.fb.failOn, x.fb.listDown = "", true
	if ck, reason, err := x.repo().CheckResume(context.Background(), x.dir, "fp", "none"); !errors.Is(err, errRemoteDown) {
		t.Fatalf("with the remote down: checkpoint %v, reason %q, error %v; want the remote's error", ck, reason, err)
	}
	x.fb.listDown = false
	m, ck, reason, err := x.backup("fp")
	if err != nil || ck == nil {
		t.Fatalf("resume after the remote is back: %v (resumed %v: %s)", err, ck != nil, reason)
	}
	out, err := x.r.restore(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, x.r.src, out, m.ID)
}

// TestResumeSealedStockTools: a full sealed with the host's key, resumed
// after the remote failed mid-run, is restored by the stock-tools procedure
// (gpg checks our signature, then zstd and tar).
func TestResumeSealedStockTools(t *testing.T) {
	for _, tool := range []string{"gpg", "zstd", "tar"} {
		testenv.NeedTool(t, tool)
	}
	keys := &sealedRepo{keys: t.TempDir()}
	k, err := seal.GenerateKey("host", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SaveFiles(filepath.Join(keys.keys, "host.pub"), filepath.Join(keys.keys, "host.sec"), nil); err != nil {
		t.Fatal(err)
	}
	box := keys.box(t, "host", "host")
	x := newResumeRun(t, box)
	x.fb.failOn = "vol-000003.tar.zst.pgp"
	if _, _, _, err := x.backup("fp"); !errors.Is(err, errRemoteDown) {
		t.Fatalf("interrupted backup: %v", err)
	}
	x.fb.failOn = ""
	m, ck, reason, err := x.backup("fp")
	if err != nil || ck == nil {
		t.Fatalf("resume: %v (resumed %v: %s)", err, ck != nil, reason)
	}
	out := filepath.Join(t.TempDir(), "stock")
	cmd := exec.Command("../scripts/restore-with-stock-tools.sh", "--signer", box.SignerFingerprint(), x.r.setDir(m.ID), out)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+keys.gpgHome(t))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stock-tools procedure on a resumed sealed full: %v\n%s", err, b)
	}
	diffs, err := treecmp.Diff(x.r.src, out, treecmp.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		if !strings.Contains(d, "sparse") { // stock tools write holes as zeros
			t.Error(d)
		}
	}
}
