package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/hooks"
	"github.com/backtory/backtory/internal/priority"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/snapshot"
)

// defaultConfigPath is where backtory looks without --config.
const defaultConfigPath = "/etc/backtory/backtory.yaml"

// Config is the YAML configuration file, described in README.md.
type Config struct {
	Host        string        `yaml:"host"`
	StateDir    string        `yaml:"state_dir"`
	Sources     []Source      `yaml:"sources"`
	Remote      remote.Config `yaml:"remote"`
	VolumeSize  Size          `yaml:"volume_size"`
	Compression string        `yaml:"compression"`
	Encryption  *seal.Config  `yaml:"encryption"`
	Policy      policy.Config `yaml:"policy"`
	Hooks       hooks.Set     `yaml:"hooks"`
	MetricsFile string        `yaml:"metrics_file"` // Prometheus textfile written after each backup
	Nice        *int          `yaml:"nice"`         // CPU priority of every command, -20 to 19 (unset: as started)
	IONice      string        `yaml:"ionice"`       // I/O priority: idle, best-effort[:0-7], realtime[:0-7]

	// A second remote and a fleet (docs/fleet.md).
	CopyTo      remote.Config     `yaml:"copy_to"`      // the remote `backtory copy` copies to
	HostSigners map[string]string `yaml:"host_signers"` // --all-hosts: each host's signing key fingerprint

	path   string       // the file it was read from
	ioPrio *priority.IO // IONice, parsed
	root   *yaml.Node   // for line numbers of semantic errors
}

// Source is one tree to back up.
type Source struct {
	Name         string    `yaml:"name"`
	Path         string    `yaml:"path"`
	Snapshot     string    `yaml:"snapshot"` // none | zfs | lvm | btrfs
	Dataset      string    `yaml:"dataset"`
	Recursive    bool      `yaml:"recursive"`
	LV           string    `yaml:"lv"`
	SnapshotSize string    `yaml:"snapshot_size"`
	SnapshotDir  string    `yaml:"snapshot_dir"`
	Exclude      []string  `yaml:"exclude"`
	CrossMounts  bool      `yaml:"cross_mounts"`
	Hooks        hooks.Set `yaml:"hooks"`
}

// spec is the source's snapshot specification.
func (s *Source) spec() snapshot.Spec {
	return snapshot.Spec{Kind: s.Snapshot, Path: s.Path, Dataset: s.Dataset, Recursive: s.Recursive,
		LV: s.LV, Size: s.SnapshotSize, SnapshotDir: s.SnapshotDir}
}

// Size is a byte count written as "256MiB", "1GiB", "500MB" or a number.
type Size int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = Size(v)
	return nil
}

var sizeRe = regexp.MustCompile(`^\s*([0-9]+)\s*([KMGT]i?B?|B)?\s*$`)

func parseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	unit := strings.TrimSuffix(m[2], "B")
	mult := map[string]int64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[unit]
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large (at most 8EiB)", s)
	}
	return n * mult, nil
}

// loadConfig reads, parses and checks the config file at path. Every error
// names the file and, where it can, the line.
func loadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && path == defaultConfigPath {
			return nil, usagef("config %s does not exist: run 'backtory init' or pass --config PATH", path)
		}
		return nil, usagef("config: %v", err)
	}
	return parseConfig(path, raw)
}

var yamlLineRe = regexp.MustCompile(`line (\d+): `)

func parseConfig(path string, raw []byte) (*Config, error) {
	if err := checkText(raw); err != nil {
		return nil, usagef("%s:%v", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, usagef("%s", yamlError(path, err))
	}
	if len(root.Content) == 0 {
		return nil, usagef("%s: the config is empty", path)
	}
	if top := root.Content[0]; top.Kind != yaml.MappingNode {
		return nil, usagef("%s:%d: the config is a %s, not a mapping of keys (host:, sources:, remote:, ...)", path, top.Line, nodeKind(top))
	}
	cfg := &Config{path: path}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, usagef("%s", yamlError(path, err))
	}
	cfg.root = &root
	if err := cfg.check(); err != nil {
		return nil, usagef("%v", err)
	}
	return cfg, nil
}

// checkText returns "LINE: not a YAML text: ..." for input that holds
// what YAML never does: NUL and other control characters, or bytes that
// are not UTF-8 (a binary file given as the config).
func checkText(raw []byte) error {
	line, col := 1, 1
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("%d: not a YAML text: a byte 0x%02x that is not UTF-8 at column %d (is it a binary file?)", line, raw[0], col)
		case r == 0:
			return fmt.Errorf("%d: not a YAML text: a NUL byte at column %d (is it a binary file?)", line, col)
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f:
			return fmt.Errorf("%d: not a YAML text: a control character U+%04X at column %d (is it a binary file?)", line, r, col)
		case r == '\n':
			line, col = line+1, 0
		}
		raw, col = raw[size:], col+1
	}
	return nil
}

