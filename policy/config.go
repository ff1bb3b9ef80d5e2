// Package policy makes the run's decisions: a full or a differential (and
// why), which sets prune deletes, and whether the remote was rolled back.
// It reads set ids and manifests; it writes nothing.
package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the policy section of the config file.
type Config struct {
	FullEvery          Duration `yaml:"full_every"`             // a new full when the last is this old
	FullWhenDiffExceed Percent  `yaml:"full_when_diff_exceeds"` // ... or when the last differential is this big, relative to its full
	KeepFulls          int      `yaml:"keep_fulls"`             // prune keeps the newest N fulls and their differentials
	KeepDiffs          string   `yaml:"keep_diffs"`             // thinning of differentials by age, e.g. "7d:all,60d:weekly"
}

// Duration is a time span written "90m", "12h", "7d" or "2w".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// Percent is a percentage written "50%".
type Percent float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(n.Value, "%")), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("line %d: percentage %q: want e.g. 50%%", n.Line, n.Value)
	}
	*p = Percent(v)
	return nil
}

// maxDuration is the longest span time.Duration holds (about 292 years).
const maxDuration = int64(math.MaxInt64)

// ParseDuration reads a time span: Go's "90m" or "12h", or days and weeks,
// "7d" and "2w". Negative spans are refused.
func ParseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("duration %q: want e.g. 12h, 7d or 2w", s)
			}
			if v > maxDuration/int64(unit) {
				return 0, fmt.Errorf("duration %q is too long (at most %dd)", s, maxDuration/int64(24*time.Hour))
			}
			return time.Duration(v) * unit, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil && strings.Contains(err.Error(), "invalid duration") && strings.TrimLeft(s, "0123456789.hmsuµn") == "" {
		return 0, fmt.Errorf("duration %q is too long (at most %dd)", s, maxDuration/int64(24*time.Hour))
	}
	if err != nil || v < 0 {
		return 0, fmt.Errorf("duration %q: want e.g. 12h, 7d or 2w", s)
	}
	return v, nil
}
