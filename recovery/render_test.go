package recovery

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
)

func sampleParams() ScriptParams {
	return ScriptParams{
		Host: "web1", RemoteURL: "ftp://backup.example.net/backups", RemoteUser: "web1",
		Sources: []Source{{Name: "root", Path: "/"}, {Name: "data", Path: "/srv/my data"}},
		Sets: []SetRef{{Source: "root", ID: "full-20261122T030000Z"}, {Source: "root", ID: "diff-20261123T030000Z", Base: "full-20261122T030000Z"},
			{Source: "data", ID: "full-20261122T030000Z"}},
		Sealed: true, SignerFingerprint: strings.Repeat("AB", 20), SignerPublicKey: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n",
		Layout: sampleLayout(), LayoutSet: "diff-20261123T030000Z", Tool: "backtory test", Generated: time.Now(),
	}
}

func renderTo(t *testing.T, p ScriptParams) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, p); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "recover.sh")
	if err := os.WriteFile(f, b.Bytes(), 0o700); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRenderShellcheck(t *testing.T) {
	sc := testenv.NeedTool(t, "shellcheck")
	f := renderTo(t, sampleParams())
	out, err := exec.Command(sc, "-s", "sh", "-S", "style", f).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck:\n%s", out)
	}
	for _, sh := range [][]string{{"dash", "-n"}, {"busybox", "sh", "-n"}, {"bash", "--posix", "-n"}} {
		p := testenv.NeedTool(t, sh[0])
		if out, err := exec.Command(p, append(sh[1:], f)...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", sh, err, out)
		}
	}
}

func TestRenderRefusesSecrets(t *testing.T) {
	for name, mut := range map[string]func(*ScriptParams){
		"password in url": func(p *ScriptParams) { p.RemoteURL = "ftp://u:secret@host/x" },
		"secret key":      func(p *ScriptParams) { p.SignerPublicKey = "-----BEGIN PGP PRIVATE KEY BLOCK-----" },
		"heredoc end":     func(p *ScriptParams) { p.Layout.Files["fstab"] = "x\n" + heredocEnd + "\n" },
		"bad set id":      func(p *ScriptParams) { p.Sets[0].ID = "full-x; rm -rf /" },
		"bad file name":   func(p *ScriptParams) { p.Layout.Files["../x"] = "" },
		"no layout":       func(p *ScriptParams) { p.Layout = nil },
	} {
		p := sampleParams()
		mut(&p)
		if err := Render(&bytes.Buffer{}, p); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

func TestPlanUnderShells(t *testing.T) {
	p := sampleParams()
	p.Layout.Files["sfdisk-vda.dump"] = "label: gpt\nlabel-id: 1111\ndevice: /dev/vda\nunit: sectors\nfirst-lba: 34\nlast-lba: 4194270\n\n/dev/vda1 : start=2048, size=1024000, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=AAAA\n/dev/vda2 : start=1026048, size=3000000, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, uuid=BBBB\n"
	f := renderTo(t, p)
	for _, sh := range [][]string{{"dash"}, {"busybox", "sh"}} {
		bin := testenv.NeedTool(t, sh[0])
		cmd := exec.Command(bin, append(sh[1:], f, "plan", "--at", "2026-11-22 12:00", "--map", "vda=nvme0n1")...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s plan: %v\n%s", sh[0], err, out)
		}
		for _, want := range []string{
			"source root (/): full-20261122T030000Z -",
			"source data (/srv/my data): full-20261122T030000Z -",
			"/dev/nvme0n1p1 : start=2048",
			"--uuid ICgw9D-aaaa --restorefile",
			"/dev/nvme0n1p2",
			"-U 0b1c -L 'my root%' -b 4096 -I 256 /dev/mapper/vg0-root",
			"create -f -R /mnt/backtory-target -o ashift=12 tank mirror /dev/nvme0n1p3 /dev/vdb3",
			"zfs create -o 'comment:x=two words' tank/data",
			"restore set full-20261122T030000Z of source data into /mnt/backtory-target/srv/my data",
			"mkfs.fat -i A638033C -n - /dev/nvme0n1p1",
			"  ZFS pool tank: mirror /dev/nvme0n1p3 /dev/vdb3\n",
			"  ZFS filesystem tank/data\n",
			"  swap on /dev/nvme0n1p4: not here yet\n",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s plan: no %q in\n%s", sh[0], want, out)
			}
		}
		if strings.Contains(string(out), "last-lba") || strings.Contains(string(out), "device: ") {
			t.Errorf("%s plan: the mapped table still names the old disk's size or device", sh[0])
		}
	}
}

func TestPlanMapAndSkip(t *testing.T) {
	p := sampleParams()
	p.Layout.Disks = append(p.Layout.Disks, Disk{Path: "/dev/vdb", Size: 4 << 30, SectorSize: 512})
	p.Layout.Disks = append(p.Layout.Disks, Disk{Path: "/dev/vdc", Size: 8 << 30, SectorSize: 512})
	p.Layout.FS = append(p.Layout.FS, FS{Device: "/dev/vdc", Mountpoint: "/backup", Type: "ext4", UUID: "cccc"})
	f := renderTo(t, p)
	sh := testenv.NeedTool(t, "dash")
	out, err := exec.Command(sh, f, "plan", "--map", "vda=vdb", "--skip", "/dev/vdc").CombinedOutput()
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	s := string(out)
	if n := strings.Count(s, "  /dev/vdb: "); n != 1 {
		t.Errorf("the disk mapped onto is listed %d times:\n%s", n, s)
	}
	if strings.Contains(s, "vdc") || strings.Contains(s, "cccc") {
		t.Errorf("--skip vdc still touches it:\n%s", s)
	}
	if !strings.Contains(s, "wipefs -a -f /dev/vdb") {
		t.Errorf("no wipe of the new disk:\n%s", s)
	}
	out, err = exec.Command(sh, f, "files", "--to", t.TempDir(), "--at", "2026-11-21", "--work", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no set of source root at or before 2026-11-21") {
		t.Errorf("files before the first set: %v\n%s", err, out)
	}
	out, err = exec.Command(sh, f, "files", "--to", t.TempDir(), "/etc", "--stock").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "options go before the PATHs") {
		t.Errorf("option after a path: %v\n%s", err, out)
	}
}

