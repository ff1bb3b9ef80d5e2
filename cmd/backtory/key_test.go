package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/archive/seal"
)

func TestKeyCommand(t *testing.T) {
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "keys", "host.pub.asc"), filepath.Join(dir, "keys", "host.sec.asc")
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("a long passphrase\n"), 0o600)
	t.Setenv(seal.PassphraseEnv, "")

	var out bytes.Buffer
	err := keyCommand(streams{stdin: nil, stdout: &out, stderr: io.Discard}, []string{"generate", "--name", "backtory web1", "--email", "root@web1.invalid",
		"--public", pub, "--secret", sec, "--passphrase-file", passFile})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "offline") || strings.Contains(out.String(), "a long passphrase") {
		t.Fatalf("generate output:\n%s", out.String())
	}
	fpr := strings.Fields(out.String())[1]
	if fi, err := os.Stat(sec); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret key mode: %v %v", fi.Mode(), err)
	}
	// The generated key works as a Box's signing key.
	if _, err := seal.New(seal.Config{SigningKey: sec, PassphraseFile: passFile}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    string // in stdout
		wantErr string // in the error
		usage   bool   // the error is a usage error (exit 2)
	}{
		{"fingerprint public", []string{"fingerprint", pub}, "", fpr + " backtory web1 <root@web1.invalid>", "", false},
		{"fingerprint secret", []string{"fingerprint", sec}, "", fpr, "", false},
		{"export", []string{"export", "--secret", sec}, "", "BEGIN PGP PUBLIC KEY BLOCK", "", false},
		{"export public", []string{"export", "--secret", pub}, "", "", "not a secret key", false},
		{"generate again", []string{"generate", "--name", "x", "--public", pub, "--secret", sec}, "", "", "already exists", false},
		{"generate without files", []string{"generate", "--name", "x"}, "", "", "needs --public and --secret", true},
		{"no subcommand", nil, "", "", "missing subcommand", true},
		{"unknown subcommand", []string{"frob"}, "", "", "unknown subcommand", true},
		{"bad flag", []string{"export", "--passphrase", "secret"}, "", "", "unknown flag", true},
		{"import public from stdin", []string{"import", "--to", filepath.Join(dir, "imp.pub")}, keyTestReadFile(t, pub), "stored public key", "", false},
		{"import secret", []string{"import", "--to", filepath.Join(dir, "imp.sec"), sec}, "", "stored secret key (mode 0600)", "", false},
		{"import garbage", []string{"import", "--to", filepath.Join(dir, "g")}, "hello", "", "not a readable OpenPGP key", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := keyCommand(streams{stdin: strings.NewReader(tt.stdin), stdout: &out, stderr: io.Discard}, tt.args)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), tt.want) {
					t.Fatalf("output %q lacks %q", out.String(), tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			var ue usageError
			if errors.As(err, &ue) != tt.usage {
				t.Fatalf("usage error = %v, want %v (%v)", !tt.usage, tt.usage, err)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(dir, "imp.sec")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("imported secret key mode: %v", err)
	}

	// A secret key readable by others is refused with the fix in the message.
	os.Chmod(sec, 0o644)
	err = keyCommand(streams{stdin: nil, stdout: &out, stderr: io.Discard}, []string{"export", "--secret", sec})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable secret key: %v", err)
	}
}

func keyTestReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
