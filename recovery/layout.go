// Package recovery captures a machine's storage layout at backup time and
// renders recover.sh, the POSIX sh script that recreates that layout and
// restores the backups onto it from any rescue system.
//
// The layout is data: a Layout encodes to JSON (the canonical form) and to
// layout.conf, flat "keyword field field key=value" lines that a shell reads
// with grep and read. Raw captures (sfdisk dumps, LVM metadata, fstab) travel
// beside them as files. docs/recovery.md describes both.
package recovery

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// LayoutVersion is the version of the layout format this package writes.
const LayoutVersion = 1

// Layout is a machine's storage layout at one moment.
type Layout struct {
	Version  int       `json:"version"`
	Host     string    `json:"host"`
	Captured time.Time `json:"captured"`
	Boot     Boot      `json:"boot"`
	Disks    []Disk    `json:"disks"`
	MD       []MD      `json:"md,omitempty"`
	LUKS     []LUKS    `json:"luks,omitempty"`
	PVs      []PV      `json:"pvs,omitempty"`
	VGs      []VG      `json:"vgs,omitempty"`
	LVs      []LV      `json:"lvs,omitempty"`
	Pools    []Pool    `json:"zpools,omitempty"`
	Datasets []Dataset `json:"zfs,omitempty"`
	FS       []FS      `json:"filesystems,omitempty"`
	Swaps    []Swap    `json:"swaps,omitempty"`
	// Missing lists the capture tools that were not installed; what they
	// would have found is not in the layout.
	Missing []string `json:"missing,omitempty"`
	// Errors lists capture commands that failed, one line each.
	Errors []string `json:"errors,omitempty"`
	// Files are raw captures by name: sfdisk-vda.dump, lvm-vg0.cfg, fstab, ...
	Files map[string]string `json:"files,omitempty"`
}

// Boot is how the machine boots.
type Boot struct {
	Mode   string   `json:"mode"`             // "uefi" or "bios"
	Loader string   `json:"loader"`           // "grub", "systemd-boot" or "unknown"
	Disks  []string `json:"disks,omitempty"`  // disks with a boot loader in their first sectors (bios)
	ESP    string   `json:"esp,omitempty"`    // the EFI system partition's mountpoint (uefi)
	Kernel string   `json:"kernel,omitempty"` // /proc/cmdline at capture
}

// Disk is a whole disk and, when it has one, its partition table.
type Disk struct {
	Path       string `json:"path"`
	Size       int64  `json:"size"` // bytes
	SectorSize int    `json:"sector_size"`
	Table      string `json:"table,omitempty"` // "gpt", "dos" or "" (no table)
	Dump       string `json:"dump,omitempty"`  // name of the sfdisk --dump file in Files
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
}

// MD is a Linux software RAID array.
type MD struct {
	Path     string   `json:"path"`
	Level    string   `json:"level"`
	Metadata string   `json:"metadata"`
	UUID     string   `json:"uuid"`
	Name     string   `json:"name,omitempty"`
	Chunk    string   `json:"chunk,omitempty"` // e.g. "512K"
	Devices  []string `json:"devices"`
	Total    int      `json:"raid_devices"`
}

// LUKS is an encrypted volume's header parameters; never key material.
type LUKS struct {
	Device  string `json:"device"`
	Name    string `json:"name"` // the /dev/mapper name it was open as
	Type    string `json:"type"` // luks1 or luks2
	UUID    string `json:"uuid"`
	Cipher  string `json:"cipher,omitempty"`
	KeyBits int    `json:"key_bits,omitempty"`
	Hash    string `json:"hash,omitempty"`
}

// PV is an LVM physical volume.
type PV struct {
	Device string `json:"device"`
	VG     string `json:"vg"`
	UUID   string `json:"uuid"`
	Size   int64  `json:"size"`
}

// VG is an LVM volume group; Cfg names its vgcfgbackup file in Files.
type VG struct {
	Name       string `json:"name"`
	UUID       string `json:"uuid"`
	ExtentSize int64  `json:"extent_size"`
	Cfg        string `json:"cfg"`
}

// LV is an LVM logical volume. Snapshots (Origin set) are recorded so
// that recovery removes them: their copy-on-write data is not restored.
type LV struct {
	VG      string `json:"vg"`
	Name    string `json:"name"`
	UUID    string `json:"uuid"`
	Size    int64  `json:"size"`
	Segtype string `json:"segtype"`
	Origin  string `json:"origin,omitempty"`
	Pool    string `json:"pool,omitempty"`
}

// Pool is a ZFS pool: its vdev tree as zpool create's arguments, and the
// properties to recreate it with.
type Pool struct {
	Name  string   `json:"name"`
	Vdevs []string `json:"vdevs"` // e.g. ["mirror", "/dev/vda2", "/dev/vdb2", "log", "/dev/vdc"]
	Props []Prop   `json:"props,omitempty"`
}

// Dataset is a ZFS filesystem or volume with its local properties.
type Dataset struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // filesystem or volume
	Volsize int64  `json:"volsize,omitempty"`
	Props   []Prop `json:"props,omitempty"`
}

// Prop is one property; Source is local, received, default, ...
type Prop struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source,omitempty"`
}

// FS is a filesystem on a block device.
type FS struct {
	Device     string `json:"device"`
	Mountpoint string `json:"mountpoint,omitempty"` // "" when not mounted
	Type       string `json:"type"`
	UUID       string `json:"uuid,omitempty"`
	Label      string `json:"label,omitempty"`
	Options    string `json:"options,omitempty"`
	BlockSize  int    `json:"block_size,omitempty"` // ext*
	InodeSize  int    `json:"inode_size,omitempty"` // ext*
}

