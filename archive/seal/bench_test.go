package seal

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
)

// benchObject is the size of one sealed object in the benchmarks.
const benchObject = 8 << 20

// BenchmarkSeal measures sealing throughput (encrypt to two recipients and
// sign) with 1, 2 and 4 goroutines sealing objects at the same time. MB/s
// counts all goroutines together, so on 2 cores goroutines=2 should be
// about twice goroutines=1.
func BenchmarkSeal(b *testing.B) {
	box := hostBox(b)
	plain := randomBytes(benchObject)
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("goroutines=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n * benchObject))
			cpu0 := cpuTime()
			for b.Loop() {
				var wg sync.WaitGroup
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						w, err := box.Seal(io.Discard)
						if err != nil {
							panic(err)
						}
						w.Write(plain)
						if err := w.Close(); err != nil {
							panic(err)
						}
					}()
				}
				wg.Wait()
			}
			cpu := cpuTime() - cpu0
			reportCPU(b, cpu, int64(n*benchObject))
			// cores: CPU time over wall time, how many cores the
			// goroutines kept busy (on a quiet machine ~min(n, cores)).
			b.ReportMetric(float64(cpu)/float64(b.Elapsed()), "cores")
		})
	}
}

// BenchmarkOpen measures decrypt + verify throughput.
func BenchmarkOpen(b *testing.B) {
	box := hostBox(b)
	sealed := seal(b, box, randomBytes(benchObject))
	buf := make([]byte, 256<<10)
	b.SetBytes(benchObject)
	cpu0 := cpuTime()
	for b.Loop() {
		r, err := box.Open(bytes.NewReader(sealed))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpuTime()-cpu0, benchObject)
}

// BenchmarkGnuPGSeal runs `gpg --encrypt --sign -z 0` on the same data, as
// the yardstick for BenchmarkSeal (includes gpg's start-up per object).
func BenchmarkGnuPGSeal(b *testing.B) {
	testenv.NeedTool(b, "gpg")
	fixtures(b)
	home := b.TempDir()
	imp := exec.Command("gpg", "--homedir", home, "--batch", "--no-tty", "--quiet", "--import", host.sec, admin.pub)
	if out, err := imp.CombinedOutput(); err != nil {
		b.Fatalf("gpg --import: %v %s", err, out)
	}
	b.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run() })
	plain := randomBytes(benchObject)
	b.SetBytes(benchObject)
	var cpu time.Duration
	for b.Loop() {
		cmd := exec.Command("gpg", "--homedir", home, "--batch", "--no-tty", "--trust-model", "always",
			"-z", "0", "--cipher-algo", "AES256", "--encrypt", "--sign",
			"-u", host.fpr, "-r", host.fpr, "-r", admin.fpr, "-o", "-")
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(plain), io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("gpg: %v %s", err, stderr.String())
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	reportCPU(b, cpu, benchObject)
}

// BenchmarkSealPassphraseSmall shows the fixed cost per object in passphrase
// mode: one iterated S2K derivation (65011712 bytes of SHA-256) per object.
func BenchmarkSealPassphraseSmall(b *testing.B) {
	p := filepath.Join(b.TempDir(), "pass")
	os.WriteFile(p, []byte("pw\n"), 0o600)
	box, err := New(Config{Mode: ModePassphrase, PassphraseFile: p})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		w, err := box.Seal(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		w.Write([]byte("small"))
		w.Close()
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports CPU nanoseconds per byte over all b.N iterations of
// perOp bytes: unlike MB/s it does not depend on what else the machine runs.
func reportCPU(b *testing.B, cpu time.Duration, perOp int64) {
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(int64(b.N)*perOp), "cpu-ns/B")
}
