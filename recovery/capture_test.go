package recovery

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestParseZpoolStatus(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         []string
	}{
		{"single", "  pool: tank\n state: ONLINE\nconfig:\n\n\tNAME         STATE     READ WRITE CKSUM\n\ttank         ONLINE       0     0     0\n\t  /dev/vdb   ONLINE       0     0     0\n\nerrors: No known data errors\n",
			[]string{"/dev/vdb"}},
		{"mirror+log", "  pool: tank\n state: ONLINE\nconfig:\n\n\tNAME           STATE     READ WRITE CKSUM\n\ttank           ONLINE       0     0     0\n\t  mirror-0     ONLINE       0     0     0\n\t    /dev/vda3  ONLINE       0     0     0\n\t    /dev/vdb3  ONLINE       0     0     0\n\tlogs\t\n\t  /dev/vdc1    ONLINE       0     0     0\n\tcache\n\t  /dev/vdc2    ONLINE       0     0     0\n\nerrors: No known data errors\n",
			[]string{"mirror", "/dev/vda3", "/dev/vdb3", "log", "/dev/vdc1", "cache", "/dev/vdc2"}},
		{"two raidz", "config:\n\n\tNAME        STATE\n\tp           ONLINE\n\t  raidz1-0  ONLINE\n\t    /dev/a  ONLINE\n\t    /dev/b  ONLINE\n\t  raidz1-1  ONLINE\n\t    /dev/c  ONLINE\n\t    /dev/d  ONLINE\n",
			[]string{"raidz1", "/dev/a", "/dev/b", "raidz1", "/dev/c", "/dev/d"}},
	} {
		if got := parseZpoolStatus(map[bool]string{true: "p", false: "tank"}[tc.name == "two raidz"], []byte(tc.status)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseLsblk(t *testing.T) {
	js := `{"blockdevices": [
	  {"name":"zram0","path":"/dev/zram0","type":"disk","size":1000,"log-sec":4096,"pttype":null,"model":null,"serial":null,"ro":false,"rm":false},
	  {"name":"sr0","path":"/dev/sr0","type":"rom","size":1000,"log-sec":2048,"pttype":null,"model":"QEMU","serial":null,"ro":false,"rm":true},
	  {"name":"vda","path":"/dev/vda","type":"disk","size":2147483648,"log-sec":512,"pttype":"gpt","model":null,"serial":"abc ","ro":false,"rm":false,
	   "children":[{"name":"vda1","path":"/dev/vda1","type":"part","size":1048576,"log-sec":512,"pttype":"gpt","ro":false,"rm":false}]},
	  {"name":"vdb","path":"/dev/vdb","type":"disk","size":2147483648,"log-sec":512,"pttype":null,"model":null,"serial":null,"ro":false,"rm":false},
	  {"name":"loop0","path":"/dev/loop0","type":"loop","size":4096,"log-sec":512,"pttype":null,"ro":false,"rm":false}
	]}`
	got, err := parseLsblk([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{{Path: "/dev/vda", Size: 2147483648, SectorSize: 512, Table: "gpt", Serial: "abc"},
		{Path: "/dev/vdb", Size: 2147483648, SectorSize: 512}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := parseLsblk([]byte("not json")); err == nil {
		t.Error("no error for bad JSON")
	}
}

func TestParseBlkid(t *testing.T) {
	blkid := "DEVNAME=/dev/vda1\nUUID=A638-033C\nBLOCK_SIZE=512\nTYPE=vfat\nPARTUUID=1\n\n" +
		"DEVNAME=/dev/vda2\nUUID=ICgw9D\nTYPE=LVM2_member\n\n" +
		"DEVNAME=/dev/mapper/vg0-root\nUUID=0b1c\nLABEL=root\nTYPE=ext4\n\n" +
		"DEVNAME=/dev/mapper/vg--x-my--data\nUUID=99\nTYPE=xfs\n\n" +
		"DEVNAME=/dev/vda3\nUUID=5555\nTYPE=swap\n\n" +
		"DEVNAME=/dev/vda4\nUUID=7\nTYPE=ext4\n"
	mounts := "/dev/mapper/vg0-root / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n" +
		"/dev/vda1 /boot/efi vfat rw,fmask=0077 0 0\n/dev/vg-x/my-data /srv/my\\040data xfs rw 0 0\n"
	fss, sws := parseBlkid([]byte(blkid), []byte(mounts))
	want := []FS{
		{Device: "/dev/mapper/vg0-root", Mountpoint: "/", Type: "ext4", UUID: "0b1c", Label: "root", Options: "rw,relatime"},
		{Device: "/dev/vda1", Mountpoint: "/boot/efi", Type: "vfat", UUID: "A638-033C", Options: "rw,fmask=0077"},
		{Device: "/dev/mapper/vg--x-my--data", Mountpoint: "/srv/my data", Type: "xfs", UUID: "99", Options: "rw"},
		{Device: "/dev/vda4", Type: "ext4", UUID: "7"},
	}
	if !reflect.DeepEqual(fss, want) {
		t.Errorf("filesystems:\n got %+v\nwant %+v", fss, want)
	}
	if !reflect.DeepEqual(sws, []Swap{{Device: "/dev/vda3", UUID: "5555"}}) {
		t.Errorf("swaps: %+v", sws)
	}
}

func TestParseMdadmExport(t *testing.T) {
	out := "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_METADATA=1.2\nMD_UUID=3f1e2d4c:11111111:22222222:33333333\nMD_NAME=host:0\n" +
		"MD_DEVICE_dev_vdb2_ROLE=1\nMD_DEVICE_dev_vdb2_DEV=/dev/vdb2\nMD_DEVICE_dev_vda2_ROLE=0\nMD_DEVICE_dev_vda2_DEV=/dev/vda2\n"
	got := parseMdadmExport("/dev/md0", []byte(out))
	want := MD{Path: "/dev/md0", Level: "raid1", Metadata: "1.2", UUID: "3f1e2d4c:11111111:22222222:33333333", Name: "host:0",
		Devices: []string{"/dev/vda2", "/dev/vdb2"}, Total: 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestParseLuksDump(t *testing.T) {
	luks1 := "LUKS header information for /dev/vda3\n\nVersion:       \t1\nCipher name:   \taes\nCipher mode:   \txts-plain64\nHash spec:     \tsha256\nPayload offset:\t4096\nMK bits:       \t512\nUUID:          \tbeaf\n"
	luks2 := "LUKS header information\nVersion:       \t2\nEpoch:         \t3\nUUID:          \t0bad\nLabel:         \t(no label)\n\nData segments:\n  0: crypt\n\toffset: 16777216 [bytes]\n\tcipher: aes-xts-plain64\n\tsector: 512 [bytes]\n\nKeyslots:\n  0: luks2\n\tKey:        512 bits\n\tCipher:     aes-xts-plain64\n\tCipher key: 512 bits\n\tPBKDF:      argon2id\n\tAF hash:    sha256\nDigests:\n  0: pbkdf2\n\tHash:       sha256\n"
	for _, tc := range []struct {
		in   string
		want LUKS
	}{
		{luks1, LUKS{Type: "luks1", UUID: "beaf", Cipher: "aes-xts-plain64", KeyBits: 512, Hash: "sha256"}},
		{luks2, LUKS{Type: "luks2", UUID: "0bad", Cipher: "aes-xts-plain64", KeyBits: 512, Hash: "sha256"}},
	} {
		if got := parseLuksDump([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("got %+v, want %+v", got, tc.want)
		}
	}
}

func TestSplitRowsAndDumpe2fs(t *testing.T) {
	rows := splitRows([]byte("  /dev/vda2|vg0|ICgw9D|1073741824\n\n  /dev/vdb|||2000\n"))
	if len(rows) != 2 || rows[0][1] != "vg0" || rows[1][1] != "" {
		t.Errorf("rows %q", rows)
	}
	b, i := parseDumpe2fs([]byte("Filesystem volume name:   <none>\nBlock size:               4096\nInode size:\t          256\n"))
	if b != 4096 || i != 256 {
		t.Errorf("dumpe2fs: %d %d", b, i)
	}
	if got := dmAlias("/dev/mapper/vg--x-my--data"); got != "/dev/vg-x/my-data" {
		t.Errorf("dmAlias: %q", got)
	}
}

// TestCaptureHere captures this machine's layout with whatever tools it
// has: it must not fail, and what it records must encode.
func TestCaptureHere(t *testing.T) {
	l, err := Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if l.Boot.Mode != "bios" && l.Boot.Mode != "uefi" {
		t.Errorf("boot mode %q", l.Boot.Mode)
	}
	b, err := l.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Host != l.Host || len(back.Disks) != len(l.Disks) {
		t.Errorf("bundle round trip lost data")
	}
	t.Logf("disks %d, filesystems %d, missing %s, errors %d", len(l.Disks), len(l.FS), strings.Join(l.Missing, ","), len(l.Errors))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Capture(ctx); err == nil {
		t.Error("a cancelled capture succeeded")
	}
}

func TestOwnDevice(t *testing.T) {
	c := &capturer{l: &Layout{
		Disks: []Disk{{Path: "/dev/vda"}},
		LVs:   []LV{{VG: "vg-0", Name: "root"}, {VG: "vg-0", Name: "backtory-x1", Origin: "root"}},
	}}
	for dev, want := range map[string]bool{
		"/dev/vda1": true, "/dev/md0": true, "/dev/mapper/vg--0-root": true,
		"/dev/mapper/vg--0-backtory--x1": false, "/dev/loop0": false, "/dev/sdb1": false,
	} {
		if got := c.ownDevice(dev); got != want {
			t.Errorf("ownDevice(%s) = %v, want %v", dev, got, want)
		}
	}
}
