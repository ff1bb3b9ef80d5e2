package recovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/backtory/backtory/internal/childenv"
)

// Capture records the layout of the running machine. It runs the capture
// tools that are installed (lsblk, blkid, sfdisk, mdadm, cryptsetup, lvm,
// zpool, zfs, dumpe2fs); a missing tool is recorded in Layout.Missing and a
// failing command in Layout.Errors, neither is fatal. Only a cancelled ctx
// fails the capture.
func Capture(ctx context.Context) (*Layout, error) {
	host, _ := os.Hostname()
	c := &capturer{ctx: ctx, l: &Layout{Version: LayoutVersion, Host: host, Captured: time.Now().UTC(),
		Files: map[string]string{}}}
	c.disks()
	c.md()
	c.lvm()
	c.zfs()
	c.filesystems() // after md/lvm: it needs their device names
	c.luks()
	c.boot()
	for _, f := range []string{"/etc/fstab", "/etc/crypttab", "/etc/mdadm/mdadm.conf", "/etc/mdadm.conf", "/etc/hostid",
		"/etc/default/grub", "/etc/lvm/devices/system.devices"} {
		if b, err := os.ReadFile(f); err == nil && len(b) < 1<<20 {
			c.l.Files[strings.ReplaceAll(strings.TrimPrefix(f, "/etc/"), "/", "_")] = string(b)
		}
	}
	sort.Strings(c.l.Missing)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("capture layout: %w", err)
	}
	return c.l, nil
}

// capturer runs the capture commands and fills l.
type capturer struct {
	ctx     context.Context
	l       *Layout
	missing map[string]bool
}

// sbinDirs are searched after PATH: cron's PATH often lacks the sbin
// directories where these tools live.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// tool returns the path of a command, or "" after recording it as missing.
func (c *capturer) tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if c.missing == nil {
		c.missing = map[string]bool{}
	}
	if !c.missing[name] {
		c.missing[name] = true
		c.l.Missing = append(c.l.Missing, name)
	}
	return ""
}

// run runs a capture command and returns its stdout; a failure is recorded
// in Errors and returns ok=false. A missing tool returns ok=false silently.
func (c *capturer) run(name string, args ...string) ([]byte, bool) {
	p := c.tool(name)
	if p == "" || c.ctx.Err() != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = childenv.Environ("LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		c.l.Errors = append(c.l.Errors, fmt.Sprintf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg))
		return nil, false
	}
	return out, true
}

func (c *capturer) disks() {
	out, ok := c.run("lsblk", "-J", "-b", "-o", "NAME,PATH,TYPE,SIZE,LOG-SEC,PTTYPE,MODEL,SERIAL,RO,RM")
	if !ok {
		return
	}
	c.l.Files["lsblk.json"] = string(out)
	disks, err := parseLsblk(out)
	if err != nil {
		c.l.Errors = append(c.l.Errors, "lsblk: "+err.Error())
		return
	}
	for _, d := range disks {
		if d.Table != "" {
			if dump, ok := c.run("sfdisk", "--dump", d.Path); ok {
				d.Dump = "sfdisk-" + filepath.Base(d.Path) + ".dump"
				c.l.Files[d.Dump] = string(dump)
				if t := dumpLabel(dump); t != "" {
					d.Table = t // lsblk knows it only from udev
				}
			}
		}
		c.l.Disks = append(c.l.Disks, d)
	}
}

