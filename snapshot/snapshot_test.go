package snapshot

import (
	"context"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		err  string // substring; "" = valid
	}{
		{"none", Spec{Path: "/srv"}, ""},
		{"none explicit", Spec{Kind: "none", Path: "/"}, ""},
		{"relative path", Spec{Path: "srv"}, "absolute"},
		{"empty path", Spec{Kind: "zfs"}, "absolute"},
		{"unknown kind", Spec{Kind: "xfs", Path: "/srv"}, `snapshot "xfs" is not one of zfs, lvm, btrfs, none`},
		{"zfs", Spec{Kind: "zfs", Path: "/srv", Dataset: "tank/srv", Recursive: true}, ""},
		{"zfs auto dataset", Spec{Kind: "zfs", Path: "/srv"}, ""},
		{"zfs snapshot as dataset", Spec{Kind: "zfs", Path: "/srv", Dataset: "tank/srv@x"}, "not a ZFS filesystem"},
		{"zfs leading slash", Spec{Kind: "zfs", Path: "/srv", Dataset: "/tank"}, "not a ZFS filesystem"},
		{"zfs with lv", Spec{Kind: "zfs", Path: "/srv", LV: "vg/lv"}, "lv is only for snapshot: lvm"},
		{"lvm", Spec{Kind: "lvm", Path: "/srv", LV: "vg0/srv", Size: "10%ORIGIN"}, ""},
		{"lvm dev path", Spec{Kind: "lvm", Path: "/srv", LV: "/dev/vg0/srv"}, ""},
		{"lvm size", Spec{Kind: "lvm", Path: "/srv", LV: "vg0/srv", Size: "2G"}, ""},
		{"lvm lower percent", Spec{Kind: "lvm", Path: "/srv", LV: "vg0/srv", Size: "50%free"}, ""},
		{"lvm no lv", Spec{Kind: "lvm", Path: "/srv"}, "needs lv"},
		{"lvm bad lv", Spec{Kind: "lvm", Path: "/srv", LV: "srv"}, "not <volume group>/<logical volume>"},
		{"lvm bad size", Spec{Kind: "lvm", Path: "/srv", LV: "vg0/srv", Size: "lots"}, "snapshot_size"},
		{"lvm with dataset", Spec{Kind: "lvm", Path: "/srv", LV: "vg0/srv", Dataset: "tank"}, "dataset is only for snapshot: zfs"},
		{"none with size", Spec{Path: "/srv", Size: "1G"}, "snapshot_size is only for snapshot: lvm"},
		{"btrfs", Spec{Kind: "btrfs", Path: "/srv", SnapshotDir: "/srv/.snaps"}, ""},
		{"btrfs relative dir", Spec{Kind: "btrfs", Path: "/srv", SnapshotDir: "snaps"}, "absolute"},
		{"recursive on lvm", Spec{Kind: "lvm", Path: "/srv", LV: "a/b", Recursive: true}, "recursive is only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.spec)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Check = %v, want an error containing %q", err, tt.err)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("Check error is not one line: %q", err)
			}
		})
	}
}

func TestSnapName(t *testing.T) {
	tests := []struct{ tag, want, err string }{
		{"20261122T030000Z", "backtory-20261122T030000Z", ""},
		{"root full/1", "backtory-root-full-1", ""},
		{"a:b@c", "backtory-a-b-c", ""},
		{"", "", "empty tag"},
		{strings.Repeat("x", 200), "", "too long"},
	}
	for _, tt := range tests {
		got, err := snapName(tt.tag)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("snapName(%q) error = %v, want %q", tt.tag, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("snapName(%q) = %q, %v; want %q", tt.tag, got, err, tt.want)
		}
	}
}

func TestSizeArgs(t *testing.T) {
	tests := []struct {
		size string
		want string // joined args, "" = error
	}{
		{"10%ORIGIN", "--extents 10%ORIGIN"},
		{"20%vg", "--extents 20%VG"},
		{"512M", "--size 512M"},
		{"1.5g", "--size 1.5g"},
		{"4096", "--size 4096"},
		{"%ORIGIN", ""},
		{"10%", ""},
		{"-1G", ""},
		{"1G; rm -rf /", ""},
	}
	for _, tt := range tests {
		args, err := sizeArgs(tt.size)
		got := strings.Join(args, " ")
		if tt.want == "" && err == nil || tt.want != "" && got != tt.want {
			t.Errorf("sizeArgs(%q) = %q, %v; want %q", tt.size, got, err, tt.want)
		}
	}
}