// nodeKind names a YAML node's kind for an error message.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("single value %q", n.Value)
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// yamlError turns yaml.v3's messages into "file:line: message" lines.
func yamlError(path string, err error) string {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		line := ""
		if loc := yamlLineRe.FindStringSubmatch(m); loc != nil {
			line = loc[1]
			m = strings.Replace(m, loc[0], "", 1)
		}
		m = strings.Replace(m, "field ", "unknown key ", 1)
		m = regexp.MustCompile(` not found in type (main|policy)\.\w+`).ReplaceAllString(m, "")
		m = regexp.MustCompile(` into (main|policy)\.\w+`).ReplaceAllString(m, "")
		if line != "" {
			out = append(out, fmt.Sprintf("%s:%s: %s", path, line, m))
		} else {
			out = append(out, fmt.Sprintf("%s: %s", path, m))
		}
	}
	return strings.Join(out, "; ")
}

// line returns the line of the value at a key path ("sources", 0, "path"),
// or of the nearest parent found.
func (c *Config) line(keys ...any) int {
	n := c.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, k := range keys {
		var next *yaml.Node
		switch k := k.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// errAt formats a config error at the line of keys.
func (c *Config) errAt(keys []any, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", c.path, c.line(keys...), fmt.Sprintf(format, a...))
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// check fills defaults and checks values; errors name the line.
func (c *Config) check() error {
	if c.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return c.errAt(nil, "host is not set and the hostname is unknown")
		}
		c.Host = h
	}
	if !nameRe.MatchString(c.Host) {
		return c.errAt([]any{"host"}, "host %q: use letters, digits, '.', '_' and '-'", c.Host)
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/backtory"
	}
	if !filepath.IsAbs(c.StateDir) {
		return c.errAt([]any{"state_dir"}, "state_dir %q must be an absolute path", c.StateDir)
	}
	if len(c.Sources) == 0 {
		return c.errAt([]any{"sources"}, "no sources: list at least one under 'sources:'")
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		if !nameRe.MatchString(s.Name) {
			return c.errAt([]any{"sources", i, "name"}, "source name %q: use letters, digits, '.', '_' and '-'", s.Name)
		}
		if seen[s.Name] {
			return c.errAt([]any{"sources", i, "name"}, "source name %q is used twice", s.Name)
		}
		seen[s.Name] = true
		if !filepath.IsAbs(s.Path) {
			return c.errAt([]any{"sources", i, "path"}, "source %s: path %q must be an absolute path", s.Name, s.Path)
		}
		if s.Snapshot == "" {
			s.Snapshot = snapshot.KindNone
		}
		if err := snapshot.Check(s.spec()); err != nil {
			return c.errAt([]any{"sources", i, "snapshot"}, "source %s: %v", s.Name, err)
		}
		if _, err := archive.NewExcluder(s.Exclude); err != nil {
			return c.errAt([]any{"sources", i, "exclude"}, "source %s: %v", s.Name, err)
		}
	}
	if c.Remote.URL == "" {
		return c.errAt([]any{"remote"}, "remote.url is not set (e.g. file:///srv/backups or ftps://host/path)")
	}
	if c.VolumeSize == 0 {
		c.VolumeSize = 256 << 20
	}
	if c.VolumeSize < 1<<20 {
		return c.errAt([]any{"volume_size"}, "volume_size %d is too small (at least 1MiB)", c.VolumeSize)
	}
	if _, err := archive.ParseCompression(c.Compression); err != nil {
		return c.errAt([]any{"compression"}, "%v", err)
	}
	if c.Policy.FullEvery == 0 {
		c.Policy.FullEvery = policy.Duration(7 * 24 * time.Hour)
	}
	if c.Policy.FullWhenDiffExceed == 0 {
		c.Policy.FullWhenDiffExceed = 50
	}
	if c.Policy.KeepFulls == 0 {
		c.Policy.KeepFulls = 4
	}
	if c.Policy.KeepFulls < 1 {
		return c.errAt([]any{"policy", "keep_fulls"}, "keep_fulls must be at least 1")
	}
	if _, err := policy.ParseThinning(c.Policy.KeepDiffs); err != nil {
		return c.errAt([]any{"policy", "keep_diffs"}, "%v", err)
	}
	if c.Nice != nil {
		if err := priority.CheckNice(*c.Nice); err != nil {
			return c.errAt([]any{"nice"}, "%v", err)
		}
	}
	if c.IONice != "" {
		io, err := priority.ParseIO(c.IONice)
		if err != nil {
			return c.errAt([]any{"ionice"}, "%v", err)
		}
		c.ioPrio = &io
	}
	if c.hasHooks() {
		if err := hooks.CheckConfigOwner(c.path); err != nil {
			return err
		}
	}
	return nil
}

// hasHooks reports whether the config names any hook.
func (c *Config) hasHooks() bool {
	if !c.Hooks.Empty() {
		return true
	}
	for _, s := range c.Sources {
		if !s.Hooks.Empty() {
			return true
		}
	}
	return false
}

// keys returns the keys of the encryption section, or nil without one.
func (c *Config) keys() (*seal.Box, error) {
	if c.Encryption == nil {
		return nil, nil
	}
	box, err := seal.New(*c.Encryption)
	if err != nil {
		return nil, usagef("%s:%d: encryption: %v", c.path, c.line("encryption"), err)
	}
	return box, nil
}

// source returns the source called name.
func (c *Config) source(name string) (*Source, error) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i], nil
		}
	}
	names := make([]string, len(c.Sources))
	for i, s := range c.Sources {
		names[i] = s.Name
	}
	return nil, usagef("no source %q in %s (have: %s)", name, c.path, strings.Join(names, ", "))
}
