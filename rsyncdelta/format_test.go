package rsyncdelta

import (
	"bytes"
	"encoding/hex"
	"io"
	"strings"
	"testing"
)

// TestEncoderWidths checks the opcodes and operand widths the delta writer
// picks against librsync's rules.
func TestEncoderWidths(t *testing.T) {
	lit := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	for _, tc := range []struct {
		name string
		f    func(d *deltaWriter)
		want string // hex of the commands between magic and END
	}{
		{"literal 1", func(d *deltaWriter) { d.literal(lit(1)) }, "01" + "78"},
		{"literal 64", func(d *deltaWriter) { d.literal(lit(64)) }, "40" + strings.Repeat("78", 64)},
		{"literal 65", func(d *deltaWriter) { d.literal(lit(65)) }, "4141" + strings.Repeat("78", 65)},
		{"literal 256", func(d *deltaWriter) { d.literal(lit(256)) }, "420100" + strings.Repeat("78", 256)},
		{"copy 0,1", func(d *deltaWriter) { d.copy(0, 1) }, "450001"},
		{"copy 255,256", func(d *deltaWriter) { d.copy(255, 256) }, "46ff0100"},
		{"copy 256,1", func(d *deltaWriter) { d.copy(256, 1) }, "49010001"},
		{"copy 2^16,2^32", func(d *deltaWriter) { d.copy(1<<16, 1<<32) }, "50" + "00010000" + "0000000100000000"},
		{"merged copies", func(d *deltaWriter) { d.copy(0, 100); d.copy(100, 100) }, "4500c8"},
		{"unmerged copies", func(d *deltaWriter) { d.copy(0, 100); d.copy(300, 100) }, "450064" + "49012c64"},
	} {
		var buf bytes.Buffer
		d := newDeltaWriter(&buf)
		tc.f(d)
		if err := d.end(); err != nil {
			t.Fatal(err)
		}
		want := "72730236" + tc.want + "00"
		if got := hex.EncodeToString(buf.Bytes()); got != want {
			t.Errorf("%s: got %s, want %s", tc.name, got, want)
		}
		if d.stats.DeltaBytes != int64(buf.Len()) {
			t.Errorf("%s: stats say %d bytes, wrote %d", tc.name, d.stats.DeltaBytes, buf.Len())
		}
	}
}

// TestPatchMalformed checks that Patch rejects bad deltas with an error.
func TestPatchMalformed(t *testing.T) {
	basis := []byte("0123456789")
	for _, tc := range []struct {
		name, delta string // hex after the magic
		want        string // output, for the good ones
		wantErr     string
	}{
		{"empty", "00", "", ""},
		{"literal and copy", "03616263" + "450205" + "00", "abc23456", ""},
		{"every width", "4400000000000000016a" + "54" + "0000000000000001" + "0000000000000002" + "00", "j12", ""},
		{"copy backwards and overlapping", "450503" + "450004" + "00", "5670123", ""},
		{"bytes after END are ignored", "0178" + "00" + "ffff", "x", ""},
		{"no END", "0178", "", "END"},
		{"nothing", "", "", "END"},
		{"reserved opcode", "55", "", "reserved opcode"},
		{"reserved opcode ff", "ff", "", "reserved opcode"},
		{"zero literal", "4100", "", "invalid literal length 0"},
		{"zero copy", "450000", "", "invalid copy"},
		{"copy past end", "45050a00", "", "past the end"},
		{"copy at end", "450a01", "", "past the end"},
		{"huge copy", "54" + "0000000000000000" + "7fffffffffffffff" + "00", "", "past the end"},
		{"overflowing copy", "54" + "7fffffffffffffff" + "7fffffffffffffff" + "00", "", "invalid copy"},
		{"literal longer than the delta", "44" + "7fffffffffffffff" + "61", "", "unexpected EOF"},
		{"literal length past int64", "44" + "8000000000000000", "", "invalid literal length"},
		{"truncated operand", "4d0000", "", "unexpected EOF"},
	} {
		d, err := hex.DecodeString("72730236" + tc.delta)
		if err != nil {
			t.Fatal(tc.name, err)
		}
		var out bytes.Buffer
		err = Patch(bytes.NewReader(basis), bytes.NewReader(d), &out)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr == "" && out.String() != tc.want:
			t.Errorf("%s: output %q, want %q", tc.name, out.String(), tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
	if err := Patch(bytes.NewReader(basis), strings.NewReader("rs\x01\x36\x00"), io.Discard); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("bad magic: %v", err)
	}
}
