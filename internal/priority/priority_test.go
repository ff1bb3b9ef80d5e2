package priority

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestParseIO(t *testing.T) {
	for _, c := range []struct {
		in   string
		want IO
		err  string
	}{
		{in: "idle", want: IO{ClassIdle, 4}},
		{in: "best-effort", want: IO{ClassBestEffort, 4}},
		{in: "best-effort:7", want: IO{ClassBestEffort, 7}},
		{in: "realtime:0", want: IO{ClassRealtime, 0}},
		{in: "best-effort:8", err: "0 (highest) to 7"},
		{in: "best-effort:-1", err: "0 (highest) to 7"},
		{in: "idle:3", err: "no level"},
		{in: "low", err: "want idle"},
		{in: "", err: "want idle"},
	} {
		got, err := ParseIO(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseIO(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseIO(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestCheckNice(t *testing.T) {
	for n, ok := range map[int]bool{-21: false, -20: true, 0: true, 19: true, 20: false} {
		if err := CheckNice(n); (err == nil) != ok {
			t.Errorf("CheckNice(%d) = %v", n, err)
		}
	}
}

// TestApply runs Apply in a child process (it cannot be undone without
// privileges) and checks every thread of the child, those started before
// and after, with getpriority(2) and ioprio_get(2).
func TestApply(t *testing.T) {
	if os.Getenv("PRIORITY_TEST_CHILD") == "1" {
		applyChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestApply$")
	cmd.Env = append(os.Environ(), "PRIORITY_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "threads checked") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

func applyChild() {
	fail := func(format string, a ...any) {
		fmt.Printf(format+"\n", a...)
		os.Exit(1)
	}
	// Threads that exist before Apply: goroutines locked to threads.
	var wg, started sync.WaitGroup
	release := make(chan struct{})
	locked := func() {
		defer wg.Done()
		runtime.LockOSThread()
		started.Done()
		<-release
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		started.Add(1)
		go locked()
	}
	started.Wait()
	nice, io := 7, IO{ClassBestEffort, 6}
	if err := Apply(&nice, &io); err != nil {
		fail("Apply: %v", err)
	}
	// Threads started after Apply inherit it.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		started.Add(1)
		go locked()
	}
	started.Wait()
	tids, err := Threads()
	if err != nil {
		fail("%v", err)
	}
	if len(tids) < 8 {
		fail("only %d threads", len(tids))
	}
	for _, tid := range tids {
		n, p, err := Get(tid)
		if err != nil {
			fail("thread %d: %v", tid, err)
		}
		if n != nice || p != io {
			fail("thread %d: nice %d, io %v; want %d, %v", tid, n, p, nice, io)
		}
	}
	close(release)
	wg.Wait()
	fmt.Printf("%d threads checked\n", len(tids))
}

// FuzzParseIO: any config text gives a class and a level in range, or an error.
func FuzzParseIO(f *testing.F) {
	for _, s := range []string{"idle", "best-effort:7", "realtime:0", "idle:1", "best-effort:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseIO(s)
		if err != nil {
			return
		}
		if p.Class < ClassRealtime || p.Class > ClassIdle || p.Level < 0 || p.Level > 7 {
			t.Fatalf("ParseIO(%q) = %+v", s, p)
		}
	})
}
