package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCompletionCache(t *testing.T) {
	d := New(filepath.Join(t.TempDir(), "state"))
	if _, _, err := d.Completion(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty cache: %v, want ErrNotExist", err)
	}
	for _, words := range []string{"full-20260101T000000Z\n", "full-20260101T000000Z\ndiff-20260102T000000Z\n"} {
		if err := d.SetCompletion([]byte(words)); err != nil {
			t.Fatal(err)
		}
		got, when, err := d.Completion()
		if err != nil || string(got) != words || when.IsZero() {
			t.Errorf("Completion() = %q, %v, %v; want %q", got, when, err, words)
		}
	}
	fi, err := os.Stat(filepath.Join(d.Root(), completionFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode: %v %v", fi.Mode(), err)
	}
}
