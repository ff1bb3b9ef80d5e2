package main

// Signals and concurrent runs against the built binary: a backup stopped at
// any stage leaves nothing that looks like a set, nothing half-uploaded,
// no spool files, and no lock; the next run succeeds.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/backtory/backtory/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestSignalAtEachStage sends SIGTERM (or SIGINT) to `backtory backup` in
// each stage of a run and checks what it leaves behind.
func TestSignalAtEachStage(t *testing.T) {
	testenv.NeedRoot(t, "hooks need a root-owned config")
	bin := sigBuild(t)

	t.Run("pre_backup hook", func(t *testing.T) {
		e := sigEnv(t, bin, sigHook(t, "pre_backup"))
		r := e.start(t, "backup")
		pid := sigWaitPID(t, r, filepath.Join(e.dir, "hook.pid"))
		r.signal(t, syscall.SIGTERM)
		code, stderr := r.wait(t)
		e.checkStopped(t, code, stderr)
		sigCheckGone(t, pid)
		e.checkNextRun(t)
	})

	t.Run("post_snapshot hook", func(t *testing.T) {
		e := sigEnv(t, bin, sigHook(t, "post_snapshot"))
		r := e.start(t, "backup")
		pid := sigWaitPID(t, r, filepath.Join(e.dir, "hook.pid"))
		r.signal(t, syscall.SIGTERM)
		code, stderr := r.wait(t)
		e.checkStopped(t, code, stderr)
		sigCheckGone(t, pid)
		e.checkStatus(t, "root: failure")
		e.checkNextRun(t)
	})

	// A differential interrupted with SIGINT while it reads a big file.
	t.Run("differential reading a big file", func(t *testing.T) {
		e := sigEnv(t, bin, "")
		e.run(t, exitOK, "backup", "--full")
		big := filepath.Join(e.src, "big")
		sigSparse(t, big, 64<<30)
		r := e.start(t, "backup", "--diff")
		sigWaitUntil(t, r, "the differential starts writing its spool", func() bool {
			ents, _ := os.ReadDir(filepath.Join(e.dir, "state/spool"))
			return len(ents) > 0
		})
		time.Sleep(200 * time.Millisecond) // well into the file
		r.signal(t, syscall.SIGINT)
		code, stderr := r.wait(t)
		e.checkStopped(t, code, stderr)
		e.checkStatus(t, "root: failure")
		os.Truncate(big, 1<<20)
		e.checkNextRun(t)
	})

	// A second signal, while the post_backup hooks of a stopping run still
	// run, ends backtory at once; the kernel drops its lock with it.
	t.Run("second signal", func(t *testing.T) {
		e := sigEnv(t, bin, sigHook(t, "pre_backup")+
			`  post_backup: ["[ -e DIR/post.pid ] || { echo $$ > DIR/post.pid.tmp; mv DIR/post.pid.tmp DIR/post.pid; exec sleep 60; }"]`+"\n")
		r := e.start(t, "backup")
		sigWaitPID(t, r, filepath.Join(e.dir, "hook.pid"))
		r.signal(t, syscall.SIGTERM)
		post := sigWaitPID(t, r, filepath.Join(e.dir, "post.pid"))
		t.Cleanup(func() { unix.Kill(post, unix.SIGKILL) }) // outlives backtory, by design
		r.signal(t, syscall.SIGTERM)
		r.wait(t)
		if ws := r.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("after a second SIGTERM backtory ended with %v, not by the signal", r.cmd.ProcessState)
		}
		e.checkNextRun(t)
	})

	// Frozen (SIGSTOP) while the second volume is being uploaded, then sent
	// SIGTERM and let go: the half-uploaded second volume is deleted, the
	// first, already on the remote, is kept if a checkpoint holds it, and
	// the next run finishes the full.
	t.Run("uploading a volume", func(t *testing.T) {
		e := sigEnv(t, bin, "")
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := range 6 {
			data := make([]byte, 1536<<10) // incompressible: one volume each
			for j := range data {
				data[j] = byte(rnd.Uint32())
			}
			os.WriteFile(filepath.Join(e.src, fmt.Sprintf("rand%d", i)), data, 0o644)
		}
		setsDir := filepath.Join(e.dir, "remote/testhost/root")
		os.MkdirAll(setsDir, 0o700)
		w := sigWatch(t, setsDir)
		r := e.start(t, "backup")
		present := w.stopAt(t, r, func(name string) bool { return name == "vol-000002.tar.zst.part" })
		r.signal(t, syscall.SIGTERM)
		r.signal(t, syscall.SIGCONT)
		code, stderr := r.wait(t)
		t.Logf("frozen with %v in the set", present)
		e.checkStopped(t, code, stderr)
		e.checkStatus(t, "root: failure")
		e.checkNextRun(t)
	})

	// Frozen (SIGSTOP) the moment the file table's upload starts, which is
	// after the last volume and before the manifest, then sent SIGTERM and
	// let go: the run ends either before the manifest (no set, the
	// checkpointed volumes kept for the next run) or, if it won the race,
	// with a complete set; never anything in between.
	t.Run("before the manifest", func(t *testing.T) {
		hits := 0
		for round := range 3 {
			e := sigEnv(t, bin, "")
			setsDir := filepath.Join(e.dir, "remote/testhost/root")
			os.MkdirAll(setsDir, 0o700)
			w := sigWatch(t, setsDir)
			r := e.start(t, "backup")
			present := w.stopAt(t, r, func(name string) bool {
				return strings.HasPrefix(name, "files.") || strings.HasPrefix(name, "sigs.")
			})
			r.signal(t, syscall.SIGTERM)
			r.signal(t, syscall.SIGCONT)
			code, stderr := r.wait(t)
			manifestFirst := slicesContainsPrefix(present, "manifest.")
			t.Logf("round %d: frozen with %v in the set; exit %d: %s", round, present, code, strings.TrimSpace(stderr))
			switch {
			case code == exitOK:
				e.checkSets(t, 1)
				e.run(t, exitOK, "verify")
			default:
				e.checkStopped(t, code, stderr)
				if !manifestFirst {
					hits++
				}
			}
			e.checkNextRun(t)
		}
		t.Logf("%d of 3 rounds stopped between the last volume and the manifest", hits)
	})
}