// Swap is a swap area.
type Swap struct {
	Device string `json:"device"`
	UUID   string `json:"uuid,omitempty"`
	Label  string `json:"label,omitempty"`
}

// JSON returns the layout as indented JSON.
func (l *Layout) JSON() ([]byte, error) {
	return json.MarshalIndent(l, "", "  ")
}

// ParseJSON reads a layout written by JSON. It refuses newer versions.
func ParseJSON(b []byte) (*Layout, error) {
	var l Layout
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	if l.Version < 1 || l.Version > LayoutVersion {
		return nil, fmt.Errorf("layout: version %d is not supported (want 1..%d): upgrade backtory", l.Version, LayoutVersion)
	}
	return &l, nil
}

// Conf returns layout.conf: one record per line, "keyword field ...",
// fields separated by one space, never empty ("-" stands for nothing),
// blanks and '%' inside a field percent-encoded (%20, %25, ...). No keyword
// is a prefix of another, so `grep '^keyword '` selects a kind. Records
// come in the order recovery creates them.
func (l *Layout) Conf() []byte {
	var b bytes.Buffer
	w := func(fields ...string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(Escape(f))
		}
		b.WriteByte('\n')
	}
	w("version", fmt.Sprint(l.Version))
	w("host", l.Host)
	w("captured", l.Captured.UTC().Format(time.RFC3339))
	w("boot", l.Boot.Mode, l.Boot.Loader, l.Boot.ESP, strings.Join(l.Boot.Disks, ","))
	for _, d := range l.Disks {
		w("disk", d.Path, fmt.Sprint(d.Size), fmt.Sprint(d.SectorSize), d.Table, d.Dump)
	}
	for _, m := range l.MD {
		w("md", m.Path, m.Level, m.Metadata, m.UUID, m.Name, m.Chunk,
			fmt.Sprint(m.Total), strings.Join(m.Devices, ","))
	}
	for _, c := range l.LUKS {
		w("luks", c.Device, c.Name, c.Type, c.UUID, c.Cipher, fmt.Sprint(c.KeyBits), c.Hash)
	}
	for _, p := range l.PVs {
		w("pv", p.Device, p.VG, p.UUID, fmt.Sprint(p.Size))
	}
	for _, v := range l.VGs {
		w("vg", v.Name, v.UUID, fmt.Sprint(v.ExtentSize), v.Cfg)
	}
	for _, v := range l.LVs {
		w("lv", v.VG, v.Name, v.UUID, fmt.Sprint(v.Size), v.Segtype, v.Origin, v.Pool)
	}
	for _, p := range l.Pools {
		w("zpool", p.Name, strings.Join(p.Vdevs, ","))
		for _, pr := range p.Props {
			w("zpoolprop", p.Name, pr.Name, pr.Value, pr.Source)
		}
	}
	for _, d := range l.Datasets {
		w("zfs", d.Name, d.Type, fmt.Sprint(d.Volsize))
		for _, pr := range d.Props {
			w("zfsprop", d.Name, pr.Name, pr.Value, pr.Source)
		}
	}
	for _, f := range l.FS {
		w("fs", f.Device, f.Mountpoint, f.Type, f.UUID, f.Label, f.Options,
			fmt.Sprint(f.BlockSize), fmt.Sprint(f.InodeSize))
	}
	for _, s := range l.Swaps {
		w("swap", s.Device, s.UUID, s.Label)
	}
	for _, m := range l.Missing {
		w("missing", m)
	}
	for _, e := range l.Errors {
		w("error", e)
	}
	for _, name := range l.fileNames() {
		w("file", name)
	}
	return b.Bytes()
}

// Bundle is the layout object stored in each set: a tar archive holding
// layout.conf, layout.json and the raw captures under their names.
func (l *Layout) Bundle() ([]byte, error) {
	js, err := l.JSON()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		h := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: l.Captured, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("layout.conf", l.Conf()); err != nil {
		return nil, err
	}
	if err := add("layout.json", js); err != nil {
		return nil, err
	}
	for _, name := range l.fileNames() {
		if err := add(name, []byte(l.Files[name])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseBundle reads a layout object written by Bundle.
func ParseBundle(b []byte) (*Layout, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("layout: no layout.json in the layout object")
		}
		if err != nil {
			return nil, fmt.Errorf("layout: %w", err)
		}
		if h.Name == "layout.json" {
			js, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, fmt.Errorf("layout: %w", err)
			}
			return ParseJSON(js)
		}
	}
}

// Escape percent-encodes what layout.conf fields must not hold: blanks,
// control characters and '%'. The empty string becomes "-", and a literal
// "-" becomes "%2D".
func Escape(s string) string {
	switch s {
	case "":
		return "-"
	case "-":
		return "%2D"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '%' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape reverses Escape.
func Unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("field %q: truncated %%-escape", s)
		}
		var c byte
		if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &c); err != nil {
			return "", fmt.Errorf("field %q: bad %%-escape", s)
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

// ParseConf splits layout.conf into records of unescaped fields, "-"
// becoming "". It is the Go mirror of how recover.sh reads the file.
func ParseConf(r io.Reader) ([][]string, error) {
	var out [][]string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		raw := strings.Split(line, " ")
		rec := make([]string, len(raw))
		for i, f := range raw {
			if f == "" {
				return nil, fmt.Errorf("layout.conf:%d: empty field (two blanks)", n)
			}
			if f == "-" {
				continue
			}
			u, err := Unescape(f)
			if err != nil {
				return nil, fmt.Errorf("layout.conf:%d: %w", n, err)
			}
			rec[i] = u
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

func (l *Layout) fileNames() []string {
	names := make([]string, 0, len(l.Files))
	for n := range l.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
