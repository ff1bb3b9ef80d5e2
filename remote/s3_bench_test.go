package remote_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/s3test"
	"github.com/backtory/backtory/remote"
)

// BenchmarkS3PutMemory uploads one object of 8, 32 and 128 MiB from a
// plain io.Reader (no size known) to the SeaweedFS cluster, with 5 MiB
// parts, and reports the peak of live heap above the start (flat: about
// one part, whatever the object's size) and the bytes allocated per upload
// (garbage, which grows by under 1 MiB a part).
func BenchmarkS3PutMemory(b *testing.B) {
	cl := s3test.Start(b, s3test.Config{VolumeSizeLimitMB: 256, MaxVolumes: 20})
	cl.MakeBucket("bench")
	be, err := remote.Open(context.Background(), cl.RemoteConfig(s3test.Admin, "bench", ""), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for _, mib := range []int64{8, 32, 128} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			b.SetBytes(mib << 20)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			peak, stop := heapPeak()
			for i := range b.N {
				src := io.LimitReader(zeros{}, mib<<20)
				if err := be.Put(context.Background(), fmt.Sprintf("obj-%d-%d", mib, i), src); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			stop()
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MiB/put")
			b.ReportMetric(float64(*peak-before.HeapAlloc)/(1<<20), "peak-live-MiB")
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// heapPeak samples the live heap every 5ms until stop is called.
func heapPeak() (*uint64, func()) {
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return &peak, func() { close(done); <-finished }
}