// TestSecondRunExitsLocked starts a backup held in a pre_backup hook; a
// second backup meanwhile exits 4 naming the first's PID, and leaves the
// first to finish its set.
func TestSecondRunExitsLocked(t *testing.T) {
	testenv.NeedRoot(t, "hooks need a root-owned config")
	bin := sigBuild(t)
	dir := t.TempDir()
	hold := `"echo $$ > ` + filepath.Join(dir, "hook.pid") + `; while [ ! -e ` + filepath.Join(dir, "go") + ` ]; do sleep 0.05; done"`
	e := sigEnvIn(t, bin, dir, "hooks:\n  pre_backup: ["+hold+"]\n")
	first := e.start(t, "backup")
	sigWaitPID(t, first, filepath.Join(dir, "hook.pid"))

	second := e.start(t, "backup")
	code, stderr := second.wait(t)
	want := fmt.Sprintf("(pid %d) holds the lock", first.cmd.Process.Pid)
	if code != exitLocked || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("second backup: exit %d, stderr %q; want %d and one line with %q", code, stderr, exitLocked, want)
	}
	// prune takes the same lock.
	if code, stderr := e.start(t, "prune").wait(t); code != exitLocked || !strings.Contains(stderr, want) {
		t.Errorf("prune during a backup: exit %d, stderr %q", code, stderr)
	}

	os.WriteFile(filepath.Join(dir, "go"), nil, 0o600)
	if code, stderr := first.wait(t); code != exitOK {
		t.Fatalf("first backup: exit %d: %s", code, stderr)
	}
	e.checkSets(t, 1)
	e.run(t, exitOK, "verify")
	// The lock is free again.
	e.run(t, exitOK, "backup")
	e.checkSets(t, 2)
}

// sigBuild builds the binary into the test's temporary directory.
func sigBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "backtory")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// sigHook returns a hooks section whose phase hook, the first time it runs,
// writes its PID to hook.pid (in the config's directory, which sigEnv fills
// in) and sleeps.
func sigHook(t *testing.T, phase string) string {
	t.Helper()
	return "hooks:\n  " + phase + `: ["[ -e DIR/hook.pid ] || { echo $$ > DIR/hook.pid.tmp; mv DIR/hook.pid.tmp DIR/hook.pid; exec sleep 60; }"]` + "\n"
}

