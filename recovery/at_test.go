package recovery

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/testenv"
)

// TestAtPicksWhatTheCLIPicks: for the same --at strings, with TZ set to a
// zone with daylight saving, recover.sh plan picks the set that the CLI's
// rule (archive.PickAt, in local time) picks, and refuses what it refuses.
func TestAtPicksWhatTheCLIPicks(t *testing.T) {
	const zone = "Europe/Berlin"
	loc, err := time.LoadLocation(zone)
	testenv.Need(t, err, "tzdata (apt-get install tzdata)")
	ids := []string{
		"full-20260329T005959Z", // 01:59:59 CET, just before the switch to CEST
		"diff-20260329T010000Z", // 03:00:00 CEST
		"diff-20260701T120000Z", // 14:00 CEST
		"full-20261122T030000Z",
		"diff-20261122T130000Z", // 14:00 CET
		"diff-20261122T135959Z",
		"diff-20261122T140000Z",
	}
	p := sampleParams()
	p.Sets = nil
	for i, id := range ids {
		ref := SetRef{Source: "root", ID: id}
		if strings.HasPrefix(id, "diff-") {
			ref.Base = ids[0]
			if i > 3 {
				ref.Base = ids[3]
			}
		}
		p.Sets = append(p.Sets, ref)
	}
	f := renderTo(t, p)
	ats := []string{
		"2026-11-22 14:00", "2026-11-22 14:59:59", "2026-11-22 15:00", "2026-11-22 14:59",
		"2026-11-22T14:00:00Z", "2026-11-22T13:59:59Z", "2026-11-22T15:00:00+01:00", "2026-11-22T14:59:59+0100",
		"2026-11-22 14:59:59 +01:00", "2026-11-22T13:30:00-00:30", "2026-11-22T14:59:59.75+01:00",
		"2026-11-22", "2026-11-23", "2026-11-22T14:00", "20261122T135959Z",
		"diff-20261122T135959Z", "full-20261122T030000Z", "diff-20261122T135000Z",
		"2026-07-01 14:00", "2026-07-01 13:59:59", "2026-03-29 03:00", "2026-03-29 01:59:59", "2026-03-29 01:59:58",
		"2026-03-28", "2025-01-01T00:00:00Z",
		"yesterday", "2026-02-30", "2026-11-22 24:00", "2026-11-22T14:00:00+25:00", "2026-11-22 14:00 CET",
	}
	planRe := regexp.MustCompile(`(?m)^  source root \(/\): (.*)$`)
	for _, sh := range [][]string{{"dash"}, {"busybox", "sh"}} {
		bin := testenv.NeedTool(t, sh[0])
		for i, at := range ats {
			if sh[0] == "busybox" && i%3 != 0 {
				continue // plan is slow: busybox (its own date -d and awk) checks a third of them
			}
			want, _, werr := archive.PickAt(ids, at, loc)
			cmd := exec.Command(bin, append(sh[1:], f, "plan", "--at", at)...)
			cmd.Env = append(os.Environ(), "TZ="+zone, "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if werr != nil {
				if err == nil || !strings.Contains(string(out), "--at "+at+": want RFC 3339") {
					t.Errorf("%s: --at %q: the CLI refuses it (%v), the script says (%v):\n%s", sh[0], at, werr, err, out)
				}
				continue
			}
			m := planRe.FindStringSubmatch(string(out))
			if err != nil || m == nil {
				t.Errorf("%s plan --at %q: %v\n%s", sh[0], at, err, out)
				continue
			}
			got, _, _ := strings.Cut(m[1], " ")
			if want == "" {
				want = "NO"
			}
			if got != want {
				t.Errorf("%s: --at %q: the script picks %s, the CLI %s", sh[0], at, got, want)
			}
		}
	}
}

func TestParseTimeAndPickAt(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	testenv.Need(t, err, "tzdata (apt-get install tzdata)")
	for _, c := range []struct {
		in   string
		want string // UTC, RFC 3339; "" for an error
	}{
		{"2026-11-22T14:00:00Z", "2026-11-22T14:00:00Z"},
		{"2026-11-22T15:00:00+01:00", "2026-11-22T14:00:00Z"},
		{"2026-11-22 15:00:00 +01:00", "2026-11-22T14:00:00Z"},
		{"2026-11-22 15:00", "2026-11-22T14:00:00Z"},
		{"2026-07-01 15:00", "2026-07-01T13:00:00Z"},
		{"2026-11-22", "2026-11-21T23:00:00Z"},
		{"20261122T140000Z", "2026-11-22T14:00:00Z"},
		{"2026-02-29", ""},
		{"2026-13-01", ""},
		{"2026-11-22 14:60", ""},
		{"2026-11-22T14:00:00+24:00", ""},
		{"tomorrow", ""},
	} {
		got, err := archive.ParseTime(c.in, berlin)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got.UTC().Format(time.RFC3339) != c.want {
			t.Errorf("ParseTime(%q) = %v, %v; want %s", c.in, got.UTC(), err, c.want)
		}
	}
}
