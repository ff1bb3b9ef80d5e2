package archive

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestNewerFormatRefused: a reader takes every format from 1 to
// FormatVersion and refuses a newer one with ErrNewerFormat and a message
// that says to upgrade.
func TestNewerFormatRefused(t *testing.T) {
	for _, c := range []struct {
		format  int
		newer   bool
		wantErr string
	}{
		{1, false, ""},
		{FormatVersion, false, ""},
		{FormatVersion + 1, true, "upgrade backtory"},
		{0, false, "no such format version"},
	} {
		m := Manifest{Format: c.format, ID: "full-20260101T000000Z", Kind: KindFull,
			Files: ObjectRef{Name: "files.jsonl.zst", SHA256: strings.Repeat("0", 64)}}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseManifest(raw)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("format %d: %v", c.format, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("format %d: error %v, want %q", c.format, err, c.wantErr)
		case errors.Is(err, ErrNewerFormat) != c.newer:
			t.Errorf("format %d: errors.Is(ErrNewerFormat) = %v", c.format, !c.newer)
		}
	}
}