// sigTestEnv is one config with its source, state and remote.
type sigTestEnv struct {
	bin, dir, src, cfg string
}

func sigEnv(t *testing.T, bin, extra string) *sigTestEnv {
	return sigEnvIn(t, bin, t.TempDir(), extra)
}

func sigEnvIn(t *testing.T, bin, dir, extra string) *sigTestEnv {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		os.WriteFile(filepath.Join(src, "etc", fmt.Sprintf("f%02d", i)), bytes.Repeat([]byte{byte(i)}, 1000*i), 0o644)
	}
	cfg := writeConfig(t, dir, src, strings.ReplaceAll(extra, "DIR", dir))
	return &sigTestEnv{bin: bin, dir: dir, src: src, cfg: cfg}
}

// sigProc is a running backtory.
type sigProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func (e *sigTestEnv) start(t *testing.T, args ...string) *sigProc {
	t.Helper()
	return e.startOut(t, nil, args...)
}

// startOut starts backtory with its standard output going to stdout.
func (e *sigTestEnv) startOut(t *testing.T, stdout *bytes.Buffer, args ...string) *sigProc {
	t.Helper()
	cmd := exec.Command(e.bin, append(args, "--config", e.cfg)...)
	p := &sigProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *sigProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait returns the exit code and stderr; a run that does not end within
// two minutes is killed and fails the test.
func (p *sigProc) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("backtory %v did not end: %s", p.cmd.Args[1:], p.stderr)
	}
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