func TestNone(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(context.Background(), Spec{Path: dir + "/."}, "x")
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != dir || s.Kind() != KindNone || s.Name() != "" {
		t.Fatalf("none snapshot = %q %q %q", s.Path(), s.Kind(), s.Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := CleanupStale(ctx, Spec{Path: dir}); err != nil {
		t.Fatal(err)
	}
}

const sampleMountinfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw
25 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 0:45 / /srv rw,relatime shared:20 - zfs tank/srv rw,xattr,noacl
41 40 0:46 / /srv/www rw,relatime shared:21 - zfs tank/srv/www rw,xattr,noacl
42 22 253:3 /data /mnt/bind\040dir rw,relatime shared:22 - ext4 /dev/mapper/vg0-data rw
43 40 0:47 / /srv/.zfs/snapshot/s1 ro,relatime shared:23 master:5 - zfs tank/srv@s1 ro
`

func TestMountinfo(t *testing.T) {
	ms, err := parseMountinfo(strings.NewReader(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("got %d entries", len(ms))
	}
	if m := ms[4]; m.Point != "/mnt/bind dir" || m.Root != "/data" || m.Major != 253 || m.Minor != 3 || m.Source != "/dev/mapper/vg0-data" {
		t.Fatalf("bind entry = %+v", m)
	}
	if m := ms[5]; m.FSType != "zfs" || m.Source != "tank/srv@s1" {
		t.Fatalf("optional fields not skipped: %+v", m)
	}
	zfsOnly := func(m mountEntry) bool { return m.FSType == "zfs" && !strings.Contains(m.Source, "@") }
	tests := []struct {
		path, source, rel string
		match             func(mountEntry) bool
	}{
		{"/srv/www/index.html", "tank/srv/www", "index.html", zfsOnly},
		{"/srv/www", "tank/srv/www", ".", zfsOnly},
		{"/srv/wwwx", "tank/srv", "wwwx", zfsOnly},
		{"/srv/.zfs/snapshot/s1/a", "tank/srv", ".zfs/snapshot/s1/a", zfsOnly},
		{"/etc", "/dev/mapper/vg0-root", "etc", nil},
		{"/", "/dev/mapper/vg0-root", ".", nil},
		{"/mnt/bind dir/x", "/dev/mapper/vg0-data", "x", nil},
		{"/etc", "", "", zfsOnly},
	}
	for _, tt := range tests {
		m, rel, ok := mountOf(ms, tt.path, tt.match)
		if tt.source == "" {
			if ok {
				t.Errorf("mountOf(%q) = %+v, want none", tt.path, m)
			}
			continue
		}
		if !ok || m.Source != tt.source || rel != tt.rel {
			t.Errorf("mountOf(%q) = %q %q %v; want %q %q", tt.path, m.Source, rel, ok, tt.source, tt.rel)
		}
	}
	for _, bad := range []string{"", "1 2 3", "22 1 253x1 / / rw - ext4 /dev/x rw", "22 1 253:1 / / rw shared:1 ext4 /dev/x rw"} {
		if _, err := parseMountLine(bad); err == nil {
			t.Errorf("parseMountLine(%q) accepted", bad)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/back\134`: `/back\`,
		`/trail\04`: `/trail\04`,
		`/no\999`:   `/no\999`,
		`/plain`:    "/plain",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzMountinfo feeds arbitrary bytes to the mountinfo parser: it must not
// panic, and what it returns must be usable by mountOf.
func FuzzMountinfo(f *testing.F) {
	f.Add(sampleMountinfo)
	f.Add("1 2 3:4 / / rw - x y z\n")
	f.Add("1 2 3:4 \\0 \\ rw a b c - - - -")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range ms {
			mountOf(ms, m.Point, nil)
		}
	})
}
