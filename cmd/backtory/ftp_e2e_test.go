package main

// An end-to-end test over FTPS: backup to a real vsftpd (internal/ftptest
// starts it), a differential, restore, compare.

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/backtory/backtory/internal/ftptest"
)

func TestFTPSBackupRestore(t *testing.T) {
	srv := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	src := sampleTree(t, 0)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "backtory.yaml")
	body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
		"sources:\n  - name: root\n    path: " + src + "\n" +
		"remote:\n" +
		"  url: " + srv.URL("backups") + "\n" +
		"  user: " + ftptest.User + "\n  password_file: " + srv.PasswordFile + "\n  tls_ca: " + srv.CAFile + "\n  connections: 3\n" +
		"volume_size: 1MiB\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", cfg)
	if err := os.WriteFile(filepath.Join(src, "added-after-full"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", cfg)
	out := filepath.Join(dir, "restored")
	mustRun(t, "restore", "--config", cfg, "--to", out)
	assertSameTree(t, src, out)
	mustRun(t, "verify", "--config", cfg)

	sets, parts := serverSets(filepath.Join(srv.Data, "backups"))
	if len(sets) != 2 || len(parts) != 0 {
		t.Fatalf("on the server: sets %q, leftover temporary objects %q", sets, parts)
	}
}