// run runs backtory to its end and checks its exit code.
func (e *sigTestEnv) run(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	code, stderr := e.startOut(t, &out, args...).wait(t)
	if code != want {
		t.Fatalf("backtory %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, stderr)
	}
	return out.String()
}

// checkStopped checks what an interrupted run leaves: a non-zero exit with
// one line, nothing but complete sets on the remote, no upload in
// progress, no spool files, and a released lock.
func (e *sigTestEnv) checkStopped(t *testing.T, code int, stderr string) {
	t.Helper()
	if code == exitOK || code == exitLocked {
		t.Errorf("an interrupted backup exited %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "backtory: ") {
		t.Errorf("an interrupted backup says nothing: %q", stderr)
	}
	filepath.WalkDir(filepath.Join(e.dir, "remote"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".part") {
			t.Errorf("an interrupted backup left a partial upload: %s", p)
		}
		return nil
	})
	// An interrupted full keeps the volumes its checkpoint holds, for the
	// next run to resume; nothing else of an incomplete set stays.
	var ck struct {
		ID      string
		Volumes []struct{ Name string }
	}
	if b, err := os.ReadFile(filepath.Join(e.dir, "state/resume/testhost/root/checkpoint.json")); err == nil {
		json.Unmarshal(b, &ck)
	}
	sets, _ := filepath.Glob(filepath.Join(e.dir, "remote/testhost/root/*"))
	for _, s := range sets {
		objs, _ := os.ReadDir(s)
		if len(objs) == 0 || slicesContainsPrefix(dirNames(objs), "manifest.") {
			continue
		}
		held := map[string]bool{}
		if filepath.Base(s) == ck.ID {
			for _, v := range ck.Volumes {
				held[v.Name] = true
			}
		}
		for _, o := range dirNames(objs) {
			if !held[o] {
				t.Errorf("an interrupted backup left %s of an incomplete set in %s (checkpoint %+v)", o, s, ck)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "state/spool")); len(ents) > 0 {
		t.Errorf("an interrupted backup left %v in the spool", dirNames(ents))
	}
	if b, err := os.ReadFile(filepath.Join(e.dir, "state/lock")); err == nil && len(b) > 0 {
		t.Errorf("an interrupted backup left its PID in the lock file: %q", b)
	}
}

// checkSets checks that `backtory list` shows n sets, each complete.
func (e *sigTestEnv) checkSets(t *testing.T, n int) {
	t.Helper()
	var rows []setRow
	if err := json.Unmarshal([]byte(e.run(t, exitOK, "list", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Errorf("backtory list shows %d sets, want %d: %+v", len(rows), n, rows)
	}
	for _, r := range rows {
		if m, _ := filepath.Glob(filepath.Join(e.dir, "remote/testhost/root", r.ID, "manifest.*")); len(m) != 1 {
			t.Errorf("set %s is listed but has manifests %v", r.ID, m)
		}
	}
}

// checkNextRun checks that a following backup succeeds and verifies, and
// that status then reports it.
func (e *sigTestEnv) checkNextRun(t *testing.T) {
	t.Helper()
	before := e.listIDs(t)
	e.run(t, exitOK, "backup")
	if after := e.listIDs(t); len(after) != len(before)+1 {
		t.Errorf("sets before the next run %v, after %v", before, after)
	}
	e.run(t, exitOK, "verify")
	e.checkStatus(t, "root: success")
}

func (e *sigTestEnv) listIDs(t *testing.T) []string {
	t.Helper()
	var rows []setRow
	if err := json.Unmarshal([]byte(e.run(t, exitOK, "list", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// checkStatus checks that backtory status starts with want.
func (e *sigTestEnv) checkStatus(t *testing.T, want string) {
	t.Helper()
	var out bytes.Buffer
	e.startOut(t, &out, "status").wait(t)
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("status: %q, want it to start with %q", out.String(), want)
	}
}

// sigWaitUntil polls cond until it holds; it fails the test if the run
// ends first or after a minute.
func sigWaitUntil(t *testing.T, p *sigProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("backtory ended (%v) before %s: %s", err, what, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sigWaitPID waits for a hook to write its PID to file and returns it.
func sigWaitPID(t *testing.T, p *sigProc, file string) int {
	t.Helper()
	var pid int
	sigWaitUntil(t, p, "the hook starts", func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil
	})
	return pid
}

// sigCheckGone checks that the process pid no longer exists.
func sigCheckGone(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("the hook (pid %d) outlived the interrupted run: %v", pid, err)
	}
}

func sigSparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func dirNames(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func slicesContainsPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// sigWatcher reports with inotify what appears in a directory of sets and
// in each set directory created in it.
type sigWatcher struct {
	fd    int
	dirs  map[int]string // watch descriptor -> directory
	root  string
	setsW int
}

func sigWatch(t *testing.T, root string) *sigWatcher {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	wd, err := unix.InotifyAddWatch(fd, root, unix.IN_CREATE)
	if err != nil {
		t.Fatalf("inotify watch %s: %v", root, err)
	}
	return &sigWatcher{fd: fd, dirs: map[int]string{wd: root}, root: root, setsW: wd}
}

// stopAt freezes p with SIGSTOP as soon as a name for which match is true
// appears in a set directory, and returns the names present in that
// directory at that moment.
func (w *sigWatcher) stopAt(t *testing.T, p *sigProc, match func(string) bool) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 100); n == 0 {
			select {
			case err := <-p.done:
				p.done <- err
				t.Fatalf("backtory ended (%v) before it was frozen: %s", err, p.stderr)
			default:
			}
			continue
		}
		n, err := unix.Read(w.fd, buf)
		if err != nil {
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			dir := w.dirs[int(ev.Wd)]
			if int(ev.Wd) == w.setsW && ev.Mask&unix.IN_ISDIR != 0 {
				set := filepath.Join(dir, name)
				wd, err := unix.InotifyAddWatch(w.fd, set, unix.IN_CREATE|unix.IN_MOVED_TO)
				if err != nil {
					t.Fatalf("inotify watch %s: %v", set, err)
				}
				w.dirs[wd] = set
				// Objects created before the watch: look at them too.
				ents, _ := os.ReadDir(set)
				for _, e := range ents {
					if match(e.Name()) {
						return w.freeze(t, p, set)
					}
				}
				continue
			}
			if int(ev.Wd) != w.setsW && match(name) {
				return w.freeze(t, p, dir)
			}
		}
	}
	t.Fatal("waited a minute for the object to stop at")
	return nil
}

func (w *sigWatcher) freeze(t *testing.T, p *sigProc, set string) []string {
	t.Helper()
	p.signal(t, syscall.SIGSTOP)
	ents, _ := os.ReadDir(set)
	return dirNames(ents)
}
