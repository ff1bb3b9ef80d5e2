package recovery

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleLayout() *Layout {
	return &Layout{
		Version: LayoutVersion, Host: "web1", Captured: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC),
		Boot:  Boot{Mode: "bios", Loader: "grub", Disks: []string{"/dev/vda"}},
		Disks: []Disk{{Path: "/dev/vda", Size: 2 << 30, SectorSize: 512, Table: "gpt", Dump: "sfdisk-vda.dump"}},
		PVs:   []PV{{Device: "/dev/vda2", VG: "vg0", UUID: "ICgw9D-aaaa", Size: 1 << 30}},
		VGs:   []VG{{Name: "vg0", UUID: "u", ExtentSize: 4 << 20, Cfg: "lvm-vg0.cfg"}},
		LVs:   []LV{{VG: "vg0", Name: "root", UUID: "x", Size: 512 << 20, Segtype: "linear"}},
		Pools: []Pool{{Name: "tank", Vdevs: []string{"mirror", "/dev/vda3", "/dev/vdb3"},
			Props: []Prop{{Name: "ashift", Value: "12", Source: "local"}}}},
		Datasets: []Dataset{{Name: "tank/data", Type: "filesystem", Props: []Prop{{Name: "comment:x", Value: "two words", Source: "local"}}}},
		FS: []FS{{Device: "/dev/mapper/vg0-root", Mountpoint: "/", Type: "ext4", UUID: "0b1c", Label: "my root%", Options: "rw,relatime", BlockSize: 4096, InodeSize: 256},
			{Device: "/dev/vda1", Type: "vfat", UUID: "A638-033C", Label: "-"}},
		Swaps:   []Swap{{Device: "/dev/vda4", UUID: "5555"}},
		Missing: []string{"mdadm"},
		Files:   map[string]string{"sfdisk-vda.dump": "label: gpt\n", "lvm-vg0.cfg": "vg0 {\n}\n"},
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "-", "plain", "two words", "100%", "tab\there", "new\nline", "%2D", "ü"} {
		e := Escape(s)
		if e == "" || strings.ContainsAny(e, " \t\n") {
			t.Errorf("Escape(%q) = %q: not one field", s, e)
		}
		got, err := Unescape(e)
		if s == "" {
			got, err = "", nil // "-" stands for nothing; ParseConf handles it
		}
		if err != nil || got != s {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"%", "%2", "%zz"} {
		if _, err := Unescape(bad); err == nil {
			t.Errorf("Unescape(%q): no error", bad)
		}
	}
}

func TestConf(t *testing.T) {
	l := sampleLayout()
	conf := l.Conf()
	recs, err := ParseConf(bytes.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	find := func(kw string) []string {
		for _, r := range recs {
			if r[0] == kw {
				return r
			}
		}
		t.Fatalf("no %s record in\n%s", kw, conf)
		return nil
	}
	for _, tc := range []struct {
		kw   string
		want []string
	}{
		{"boot", []string{"boot", "bios", "grub", "", "/dev/vda"}},
		{"disk", []string{"disk", "/dev/vda", "2147483648", "512", "gpt", "sfdisk-vda.dump"}},
		{"pv", []string{"pv", "/dev/vda2", "vg0", "ICgw9D-aaaa", "1073741824"}},
		{"vg", []string{"vg", "vg0", "u", "4194304", "lvm-vg0.cfg"}},
		{"lv", []string{"lv", "vg0", "root", "x", "536870912", "linear", "", ""}},
		{"zpool", []string{"zpool", "tank", "mirror,/dev/vda3,/dev/vdb3"}},
		{"zpoolprop", []string{"zpoolprop", "tank", "ashift", "12", "local"}},
		{"zfsprop", []string{"zfsprop", "tank/data", "comment:x", "two words", "local"}},
		{"fs", []string{"fs", "/dev/mapper/vg0-root", "/", "ext4", "0b1c", "my root%", "rw,relatime", "4096", "256"}},
		{"swap", []string{"swap", "/dev/vda4", "5555", ""}},
		{"missing", []string{"missing", "mdadm"}},
		{"file", []string{"file", "lvm-vg0.cfg"}},
	} {
		if got := find(tc.kw); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s record = %q, want %q", tc.kw, got, tc.want)
		}
	}
	// The vfat label "-" must survive as a literal dash.
	for _, r := range recs {
		if r[0] == "fs" && r[1] == "/dev/vda1" && r[5] != "-" {
			t.Errorf("label %q, want -", r[5])
		}
	}
	// No keyword is a prefix of another (grep '^kw ' selects one kind).
	for _, line := range strings.Split(strings.TrimSpace(string(conf)), "\n") {
		if strings.Contains(line, "  ") || strings.HasSuffix(line, " ") {
			t.Errorf("empty field in %q", line)
		}
	}
}

func TestBundleRoundTrip(t *testing.T) {
	l := sampleLayout()
	b, err := l.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, l)
	}
	if _, err := ParseJSON([]byte(`{"version": 99}`)); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("newer version: %v", err)
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add(sampleLayout().Conf())
	f.Add([]byte("disk /dev/vda 1 512 gpt -\nfs a%2 b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseConf(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, r := range recs {
			if len(r) == 0 {
				t.Fatal("empty record")
			}
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	b, _ := sampleLayout().Bundle()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseBundle(b)
		if err == nil && l == nil {
			t.Fatal("nil layout without error")
		}
	})
}
