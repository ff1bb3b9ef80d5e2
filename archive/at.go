package archive

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// ParseTime reads a point in time as `--at` takes it, in the CLI and in
// recover.sh alike (the script's settime follows the same grammar):
//
//	2026-11-20T14:00:00Z, 2026-11-20T15:00:00+01:00   RFC 3339
//	2026-11-20 15:00:00 +01:00                        as `backtory list` prints it
//	2026-11-20, 2026-11-20 14:00, 2026-11-20T14:00:05 local time in loc
//	20261120T140000Z                                  the UTC time of a set id
//
// A fraction of a second is allowed. Out-of-range fields are errors, never
// carried over (2026-02-30 is no date).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if compactRe.MatchString(s) {
		if t, err := time.Parse(setIDTime, s); err == nil {
			return t, nil
		}
		return time.Time{}, timeError(s)
	}
	m := timeRe.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, timeError(s)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	year, month, day, hour, min, sec := n(1), n(2), n(3), n(4), n(5), n(6)
	var nsec int
	if m[7] != "" {
		digits := (m[7][1:] + "000000000")[:9] // nanoseconds; finer digits are dropped
		nsec, _ = strconv.Atoi(digits)
	}
	daysIn := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if month < 1 || month > 12 || day < 1 || day > daysIn || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("time %q: no such date or time", s)
	}
	zone := loc
	if m[8] != "" {
		zone = time.UTC
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, zone)
	switch z := m[8]; {
	case z == "Z":
	case z != "":
		zh, _ := strconv.Atoi(z[1:3])
		zm, _ := strconv.Atoi(z[len(z)-2:])
		if zh > 23 || zm > 59 {
			return time.Time{}, fmt.Errorf("time %q: zone offset out of range", s)
		}
		off := time.Duration(zh)*time.Hour + time.Duration(zm)*time.Minute
		if z[0] == '+' {
			off = -off
		}
		t = t.Add(off)
	}
	return t, nil
}

// PickAt returns the set of ids (oldest first) that `--at at` means: the
// set named at, else the newest at or before the time at (a set id stands
// for its time); "" when every set is newer. t is the time read.
func PickAt(ids []string, at string, loc *time.Location) (id string, t time.Time, err error) {
	for _, x := range ids {
		if x == at {
			return x, time.Time{}, nil
		}
	}
	if _, st, ok := ParseSetID(at); ok {
		t = st
	} else if t, err = ParseTime(at, loc); err != nil {
		return "", time.Time{}, err
	}
	for _, x := range ids {
		if _, st, _ := ParseSetID(x); !st.After(t) {
			id = x
		}
	}
	return id, t, nil
}

var (
	timeRe    = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?)? *(Z|[+-][0-9]{2}:?[0-9]{2})?$`)
	compactRe = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)
)

func timeError(s string) error {
	return fmt.Errorf("time %q: want RFC 3339 (2026-11-20T14:00:00Z, 2026-11-20T15:00:00+01:00) or local time (2026-11-20, '2026-11-20 14:00[:05]')", s)
}
