package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/ftptest"
)

// TestRecoveryScriptFTPSPrivateCA backs up to vsftpd with explicit TLS and
// a private CA (remote.tls_ca), then restores with the published
// recover.sh: the CA travels in the script to curl (--cacert), lftp
// (ssl:ca-file) and the static backtory (tls_ca); another CA is refused;
// and lftp never gets the password in its command string, so a password
// with ' and ! runs nothing.
func TestRecoveryScriptFTPSPrivateCA(t *testing.T) {
	dash := recoveryNeed(t, "dash")
	for _, tool := range []string{"gpg", "gpg-agent", "zstd", "tar", "rdiff", "curl", "lftp"} {
		recoveryNeed(t, tool)
	}
	srv := ftptest.Start(t, ftptest.Config{Kind: ftptest.Vsftpd, Mode: ftptest.Explicit})
	publishStatic(t)
	dir, src, pub, sec := recoverySource(t)
	cfgPath := filepath.Join(dir, "backtory.yaml")
	writeTestFile(t, cfgPath, []byte("host: testhost\nstate_dir: "+filepath.Join(dir, "state")+"\n"+
		"sources:\n  - name: root\n    path: "+src+"\n"+
		"remote:\n  url: "+srv.URL("backups")+"\n  user: "+ftptest.User+"\n  password_file: "+srv.PasswordFile+"\n  tls_ca: "+srv.CAFile+"\n"+
		"volume_size: 1MiB\nencryption:\n  signing_key: "+sec+"\n  recipients: ["+pub+"]\n"), 0o600)
	mustRun(t, "backup", "--config", cfgPath, "--full")
	changeRecoveryTree(t, src)
	mustRun(t, "backup", "--config", cfgPath, "--diff")
	script := filepath.Join(srv.Data, "backups", "testhost", "root", "recover.sh")

	hostile := filepath.Join(dir, "hostile.pass")
	marker := filepath.Join(dir, "pwned")
	writeTestFile(t, hostile, []byte("it's!touch "+marker+"; $(touch "+marker+") '; !touch "+marker+"\n"), 0o600)
	for _, tc := range []struct {
		name  string
		extra []string
		fails string // "" when the restore must succeed
	}{
		{"static backtory, fetched with curl", nil, ""},
		{"stock, curl", []string{"--stock"}, ""},
		{"stock, lftp", []string{"--stock", "--fetch", "lftp"}, ""},
		{"another CA, curl", []string{"--stock", "--tls-ca", srv.OtherCAFile}, "cannot fetch"},
		{"another CA, lftp", []string{"--stock", "--fetch", "lftp", "--tls-ca", srv.OtherCAFile}, "cannot fetch"},
		{"password with ' and !, lftp", []string{"--stock", "--fetch", "lftp", "--password-file", hostile}, "cannot fetch"},
	} {
		to := filepath.Join(t.TempDir(), "to")
		args := append([]string{script, "files", "--to", to, "--work", filepath.Join(t.TempDir(), "w"),
			"--password-file", srv.PasswordFile, "--key", sec}, tc.extra...)
		cmd := exec.Command(dash, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if tc.fails != "" {
			if err == nil || !strings.Contains(string(out), tc.fails) {
				t.Errorf("%s: %v, want a failure with %q:\n%s", tc.name, err, tc.fails, out)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("%s: the password ran a command", tc.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.name, err, out)
			continue
		}
		assertRestored(t, tc.name, src, to)
	}
}
