package remote_test

import (
	"context"
	"strings"
	"testing"

	"github.com/backtory/backtory/remote"
)

// TestURLErrorsHideThePassword opens remotes whose URL holds a password
// and is wrong in some way: no error shows the password.
func TestURLErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t!pw"
	for _, raw := range []string{
		"nosuch://alice:" + pw + "@host/path",        // unsupported scheme
		"ftp://alice:" + pw + "@host:99999x/path",    // bad port
		"ftp://alice:" + pw + "@host/path",           // password in the url
		"ftps://alice:" + pw + "@host:21/p?q=1",      // query
		"ftp://alice:" + pw + "@[::1/path",           // bad IPv6 literal
		"file://alice:" + pw + "@otherhost/srv/x",    // file:// with a host
		"ftp:alice:" + pw + "@host",                  // no //
		"ftp://alice:" + pw + "@host%zz/path",        // bad escape
		"ftp://al%ce:" + pw + "@host/path",           // bad escape in the user
		"ftp://alice:" + pw + "@h\x7fost/path",       // control character
		"ftps+implicit://alice:" + pw + "@:990/path", // no host
	} {
		_, err := remote.Open(context.Background(), remote.Config{URL: raw, User: "alice"}, nil)
		if err == nil {
			t.Errorf("%q: opened", raw)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"ftp://alice:pw@host/path": "ftp://alice:xxxxx@host/path",
		"ftp://alice@host/path":    "ftp://alice@host/path",
		"ftp://alice:pw@host:9x/p": "ftp://alice:xxxxx@host:9x/p",
		"ftp://a:p@w@host:9x/p":    "ftp://a:xxxxx@host:9x/p",
		"file:///srv/backups":      "file:///srv/backups",
		"ftp://host/a@b:c":         "ftp://host/a@b:c",
		"ftp:alice:pw@host":        "ftp:xxxxx@host",
	} {
		if got := remote.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