// dumpLabel returns the table type ("gpt", "dos") of an sfdisk dump.
func dumpLabel(dump []byte) string {
	for _, line := range strings.Split(string(dump), "\n") {
		if v, ok := strings.CutPrefix(line, "label: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

type lsblkDev struct {
	Name     string     `json:"name"`
	Path     string     `json:"path"`
	Type     string     `json:"type"`
	Size     int64      `json:"size"`
	LogSec   int        `json:"log-sec"`
	PTType   string     `json:"pttype"`
	Model    string     `json:"model"`
	Serial   string     `json:"serial"`
	RO       bool       `json:"ro"`
	RM       bool       `json:"rm"`
	Children []lsblkDev `json:"children"`
}

// parseLsblk returns the disks of `lsblk -J -b -o NAME,PATH,TYPE,SIZE,
// LOG-SEC,PTTYPE,MODEL,SERIAL,RO,RM`: writable, non-removable, non-empty
// disks (no loop, ram, zram or optical devices).
func parseLsblk(b []byte) ([]Disk, error) {
	var doc struct {
		Devs []lsblkDev `json:"blockdevices"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []Disk
	for _, d := range doc.Devs {
		if d.Type != "disk" || d.RO || d.RM || d.Size == 0 || strings.HasPrefix(d.Name, "zram") {
			continue
		}
		path := d.Path
		if path == "" {
			path = "/dev/" + d.Name
		}
		table := d.PTType
		if table == "" && len(d.Children) > 0 {
			table = "unknown"
		}
		out = append(out, Disk{Path: path, Size: d.Size, SectorSize: max(d.LogSec, 512), Table: table,
			Model: strings.TrimSpace(d.Model), Serial: strings.TrimSpace(d.Serial)})
	}
	return out, nil
}

func (c *capturer) md() {
	b, err := os.ReadFile("/proc/mdstat")
	if err != nil {
		return
	}
	c.l.Files["mdstat"] = string(b)
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[0], "md") && f[1] == ":" {
			names = append(names, "/dev/"+f[0])
		}
	}
	if len(names) == 0 {
		return
	}
	if scan, ok := c.run("mdadm", "--detail", "--scan", "--verbose"); ok {
		c.l.Files["mdadm-scan.conf"] = string(scan)
	}
	for _, n := range names {
		if out, ok := c.run("mdadm", "--detail", "--export", n); ok {
			c.l.MD = append(c.l.MD, parseMdadmExport(n, out))
		}
	}
}

// parseMdadmExport reads `mdadm --detail --export DEV`.
func parseMdadmExport(dev string, b []byte) MD {
	kv := parseExport(b)
	m := MD{Path: dev, Level: kv["MD_LEVEL"], Metadata: kv["MD_METADATA"], UUID: kv["MD_UUID"], Name: kv["MD_NAME"]}
	m.Total, _ = strconv.Atoi(kv["MD_DEVICES"])
	if ch := kv["MD_CHUNK_SIZE"]; ch != "" {
		m.Chunk = ch
	}
	type member struct {
		role int
		dev  string
	}
	var ms []member
	for k, v := range kv {
		if strings.HasPrefix(k, "MD_DEVICE_") && strings.HasSuffix(k, "_DEV") {
			role, err := strconv.Atoi(kv[strings.TrimSuffix(k, "_DEV")+"_ROLE"])
			if err != nil {
				role = 1 << 20 // spares last
			}
			ms = append(ms, member{role, v})
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		return ms[i].role < ms[j].role || ms[i].role == ms[j].role && ms[i].dev < ms[j].dev
	})
	for _, x := range ms {
		m.Devices = append(m.Devices, x.dev)
	}
	return m
}

func (c *capturer) lvm() {
	if c.tool("lvm") == "" {
		return
	}
	common := []string{"--noheadings", "--separator", "|", "--units", "b", "--nosuffix"}
	pvs, ok := c.run("lvm", append([]string{"pvs"}, append(common, "-o", "pv_name,vg_name,pv_uuid,pv_size")...)...)
	if !ok {
		return
	}
	for _, r := range splitRows(pvs) {
		if len(r) == 4 && r[1] != "" {
			size, _ := strconv.ParseInt(r[3], 10, 64)
			c.l.PVs = append(c.l.PVs, PV{Device: r[0], VG: r[1], UUID: r[2], Size: size})
		}
	}
	vgs, _ := c.run("lvm", append([]string{"vgs"}, append(common, "-o", "vg_name,vg_uuid,vg_extent_size")...)...)
	for _, r := range splitRows(vgs) {
		if len(r) != 3 {
			continue
		}
		ext, _ := strconv.ParseInt(r[2], 10, 64)
		vg := VG{Name: r[0], UUID: r[1], ExtentSize: ext, Cfg: "lvm-" + r[0] + ".cfg"}
		dir, err := os.MkdirTemp("", "backtory-vgcfg-")
		if err != nil {
			continue
		}
		f := filepath.Join(dir, "vg.cfg")
		if _, ok := c.run("lvm", "vgcfgbackup", "-f", f, r[0]); ok {
			if b, err := os.ReadFile(f); err == nil {
				c.l.Files[vg.Cfg] = string(b)
			}
		}
		os.RemoveAll(dir)
		c.l.VGs = append(c.l.VGs, vg)
	}
	lvs, _ := c.run("lvm", append([]string{"lvs", "-a"}, append(common, "-o", "vg_name,lv_name,lv_uuid,lv_size,segtype,origin,pool_lv")...)...)
	for _, r := range splitRows(lvs) {
		if len(r) != 7 || strings.HasPrefix(r[1], "[") {
			continue // hidden LVs ([lvol0_pmspare], [pool_tdata]) come back with their pool
		}
		size, _ := strconv.ParseInt(r[3], 10, 64)
		c.l.LVs = append(c.l.LVs, LV{VG: r[0], Name: r[1], UUID: r[2], Size: size, Segtype: r[4], Origin: r[5], Pool: r[6]})
	}
}

// splitRows splits lvm's "--noheadings --separator |" output.
func splitRows(b []byte) [][]string {
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		out = append(out, f)
	}
	return out
}

func (c *capturer) zfs() {
	if c.tool("zpool") == "" {
		return
	}
	names, ok := c.run("zpool", "list", "-H", "-o", "name")
	if !ok {
		return
	}
	for _, pool := range strings.Fields(string(names)) {
		p := Pool{Name: pool}
		if st, ok := c.run("zpool", "status", "-P", "-L", pool); ok {
			c.l.Files["zpool-"+pool+".status"] = string(st)
			p.Vdevs = parseZpoolStatus(pool, st)
		}
		if props, ok := c.run("zpool", "get", "-H", "-p", "-o", "name,property,value,source", "all", pool); ok {
			c.l.Files["zpool-"+pool+".props"] = string(props)
			for _, pr := range parsePropRows(props) {
				if keepPoolProp(pr.p) {
					p.Props = append(p.Props, pr.p)
				}
			}
		}
		c.l.Pools = append(c.l.Pools, p)
		list, ok := c.run("zfs", "list", "-H", "-p", "-r", "-t", "filesystem,volume", "-o", "name,type,volsize", pool)
		if !ok {
			continue
		}
		props, _ := c.run("zfs", "get", "-H", "-p", "-r", "-s", "local,received", "-o", "name,property,value,source", "all", pool)
		c.l.Files["zfs-"+pool+".props"] = string(props)
		byName := map[string][]Prop{}
		for _, pr := range parsePropRows(props) {
			byName[pr.name] = append(byName[pr.name], pr.p)
		}
		for _, r := range strings.Split(strings.TrimSpace(string(list)), "\n") {
			f := strings.Split(r, "\t")
			if len(f) != 3 {
				continue
			}
			vs, _ := strconv.ParseInt(f[2], 10, 64)
			c.l.Datasets = append(c.l.Datasets, Dataset{Name: f[0], Type: f[1], Volsize: vs, Props: byName[f[0]]})
		}
	}
}

type namedProp struct {
	name string
	p    Prop
}

// parsePropRows reads `zpool get` / `zfs get -H -o name,property,value,source`.
func parsePropRows(b []byte) []namedProp {
	var out []namedProp
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		out = append(out, namedProp{f[0], Prop{Name: f[1], Value: f[2], Source: f[3]}})
	}
	return out
}

// keepPoolProp tells which pool properties recovery passes to zpool create.
func keepPoolProp(p Prop) bool {
	switch p.Name {
	case "ashift", "autotrim", "autoexpand", "compatibility", "bootfs", "comment", "failmode", "autoreplace", "guid":
		return true
	}
	return strings.HasPrefix(p.Name, "feature@") || p.Source == "local"
}

// parseZpoolStatus turns the config section of `zpool status -P -L POOL`
// into zpool create's vdev arguments.
func parseZpoolStatus(pool string, b []byte) []string {
	var out []string
	in := false
	poolIndent := -1
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "NAME") && strings.Contains(t, "STATE") {
			in = true
			continue
		}
		if !in || t == "" {
			if in && len(out) > 0 && t == "" {
				in = false
			}
			continue
		}
		if strings.HasPrefix(t, "errors:") {
			break
		}
		name := strings.Fields(t)[0]
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		switch {
		case name == pool && poolIndent < 0:
			poolIndent = indent
		case name == "logs" || name == "cache" || name == "spares" || name == "special" || name == "dedup":
			out = append(out, strings.TrimSuffix(name, "s")) // logs -> log, spares -> spare
		case strings.HasPrefix(name, "/"):
			out = append(out, name)
		default:
			// mirror-0, raidz1-0, raidz2-1, draid...: the vdev type
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				out = append(out, name[:i])
			}
		}
	}
	return out
}

func (c *capturer) filesystems() {
	out, ok := c.run("blkid", "-o", "export")
	if !ok {
		return
	}
	c.l.Files["blkid.txt"] = string(out)
	mounts, _ := os.ReadFile("/proc/self/mounts")
	fss, sws := parseBlkid(out, mounts)
	fss = slices.DeleteFunc(fss, func(f FS) bool {
		return !c.ownDevice(f.Device) || strings.HasPrefix(f.Mountpoint, "/run/backtory/")
	})
	sws = slices.DeleteFunc(sws, func(s Swap) bool { return !c.ownDevice(s.Device) })
	for i := range fss {
		f := &fss[i]
		if strings.HasPrefix(f.Type, "ext") {
			if h, ok := c.run("dumpe2fs", "-h", f.Device); ok {
				f.BlockSize, f.InodeSize = parseDumpe2fs(h)
			}
		}
	}
	c.l.FS, c.l.Swaps = fss, sws
}

// ownDevice tells whether dev is on the recorded disks: a disk or its
// partition, an md array, or a device-mapper device (LVM, LUKS). Loop
// devices, USB sticks and optical media are not part of the machine.
func (c *capturer) ownDevice(dev string) bool {
	for _, lv := range c.l.LVs {
		if lv.Origin != "" && dev == dmName(lv.VG, lv.Name) {
			return false // a snapshot (backtory's own, say) shares its origin's UUID
		}
	}
	if strings.HasPrefix(dev, "/dev/md") || strings.HasPrefix(dev, "/dev/mapper/") || strings.HasPrefix(dev, "/dev/dm-") {
		return true
	}
	for _, d := range c.l.Disks {
		if strings.HasPrefix(dev, d.Path) {
			return true
		}
	}
	return false
}

// parseBlkid reads `blkid -o export` and joins it with /proc/self/mounts
// for mountpoints and options. Devices that are containers (LVM PVs, md
// members, LUKS, ZFS members) are not filesystems and are left out.
func parseBlkid(b, mounts []byte) ([]FS, []Swap) {
	mp := map[string][2]string{}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasPrefix(f[0], "/dev/") {
			if _, seen := mp[f[0]]; !seen {
				mp[f[0]] = [2]string{unoctal(f[1]), f[3]}
			}
		}
	}
	var fss []FS
	var sws []Swap
	for _, block := range strings.Split(string(b), "\n\n") {
		kv := parseExport([]byte(block))
		dev, typ := kv["DEVNAME"], kv["TYPE"]
		if dev == "" || typ == "" {
			continue
		}
		switch typ {
		case "LVM2_member", "linux_raid_member", "crypto_LUKS", "zfs_member", "iso9660", "squashfs":
			continue
		case "swap":
			sws = append(sws, Swap{Device: dev, UUID: kv["UUID"], Label: kv["LABEL"]})
			continue
		}
		m := mp[dev]
		if m == ([2]string{}) {
			m = mp[dmAlias(dev)]
		}
		fss = append(fss, FS{Device: dev, Mountpoint: m[0], Type: typ, UUID: kv["UUID"], Label: kv["LABEL"], Options: m[1]})
	}
	sort.SliceStable(fss, func(i, j int) bool { return depth(fss[i].Mountpoint) < depth(fss[j].Mountpoint) })
	return fss, sws
}

// dmName is the /dev/mapper name of an LV: dashes in the names doubled.
func dmName(vg, lv string) string {
	return "/dev/mapper/" + strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

// dmAlias maps /dev/mapper/vg-lv to /dev/vg/lv and back, as mounts may
// name either.
func dmAlias(dev string) string {
	if name, ok := strings.CutPrefix(dev, "/dev/mapper/"); ok {
		vg, lv, found := strings.Cut(strings.ReplaceAll(name, "--", "\x00"), "-")
		if found {
			return "/dev/" + strings.ReplaceAll(vg, "\x00", "-") + "/" + strings.ReplaceAll(lv, "\x00", "-")
		}
	}
	return ""
}

// depth orders mountpoints parents first; unmounted filesystems last.
func depth(mp string) int {
	if mp == "" {
		return 1 << 20
	}
	if mp == "/" {
		return 0
	}
	return strings.Count(mp, "/")
}

// unoctal decodes the \040-style escapes of /proc/self/mounts.
func unoctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseExport reads KEY=VALUE lines (blkid -o export, mdadm --export).
func parseExport(b []byte) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// parseDumpe2fs reads the block and inode size from `dumpe2fs -h`.
func parseDumpe2fs(b []byte) (block, inode int) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Block size":
			block = n
		case "Inode size":
			inode = n
		}
	}
	return block, inode
}

func (c *capturer) luks() {
	var devs []string
	for _, block := range strings.Split(c.l.Files["blkid.txt"], "\n\n") {
		kv := parseExport([]byte(block))
		if kv["TYPE"] == "crypto_LUKS" {
			devs = append(devs, kv["DEVNAME"])
		}
	}
	if len(devs) == 0 {
		return
	}
	names := mapperNames(c.l.Files["crypttab"])
	for _, d := range devs {
		out, ok := c.run("cryptsetup", "luksDump", d)
		if !ok {
			continue
		}
		l := parseLuksDump(out)
		l.Device = d
		l.Name = names[l.UUID]
		c.l.LUKS = append(c.l.LUKS, l)
	}
}

// mapperNames maps LUKS UUIDs to their names in crypttab ("name UUID=u ...").
func mapperNames(crypttab string) map[string]string {
	out := map[string]string{}
	if b, err := os.ReadFile("/etc/crypttab"); err == nil {
		crypttab = string(b)
	}
	for _, line := range strings.Split(crypttab, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			if u, ok := strings.CutPrefix(f[1], "UUID="); ok {
				out[u] = f[0]
			}
		}
	}
	return out
}

// parseLuksDump reads the non-secret header parameters of `cryptsetup
// luksDump` (LUKS1 and LUKS2).
func parseLuksDump(b []byte) LUKS {
	var l LUKS
	mode := ""
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "Version":
			l.Type = "luks" + v
		case "UUID":
			l.UUID = v
		case "Cipher name":
			l.Cipher = v + l.Cipher
		case "Cipher mode":
			mode = v
		case "cipher":
			if l.Cipher == "" {
				l.Cipher = v
			}
		case "MK bits":
			l.KeyBits, _ = strconv.Atoi(v)
		case "Cipher key":
			if l.KeyBits == 0 {
				l.KeyBits, _ = strconv.Atoi(strings.TrimSuffix(v, " bits"))
			}
		case "Hash spec", "Hash":
			if l.Hash == "" {
				l.Hash = v
			}
		}
	}
	if mode != "" {
		l.Cipher += "-" + mode
	}
	return l
}

func (c *capturer) boot() {
	b := &c.l.Boot
	b.Mode = "bios"
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		b.Mode = "uefi"
		if out, ok := c.run("efibootmgr", "-v"); ok {
			c.l.Files["efibootmgr.txt"] = string(out)
		}
	}
	if cmdline, err := os.ReadFile("/proc/cmdline"); err == nil {
		b.Kernel = strings.TrimSpace(string(cmdline))
	}
	b.Loader = "unknown"
	for _, p := range []string{"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"} {
		if _, err := os.Stat(p); err == nil {
			b.Loader = "grub"
		}
	}
	if b.Loader == "unknown" {
		if _, err := os.Stat("/boot/loader/loader.conf"); err == nil {
			b.Loader = "systemd-boot"
		}
	}
	for _, f := range c.l.FS {
		if f.Type == "vfat" && (f.Mountpoint == "/boot/efi" || f.Mountpoint == "/efi" || f.Mountpoint == "/boot") && b.ESP == "" {
			b.ESP = f.Mountpoint
		}
	}
	for _, d := range c.l.Disks {
		if hasBootCode(d.Path) {
			b.Disks = append(b.Disks, d.Path)
		}
	}
}

// hasBootCode tells whether a disk's first sector holds GRUB's boot code.
func hasBootCode(dev string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 512)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, os.ErrClosed) {
		return false
	}
	return bytes.Contains(buf[:440], []byte("GRUB"))
}
