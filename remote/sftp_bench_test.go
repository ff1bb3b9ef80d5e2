package remote_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/sshtest"
	"github.com/backtory/backtory/internal/testenv"
)

// BenchmarkSFTPUpload uploads the same 8 files of 16 MiB (random, so
// nothing compresses) to a local sshd with backtory's SFTP backend (1 and
// 2 connections), OpenSSH's sftp and scp, interleaved in each iteration,
// and reports each one's MB/s and backtory's as a ratio of sftp's and
// scp's. The ratios are the result: the machine is shared.
func BenchmarkSFTPUpload(b *testing.B) {
	testenv.NeedTool(b, "sftp")
	testenv.NeedTool(b, "scp")
	const files, size = 8, 16 << 20
	s := sshtest.Start(b)
	dir := b.TempDir()
	var paths []string
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("vol-%d", i))
		check(b, os.WriteFile(p, random(size), 0o600))
		paths = append(paths, p)
	}
	ssh := []string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + s.KnownHosts,
		"-o", "IdentitiesOnly=yes", "-i", s.Key, "-P", strconv.Itoa(s.Port)}
	login := sshtest.User + "@127.0.0.1"
	var batch bytes.Buffer
	for _, p := range paths {
		fmt.Fprintf(&batch, "put %s /data/sftp/\n", p)
	}
	check(b, os.MkdirAll(filepath.Join(s.Data, "sftp"), 0o755))
	check(b, os.MkdirAll(filepath.Join(s.Data, "scp"), 0o755))
	check(b, os.Chown(filepath.Join(s.Data, "sftp"), s.UID, s.GID))
	check(b, os.Chown(filepath.Join(s.Data, "scp"), s.UID, s.GID))

	backtory := func(conns int) func() error {
		cfg := s.RemoteConfig(fmt.Sprintf("backtory-%d", conns))
		cfg.Connections = conns
		be := openFTP(b, cfg)
		b.Cleanup(func() { be.Close() })
		return func() error {
			var wg sync.WaitGroup
			errs := make([]error, files)
			for i, p := range paths {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f, err := os.Open(p)
					if err != nil {
						errs[i] = err
						return
					}
					defer f.Close()
					errs[i] = be.Put(context.Background(), filepath.Base(p), f)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	run := func(name string, args ...string) func() error {
		return func() error {
			cmd := exec.Command(name, args...)
			if name == "sftp" {
				cmd.Stdin = bytes.NewReader(batch.Bytes())
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", name, err, out)
			}
			return nil
		}
	}
	tools := []struct {
		name string
		op   func() error
		took time.Duration
	}{
		{name: "backtory-1conn", op: backtory(1)},
		{name: "backtory-2conns", op: backtory(2)},
		{name: "sftp", op: run("sftp", append(append([]string{"-q", "-b", "-"}, ssh...), login)...)},
		{name: "scp", op: run("scp", append(append(append([]string{"-q"}, ssh...), paths...), login+":/data/scp/")...)},
	}
	b.ResetTimer()
	for range b.N {
		for i := range tools {
			start := time.Now()
			if err := tools[i].op(); err != nil {
				b.Fatal(err)
			}
			tools[i].took += time.Since(start)
		}
	}
	b.StopTimer()
	mbps := map[string]float64{}
	for _, t := range tools {
		mbps[t.name] = float64(files*size) * float64(b.N) / t.took.Seconds() / 1e6
		b.ReportMetric(mbps[t.name], t.name+"-MB/s")
	}
	b.ReportMetric(mbps["backtory-2conns"]/mbps["sftp"], "backtory2/sftp")
	b.ReportMetric(mbps["backtory-2conns"]/mbps["scp"], "backtory2/scp")
	b.ReportMetric(mbps["backtory-1conn"]/mbps["sftp"], "backtory1/sftp")
}
