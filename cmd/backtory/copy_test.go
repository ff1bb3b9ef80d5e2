package main

// backtory copy: FTP (vsftpd) -> S3 (SeaweedFS) -> FTP, sealed sets
// copied without the keys, a copy killed with SIGKILL finishing on the
// next run, and every copy restoring exactly.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/backtory/backtory/internal/ftptest"
	"github.com/backtory/backtory/internal/s3test"
)

func TestCopyFTPToS3AndBack(t *testing.T) {
	srv := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Plain})
	cl := s3test.Start(t, s3test.Config{})
	cl.MakeBucket("copies")
	src := randomTree(t, 12, 1<<20)
	sampleInto(t, src)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	ftpRemote := func(sub string) string {
		return "  url: " + srv.URL(sub) + "\n  user: " + ftptest.User + "\n  password_file: " + srv.PasswordFile + "\n"
	}
	rc := cl.RemoteConfig(s3test.Admin, "copies", "site2")
	s3Remote := "  url: " + rc.URL + "\n  credentials_file: " + rc.CredentialsFile + "\n  addressing: path\n  part_size: 5242880\n"
	write := func(name, from, to string) string {
		p := filepath.Join(dir, name)
		body := "host: testhost\nstate_dir: " + state + "\nsources:\n  - name: root\n    path: " + src + "\n" +
			"volume_size: 2MiB\nencryption:\n  mode: passphrase\n  passphrase_file: " + filepath.Join(dir, "pass") + "\n" +
			"remote:\n" + from + "copy_to:\n" + to
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.WriteFile(filepath.Join(dir, "pass"), []byte("copy test passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ftpToS3 := write("ftp-to-s3.yaml", ftpRemote("site1"), s3Remote)
	s3ToFTP := write("s3-to-ftp.yaml", s3Remote, ftpRemote("site3"))

	mustRun(t, "backup", "--config", ftpToS3)
	if err := os.WriteFile(filepath.Join(src, "added-after-full"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "--config", ftpToS3)

	// A copy killed with SIGKILL while it uploads, then run again.
	bin := sigBuild(t)
	cmd := exec.Command(bin, "copy", "--config", ftpToS3)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	waitObjects(t, cl, "copies", done)
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	if n := manifests(t, cl, "copies"); n == 2 {
		t.Log("the copy had finished before SIGKILL; the resume below only skips")
	}
	mustRun(t, "copy", "--config", ftpToS3)
	if n := manifests(t, cl, "copies"); n != 2 {
		t.Fatalf("%d sets at the S3 copy, want 2", n)
	}
	// Run again: everything is there already.
	code, stdout, stderr := backtoryOut(t, "copy", "--config", ftpToS3)
	if code != 0 || !strings.Contains(stdout, "copied 0 sets") || !strings.Contains(stdout, "2 already there") {
		t.Fatalf("second copy: exit %d\n%s%s", code, stdout, stderr)
	}

	// The S3 copy restores exactly, and so does its copy back to FTP.
	for _, cfg := range []string{s3ToFTP, write("site3.yaml", ftpRemote("site3"), s3Remote)} {
		if cfg == s3ToFTP {
			mustRun(t, "verify", "--config", cfg)
			mustRun(t, "copy", "--config", cfg)
		}
		restored := filepath.Join(t.TempDir(), "restored")
		mustRun(t, "restore", "--config", cfg, "--to", restored)
		assertSameTree(t, src, restored)
	}
	// Byte for byte: the sealed objects are the same files at both FTP sites.
	site1, site3 := filepath.Join(srv.Data, "site1"), filepath.Join(srv.Data, "site3")
	filepath.Walk(site1, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.Contains(p, "/full-") && !strings.Contains(p, "/diff-") {
			return err
		}
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(site3, strings.TrimPrefix(p, site1)))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s differs at the third site: %v", strings.TrimPrefix(p, site1), err)
		}
		return nil
	})
}

// sampleInto adds the sample tree's kinds of files under src/sample.
func sampleInto(t *testing.T, src string) {
	t.Helper()
	s := sampleTree(t, 0)
	if err := os.Rename(s, filepath.Join(src, "sample")); err != nil {
		t.Fatal(err)
	}
}

// TestCopyLocal: copy between two directories: the copy restores exactly;
// a set whose manifest did not arrive is completed by the next run; a
// different set of the same name at the destination is refused.
func TestCopyLocal(t *testing.T) {
	dir := t.TempDir()
	src := sampleTree(t, 0)
	second := filepath.Join(dir, "second")
	cfg := writeConfig(t, dir, src, "copy_to:\n  url: file://"+second+"\n")
	mustRun(t, "backup", "--config", cfg)
	mustRun(t, "copy", "--config", cfg)
	sets, _ := filepath.Glob(filepath.Join(second, "testhost/root/full-*/manifest.json"))
	if len(sets) != 1 {
		t.Fatalf("copied manifests: %v", sets)
	}
	// As after an interruption: the manifest (written last) is missing.
	os.Remove(sets[0])
	_, stdout, _ := backtoryOut(t, "copy", "--config", cfg)
	if !strings.Contains(stdout, "copied 1 sets") {
		t.Fatalf("resumed copy: %s", stdout)
	}
	restoreCfg := writeConfig(t, t.TempDir(), src, "")
	raw, _ := os.ReadFile(restoreCfg)
	os.WriteFile(restoreCfg, []byte(strings.Replace(string(raw), "file://"+filepath.Join(filepath.Dir(restoreCfg), "remote"), "file://"+second, 1)), 0o600)
	out := filepath.Join(t.TempDir(), "restored")
	mustRun(t, "restore", "--config", restoreCfg, "--to", out)
	assertSameTree(t, src, out)
	// A manifest that differs at the destination is never overwritten.
	os.WriteFile(sets[0], []byte("{}"), 0o644)
	code, stderr := backtory(t, "copy", "--config", cfg)
	if code != exitFailed || !strings.Contains(stderr, "different set") {
		t.Fatalf("copy over a different set: exit %d, %s", code, stderr)
	}
}

// TestCopyBeside: recover.sh and its signature, beside the sets, are copied
// too, and replaced when they change.
func TestCopyBeside(t *testing.T) {
	dir := t.TempDir()
	src := sampleTree(t, 0)
	second := filepath.Join(dir, "second")
	cfg := writeConfig(t, dir, src, "copy_to:\n  url: file://"+second+"\n")
	mustRun(t, "backup", "--config", cfg)
	first := filepath.Join(dir, "remote/testhost/root/recover.sh")
	os.WriteFile(first, []byte("#!/bin/sh\n# one\n"), 0o644)
	mustRun(t, "copy", "--config", cfg)
	os.WriteFile(first, []byte("#!/bin/sh\n# two, longer\n"), 0o644)
	mustRun(t, "copy", "--config", cfg)
	if b, err := os.ReadFile(filepath.Join(second, "testhost/root/recover.sh")); err != nil || string(b) != "#!/bin/sh\n# two, longer\n" {
		t.Fatalf("recover.sh at the copy: %q, %v", b, err)
	}
}
