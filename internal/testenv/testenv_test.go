package testenv

import (
	"errors"
	"testing"
)

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatal(a ...any)        { r.failed, r.msg = true, a[0].(string) }
func (r *recorder) Skip(a ...any)         { r.skipped, r.msg = true, a[0].(string) }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		strict     string
		fail, skip bool
	}{
		{"1", true, false},
		{"", false, true},
	} {
		t.Setenv(StrictEnv, tc.strict)
		r := &recorder{TB: t}
		Missing(r, "vsftpd", "run test/deps/ftp.sh")
		if r.failed != tc.fail || r.skipped != tc.skip {
			t.Errorf("strict=%q: failed=%v skipped=%v, want %v %v", tc.strict, r.failed, r.skipped, tc.fail, tc.skip)
		}
		if r.msg != "vsftpd is missing: run test/deps/ftp.sh" {
			t.Errorf("message %q", r.msg)
		}
	}
}

func TestNeed(t *testing.T) {
	t.Setenv(StrictEnv, "1")
	r := &recorder{TB: t}
	Need(r, nil, "")
	if r.failed || r.skipped {
		t.Fatal("Need(nil) ended the test")
	}
	Need(r, errors.New("a loop device"), "")
	if !r.failed {
		t.Fatal("Need(err) under strict mode did not fail")
	}
}

func TestNeedTool(t *testing.T) {
	t.Setenv(StrictEnv, "1")
	if p := NeedTool(t, "sh"); p == "" {
		t.Fatal("no path for sh")
	}
	r := &recorder{TB: t}
	NeedTool(r, "no-such-tool-backtory")
	if !r.failed {
		t.Fatal("a missing tool did not fail under strict mode")
	}
}
