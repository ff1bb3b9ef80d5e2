package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/backtory/backtory/remote"
)

// TestS3ConfigErrors: every bad setting is refused by Open, in one line,
// before any connection.
func TestS3ConfigErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("[default]\naws_access_key_id = a\naws_secret_access_key = b\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("aws_access_key_id = a\naws_secret_access_key = b\n"), 0o644)
	t.Setenv(remote.S3AccessKeyEnv, "")
	t.Setenv(remote.S3SecretKeyEnv, "")
	tests := []struct {
		name string
		cfg  remote.Config
		want string
	}{
		{"no bucket", remote.Config{URL: "s3://127.0.0.1:1/", CredentialsFile: good}, "needs a bucket"},
		{"keys in url", remote.Config{URL: "s3://a:b@127.0.0.1:1/bk", CredentialsFile: good}, "do not put keys in the url"},
		{"query", remote.Config{URL: "s3://127.0.0.1:1/bk?x=1", CredentialsFile: good}, "query"},
		{"bad prefix", remote.Config{URL: "s3://127.0.0.1:1/bk/../x", CredentialsFile: good}, "prefix"},
		{"tls on http", remote.Config{URL: "s3+http://127.0.0.1:1/bk", CredentialsFile: good, TLSCA: good}, "unencrypted"},
		{"addressing", remote.Config{URL: "s3://127.0.0.1:1/bk", CredentialsFile: good, Addressing: "dns"}, "want path or virtual"},
		{"no credentials", remote.Config{URL: "s3://127.0.0.1:1/bk"}, "AWS_ACCESS_KEY_ID"},
		{"open credentials", remote.Config{URL: "s3://127.0.0.1:1/bk", CredentialsFile: open}, "chmod 600"},
		{"missing credentials", remote.Config{URL: "s3://127.0.0.1:1/bk", CredentialsFile: filepath.Join(dir, "none")}, "no such file"},
		{"small part", remote.Config{URL: "s3://127.0.0.1:1/bk", CredentialsFile: good, PartSize: 1 << 20}, "5 MiB"},
		{"no endpoint", remote.Config{URL: "s3:///bk", CredentialsFile: good}, "needs an endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.Open(context.Background(), tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open = %v, want one line containing %q", err, tc.want)
			}
			if tc.name == "open credentials" && !errors.Is(err, remote.ErrInsecureCredentials) {
				t.Fatalf("Open = %v, want ErrInsecureCredentials", err)
			}
		})
	}
}

func TestParseS3Credentials(t *testing.T) {
	tests := []struct {
		in, id, secret, token, err string
	}{
		{in: "[default]\naws_access_key_id=A\naws_secret_access_key = S\n", id: "A", secret: "S"},
		{in: "# c\n; c\naws_access_key_id = A\r\naws_secret_access_key = S\r\naws_session_token = T\n", id: "A", secret: "S", token: "T"},
		{in: "aws_access_key_id = A\n", err: "want aws_access_key_id and aws_secret_access_key"},
		{in: "[a]\naws_access_key_id = A\n[b]\n", err: "second profile"},
		{in: "region = x\n", err: "unknown key"},
		{in: "garbage\n", err: "key = value"},
	}
	for _, tc := range tests {
		k, err := remote.ParseS3Credentials(strings.NewReader(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || k.AccessKeyID != tc.id || k.SecretAccessKey != tc.secret || k.SessionToken != tc.token {
			t.Errorf("Parse(%q) = %+v, %v", tc.in, k, err)
		}
	}
}

func FuzzParseS3Credentials(f *testing.F) {
	f.Add([]byte("[default]\naws_access_key_id = A\naws_secret_access_key = S\n"))
	f.Add([]byte("aws_session_token=\n[x]\n[y]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := remote.ParseS3Credentials(strings.NewReader(string(data)))
		if err == nil && (k.AccessKeyID == "" || k.SecretAccessKey == "") {
			t.Fatalf("accepted keys without an id or secret: %+v", k)
		}
	})
}

func TestS3Transient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("put x: %w", err) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"500", wrap(minio.ErrorResponse{StatusCode: 500, Code: "InternalError"}), true},
		{"503 slow down", wrap(minio.ErrorResponse{StatusCode: 503, Code: "SlowDown"}), true},
		{"429", wrap(minio.ErrorResponse{StatusCode: 429}), true},
		{"507 full", wrap(minio.ErrorResponse{StatusCode: 507}), false},
		{"403", wrap(minio.ErrorResponse{StatusCode: 403, Code: "AccessDenied"}), false},
		{"404", wrap(minio.ErrorResponse{StatusCode: 404, Code: "NoSuchBucket"}), false},
		{"connection refused", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), true},
		{"cancelled", wrap(context.Canceled), false},
		{"not found", wrap(fs.ErrNotExist), false},
	}
	for _, tc := range tests {
		if got := remote.S3Transient(tc.err); got != tc.want {
			t.Errorf("%s: transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}
