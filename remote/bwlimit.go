package remote

import (
	"context"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Rate is an upload bandwidth in bytes per second, written in the config
// as "10MiB/s", "500KB/s" or a number of bytes per second; 0 is no limit.
type Rate int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

var rateRe = regexp.MustCompile(`^\s*([0-9]+)\s*([KMGT]i?B|B)?\s*(/s)?\s*$`)

// ParseRate reads a Rate: a number with an optional unit (B, KB, MB, GB,
// KiB, MiB, GiB) and an optional "/s".
func ParseRate(s string) (Rate, error) {
	m := rateRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("bwlimit %q: want bytes per second with an optional unit, e.g. 10MiB/s or 500KB/s", s)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bwlimit %q is too large", s)
	}
	return Rate(n * mult), nil
}

// String writes r as bytes per second.
func (r Rate) String() string { return strconv.FormatInt(int64(r), 10) + "B/s" }

// WithBandwidthLimit returns b with every upload (Put, and Create where
// b has one) read from its source at no more than rate bytes per second
// in all, however many run at once. Downloads are not limited. A source
// that is an io.ReadSeeker stays one, so retries and resumed uploads
// still rewind it.
func WithBandwidthLimit(b Backend, rate Rate) Backend {
	if rate <= 0 {
		return b
	}
	l := &limited{Backend: b, bucket: newBucket(rate)}
	if _, ok := b.(Creator); ok {
		return &limitedCreator{l}
	}
	return l
}

type limited struct {
	Backend
	bucket *bucket
}

func (l *limited) Put(ctx context.Context, name string, r io.Reader) error {
	return l.Backend.Put(ctx, name, l.bucket.reader(ctx, r))
}

type limitedCreator struct{ *limited }

func (l *limitedCreator) Create(ctx context.Context, name string, r io.Reader) error {
	return l.Backend.(Creator).Create(ctx, name, l.bucket.reader(ctx, r))
}

// bucket is a token bucket shared by the uploads of one backend: each read
// takes its bytes out, and a read that leaves the bucket in debt sleeps
// until the debt is paid back at the rate. The bucket holds at most a
// tenth of a second's bytes, so a pause never turns into a burst.
type bucket struct {
	rate float64 // bytes per second
	max  float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(rate Rate) *bucket {
	return &bucket{rate: float64(rate), max: max(float64(rate)/10, 1), last: time.Now()}
}

// chunk is the most one read asks for: a tenth of a second, at least 1 KiB.
func (b *bucket) chunk() int { return int(max(b.max, 1024)) }

// take removes n bytes and returns how long the caller must wait before
// sending more.
func (b *bucket) take(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.max, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

func (b *bucket) reader(ctx context.Context, r io.Reader) io.Reader {
	lr := &limitReader{ctx: ctx, r: r, b: b}
	if rs, ok := r.(io.ReadSeeker); ok {
		return &limitReadSeeker{lr, rs}
	}
	return lr
}

// limitReader reads from r in chunks the bucket allows.
type limitReader struct {
	ctx context.Context
	r   io.Reader
	b   *bucket
}

func (l *limitReader) Read(p []byte) (int, error) {
	if len(p) > l.b.chunk() {
		p = p[:l.b.chunk()]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if wait := l.b.take(n); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return n, l.ctx.Err()
			}
		}
	}
	return n, err
}

type limitReadSeeker struct {
	*limitReader
	s io.Seeker
}

func (l *limitReadSeeker) Seek(off int64, whence int) (int64, error) { return l.s.Seek(off, whence) }
