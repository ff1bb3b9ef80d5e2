package remote

import (
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// FuzzFTPReply feeds arbitrary server replies (code and text are the
// server's, so untrusted) to the error classification: it must not panic,
// and what the user sees stays one line.
func FuzzFTPReply(f *testing.F) {
	f.Add(451, "Failure writing to local file.")
	f.Add(451, "Error during write to file\nTransfer aborted\n0.002 seconds")
	f.Add(552, "Quota exceeded")
	f.Add(550, "Permission denied.")
	f.Add(530, "Login incorrect.")
	f.Add(421, "Timeout.")
	f.Add(-1, "")
	f.Fuzz(func(t *testing.T, code int, msg string) {
		b := &FTP{pool: &ftpPool{addr: "host:21", timeout: time.Second}}
		for _, err := range []error{
			&textproto.Error{Code: code, Msg: msg},
			errors.Join(io.ErrUnexpectedEOF, &textproto.Error{Code: code, Msg: msg}),
		} {
			_ = ftpTransient(err)
			_ = isReply(err)
			if got := b.explain(err).Error(); strings.Contains(got, "\n") {
				t.Fatalf("explain(%d %q) is not one line: %q", code, msg, got)
			}
		}
	})
}

// TestFTPRetryable lists which failures are retried.
func TestFTPRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&textproto.Error{Code: 421, Msg: "Timeout"}, true},
		{&textproto.Error{Code: 426, Msg: "Connection closed; transfer aborted"}, true},
		{&textproto.Error{Code: 451, Msg: "Failure writing to local file."}, false}, // disk full
		{&textproto.Error{Code: 452, Msg: "Insufficient storage"}, false},
		{&textproto.Error{Code: 530, Msg: "Login incorrect."}, false},
		{&textproto.Error{Code: 550, Msg: "Permission denied."}, false},
		{&sizeMismatch{got: 1, want: 2}, true},
		{&readError{io.ErrClosedPipe}, false},
		{io.ErrUnexpectedEOF, true},
		{errors.Join(errors.New("write: broken pipe"), io.EOF), true},
	}
	for _, tc := range tests {
		if got := ftpTransient(tc.err); got != tc.want {
			t.Errorf("ftpTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