// TestPlanDecodesEveryEscape: a source path with a newline, a tab, a DEL
// and a literal "%41" reaches recover.sh escaped and comes out whole.
func TestPlanDecodesEveryEscape(t *testing.T) {
	p := sampleParams()
	path := "/srv/new\nline\ttab\x7fdel %41 100% é"
	p.Sources[1].Path = path
	f := renderTo(t, p)
	for _, sh := range [][]string{{"dash"}, {"busybox", "sh"}} {
		bin := testenv.NeedTool(t, sh[0])
		cmd := exec.Command(bin, append(sh[1:], f, "plan")...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s plan: %v\n%s", sh[0], err, out)
		}
		if want := "source data (" + path + "): "; !strings.Contains(string(out), want) {
			t.Errorf("%s plan: no %q in\n%s", sh[0], want, out)
		}
	}
}

// TestPlanDegradedArray: a RAID1 member disk that the new machine lacks
// (--skip) leaves the array, which is created degraded with "missing", and
// the list of disks GRUB goes on; what sits on the array stays.
func TestPlanDegradedArray(t *testing.T) {
	p := sampleParams()
	l := p.Layout
	l.Boot.Disks = []string{"/dev/vda", "/dev/vdb"}
	l.Disks = append(l.Disks, Disk{Path: "/dev/vdb", Size: 2 << 30, SectorSize: 512, Table: "gpt", Dump: "sfdisk-vdb.dump"})
	l.Files["sfdisk-vdb.dump"] = "label: gpt\n"
	l.MD = []MD{{Path: "/dev/md0", Level: "raid1", Metadata: "1.2", UUID: "1c5e4a3b:00000000:00000000:00000001", Name: "h:0",
		Devices: []string{"/dev/vda2", "/dev/vdb2"}, Total: 2}}
	l.PVs = []PV{{Device: "/dev/md0", VG: "vg0", UUID: "ICgw9D-aaaa", Size: 1 << 30}}
	l.Pools, l.Datasets = nil, nil
	f := renderTo(t, p)
	for _, sh := range [][]string{{"dash"}, {"busybox", "sh"}} {
		bin := testenv.NeedTool(t, sh[0])
		for _, c := range []struct {
			args        []string
			want, avoid []string
		}{
			{[]string{"plan"},
				[]string{"--raid-devices=2 --metadata=1.2 --uuid=1c5e4a3b:00000000:00000000:00000001 --name=h:0 /dev/vda2 /dev/vdb2\n",
					"--recheck /dev/vda\n", "--recheck /dev/vdb\n", "--restorefile"},
				[]string{"DEGRADED", " missing\n"}},
			{[]string{"plan", "--skip", "vdb"},
				[]string{"/dev/vda2 missing\n", "/dev/md0 is created DEGRADED: 1 of 2 members", "--recheck /dev/vda\n",
					"pvcreate -ff -y --uuid ICgw9D-aaaa --restorefile",
					"  md array /dev/md0: raid1, UUID 1c5e4a3b:00000000:00000000:00000001, 1 of 2 members DEGRADED (/dev/vda2)\n",
					"  LVM PV of VG vg0 on /dev/md0: 1.0 GiB then, not here yet\n", "  LVM LV vg0/root (linear): 512.0 MiB\n",
					"  ext4 filesystem on /dev/mapper/vg0-root, label my root%, /: not here yet\n"},
				[]string{"/dev/vdb"}},
			{[]string{"plan", "--skip", "vda", "--map", "vdb=vda"},
				[]string{"/dev/vda2 missing\n", "DEGRADED: 1 of 2", "--recheck /dev/vda\n"},
				[]string{"/dev/vdb"}},
		} {
			cmd := exec.Command(bin, append(append(sh[1:], f), c.args...)...)
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", sh[0], c.args, err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s %v: no %q in\n%s", sh[0], c.args, w, out)
				}
			}
			for _, a := range c.avoid {
				if strings.Contains(string(out), a) {
					t.Errorf("%s %v: %q in\n%s", sh[0], c.args, a, out)
				}
			}
		}
	}
}
