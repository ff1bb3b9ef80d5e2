package remote_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/backtory/backtory/internal/ftptest"
)

// BenchmarkFTPPut uploads 8 objects of 8 MiB from 8 goroutines through a
// backend with 1 or 4 upload connections, to a local vsftpd (plain and
// explicit FTPS). Compare the MB/s of conns=4 with conns=1.
func BenchmarkFTPPut(b *testing.B) {
	const objects, size = 8, 8 << 20
	data := random(size)
	for _, mode := range []string{"plain", "explicit"} {
		for _, conns := range []int{1, 4} {
			b.Run(fmt.Sprintf("vsftpd-%s/conns=%d", mode, conns), func(b *testing.B) {
				s := ftptest.Start(b, ftptest.Config{Kind: ftptest.Vsftpd, Mode: mode})
				cfg := s.RemoteConfig("bench")
				cfg.Connections = conns
				be := openFTP(b, cfg)
				defer be.Close()
				ctx := context.Background()
				b.SetBytes(objects * size)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var wg sync.WaitGroup
					errs := make([]error, objects)
					for j := range objects {
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs[j] = be.Put(ctx, fmt.Sprintf("vol-%d", j), bytes.NewReader(data))
						}()
					}
					wg.Wait()
					for _, err := range errs {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
