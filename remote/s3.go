package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 URL schemes: s3://ENDPOINT/BUCKET/PREFIX speaks https;
// s3+http:// speaks plain http, only when the url asks for it.
const (
	SchemeS3     = "s3"
	SchemeS3HTTP = "s3+http"
)

// Defaults of the S3 backend.
const (
	DefaultS3Connections = 4
	DefaultS3Retries     = 5
	DefaultS3Timeout     = 60 * time.Second
	// DefaultS3PartSize is the multipart upload's part, and the one buffer
	// each upload holds: an upload's memory is PartSize whatever the
	// object's size.
	DefaultS3PartSize = 16 << 20
	minS3PartSize     = 5 << 20 // S3's smallest part but the last
)

// The standard environment variables the S3 backend reads its
// credentials from when Config.CredentialsFile is empty.
const (
	S3AccessKeyEnv    = "AWS_ACCESS_KEY_ID"
	S3SecretKeyEnv    = "AWS_SECRET_ACCESS_KEY"
	S3SessionTokenEnv = "AWS_SESSION_TOKEN"
)

func init() {
	registerScheme(SchemeS3, openS3)
	registerScheme(SchemeS3HTTP, openS3)
}

// S3 is a backend on an S3-compatible object store (AWS S3, Ceph RGW,
// SeaweedFS, Garage, MinIO): objects live under PREFIX in BUCKET.
//
// A PUT on S3 is atomic (the object appears whole or not at all), so Put
// writes the final name directly, streaming the source in parts of
// PartSize through one buffer. Create adds "never overwrite": see Create.
type S3 struct {
	c        *minio.Client
	tr       *http.Transport
	bucket   string
	prefix   string // "" or "dir/sub", no slashes around
	partSize uint64
	conns    int
}

// Put uploads r's bytes to name: one PUT for an object smaller than a
// part, else a multipart upload that is aborted if it fails, so nothing
// appears under name until the upload completes.
func (s *S3) Put(ctx context.Context, name string, r io.Reader) error {
	return s.put(ctx, name, r, minio.PutObjectOptions{})
}

// Create is Put that never replaces an existing object: it fails with an
// error wrapping fs.ErrExist when name exists. It checks first (a HEAD,
// which every store answers) and sends the PUT with "If-None-Match: *",
// which stores that implement conditional writes (AWS S3, SeaweedFS,
// Ceph RGW, MinIO) enforce atomically; on a store that ignores the header
// only the check guards, and two writers racing for one name in the
// same instant could both succeed.
func (s *S3) Create(ctx context.Context, name string, r io.Reader) error {
	if _, err := s.Stat(ctx, name); err == nil {
		return fmt.Errorf("create %s: %w", name, fs.ErrExist)
	} else if !IsNotExist(err) {
		return err
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	return s.put(ctx, name, r, opts)
}

// Get reads name from byte off on (a ranged GET).
func (s *S3) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	key, err := s.key(name)
	if err != nil {
		return nil, err
	}
	opts := minio.GetObjectOptions{}
	if off > 0 {
		if err := opts.SetRange(off, 0); err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
	}
	obj, err := s.c.GetObject(ctx, s.bucket, key, opts)
	if err == nil {
		_, err = obj.Stat() // sends the GET
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		if off > 0 && (errCode(err) == "InvalidRange" || s3Response(err).StatusCode == http.StatusRequestedRangeNotSatisfiable) {
			// A range starting at the end: empty if the object is that long.
			if info, serr := s.Stat(ctx, name); serr == nil && info.Size == off {
				return io.NopCloser(bytes.NewReader(nil)), nil
			}
		}
		return nil, fmt.Errorf("get %s: %w", name, s.explain(err))
	}
	return &s3Reader{obj: obj, name: name, s: s}, nil
}

// Stat returns name's size and time.
func (s *S3) Stat(ctx context.Context, name string) (Info, error) {
	key, err := s.key(name)
	if err != nil {
		return Info{}, err
	}
	oi, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", name, s.explain(err))
	}
	return Info{Name: path.Base(key), Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List returns the objects and common prefixes ("directories") directly
// under dir, sorted by name.
func (s *S3) List(ctx context.Context, dir string) ([]Info, error) {
	prefix := s.prefix
	if dir != "" {
		clean, err := CleanName(dir)
		if err != nil {
			return nil, err
		}
		prefix = path.Join(prefix, clean)
	}
	if prefix != "" {
		prefix += "/"
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var infos []Info
	for oi := range s.c.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, s.explain(oi.Err))
		}
		n := strings.TrimPrefix(oi.Key, prefix)
		switch {
		case n == "":
			continue // a directory marker
		case strings.HasSuffix(n, "/"):
			infos = append(infos, Info{Name: strings.TrimSuffix(n, "/"), IsDir: true})
		default:
			infos = append(infos, Info{Name: n, Size: oi.Size, ModTime: oi.LastModified})
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

// Delete removes name. S3 answers a DELETE of a missing key with success,
// so Delete checks first to report fs.ErrNotExist.
func (s *S3) Delete(ctx context.Context, name string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if _, err := s.Stat(ctx, name); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", name, s.explain(err))
	}
	return nil
}

// Close releases idle connections.
func (s *S3) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// Capabilities: Connections uploads at once (memory: Connections parts);
// a failed Put starts over (an aborted multipart upload keeps nothing).
func (s *S3) Capabilities() Capabilities { return Capabilities{Connections: s.conns} }

func openS3(_ context.Context, u *url.URL, cfg Config, log *slog.Logger) (Backend, error) {
	s, err := newS3(u, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", redact(u), err)
	}
	// No request yet: a wrong address, key or bucket fails the first
	// operation, inside the run that needs it, so that a backup records it
	// as its failure (status, on_failure hooks) like any other.
	return WithRetry(s, policyFor(cfg, DefaultS3Retries, s3Backoff, s3Transient), log), nil
}

func newS3(u *url.URL, cfg Config, log *slog.Logger) (*S3, error) {
	if u.Host == "" {
		return nil, errors.New("the url needs an endpoint (s3://host[:port]/bucket/prefix)")
	}
	if u.User != nil {
		return nil, fmt.Errorf("do not put keys in the url: use remote.credentials_file or %s and %s", S3AccessKeyEnv, S3SecretKeyEnv)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the url must not have a query or fragment")
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if bucket == "" {
		return nil, errors.New("the url needs a bucket (s3://host[:port]/bucket/prefix)")
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		c, err := CleanName(prefix)
		if err != nil {
			return nil, fmt.Errorf("prefix: %w", err)
		}
		prefix = c
	}
	secure := u.Scheme == SchemeS3
	if !secure && (cfg.TLSCA != "" || cfg.TLSInsecure) {
		return nil, errors.New("tls_ca or tls_insecure_skip_verify is set but the url is s3+http:// (unencrypted); use s3://")
	}
	lookup := map[string]minio.BucketLookupType{"": minio.BucketLookupAuto, "path": minio.BucketLookupPath, "virtual": minio.BucketLookupDNS}
	style, ok := lookup[cfg.Addressing]
	if !ok {
		return nil, fmt.Errorf("addressing %q: want path or virtual", cfg.Addressing)
	}
	creds, err := s3Credentials(cfg.CredentialsFile)
	if err != nil {
		return nil, err
	}
	partSize := cfg.PartSize
	switch {
	case partSize == 0:
		partSize = DefaultS3PartSize
	case partSize < minS3PartSize:
		return nil, fmt.Errorf("part_size %d is below S3's minimum of 5 MiB", partSize)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultS3Timeout
	}
	n := cfg.Connections
	if n <= 0 {
		n = DefaultS3Connections
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   n + 2,
	}
	if secure {
		if tr.TLSClientConfig, err = tlsConfig(u.Hostname(), cfg, log); err != nil {
			return nil, err
		}
		tr.TLSClientConfig.ClientSessionCache = nil
		tr.TLSClientConfig.ServerName = ""
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: style,
		MaxRetries:   1, // WithRetry retries
	})
	if err != nil {
		return nil, err
	}
	return &S3{c: c, tr: tr, bucket: bucket, prefix: prefix, partSize: uint64(partSize), conns: max(2, n)}, nil
}

// s3Backoff is the first pause between retries; it doubles up to
// maxBackoff. Tests shorten it before Open.
var s3Backoff = time.Second

func (s *S3) key(name string) (string, error) {
	clean, err := CleanName(name)
	if err != nil {
		return "", err
	}
	return path.Join(s.prefix, clean), nil
}

func (s *S3) put(ctx context.Context, name string, r io.Reader, opts minio.PutObjectOptions) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	size := int64(-1)
	if sk, ok := r.(io.Seeker); ok {
		// A known size lets a small object go in one PUT and a large one
		// in parts of a fixed count.
		if cur, err := sk.Seek(0, io.SeekCurrent); err == nil {
			if end, err := sk.Seek(0, io.SeekEnd); err == nil {
				size = end - cur
			}
			if _, err := sk.Seek(cur, io.SeekStart); err != nil {
				return fmt.Errorf("put %s: rewind source: %w", name, err)
			}
		}
	}
	opts.PartSize = s.partSize
	opts.NumThreads = 1 // one part buffer per upload; uploads run in parallel instead
	opts.ContentType = "application/octet-stream"
	src := &s3Source{r: r}
	if _, err := s.c.PutObject(ctx, s.bucket, key, onlyReader{src}, size, opts); err != nil {
		if src.err != nil {
			return fmt.Errorf("put %s: %w", name, &readError{src.err})
		}
		if ctx.Err() != nil {
			return fmt.Errorf("put %s: %w", name, ctx.Err())
		}
		return fmt.Errorf("put %s: %w", name, s.explain(err))
	}
	return nil
}

// s3Source remembers the source's own read error, which is no store
// failure and never transient.
type s3Source struct {
	r   io.Reader
	err error
}

func (s *s3Source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// onlyReader hides a source's ReaderAt and Seeker, so minio-go streams it
// through the one part buffer instead of reading it in parallel.
type onlyReader struct{ io.Reader }

type s3Reader struct {
	obj  *minio.Object
	name string
	s    *S3
}

func (r *s3Reader) Read(p []byte) (int, error) {
	n, err := r.obj.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("get %s: %w", r.name, r.s.explain(err))
	}
	return n, err
}

func (r *s3Reader) Close() error { return r.obj.Close() }

// s3Error is a store error explained in one line.
type s3Error struct {
	msg string
	err error
}

func (e *s3Error) Error() string { return e.msg }
func (e *s3Error) Unwrap() error { return e.err }

// explain turns the store's answers into one-line errors; a missing
// object wraps fs.ErrNotExist.
func (s *S3) explain(err error) error {
	resp := s3Response(err)
	code := resp.Code
	switch code {
	case "NoSuchKey", "NotFound":
		return &s3Error{"no such object", errors.Join(fs.ErrNotExist, err)}
	case "NoSuchBucket":
		return &s3Error{fmt.Sprintf("bucket %q does not exist (create it on the store first)", s.bucket), err}
	case "InvalidAccessKeyId":
		return &s3Error{"the store does not know this access key (check remote.credentials_file or " + S3AccessKeyEnv + ")", err}
	case "SignatureDoesNotMatch":
		return &s3Error{"the secret key is wrong (check remote.credentials_file or " + S3SecretKeyEnv + ")", err}
	case "AccessDenied":
		return &s3Error{fmt.Sprintf("access denied by the store (these credentials may not do this in bucket %q): %s", s.bucket, resp.Message), err}
	case "EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "StorageFull":
		return &s3Error{"the store is full: " + resp.Message, err}
	case "PreconditionFailed":
		return &s3Error{"the object exists already", errors.Join(fs.ErrExist, err)}
	}
	if resp.StatusCode == http.StatusNotFound && code == "" {
		return &s3Error{"no such object", errors.Join(fs.ErrNotExist, err)}
	}
	if resp.StatusCode == http.StatusInsufficientStorage {
		return &s3Error{"the store is full: " + resp.Message, err}
	}
	if resp.StatusCode >= 500 {
		// SeaweedFS, for one, answers a full store with a plain 500.
		return &s3Error{fmt.Sprintf("the store failed (%d %s): %s", resp.StatusCode, code, resp.Message), err}
	}
	if isCertError(err) {
		return &s3Error{"the store's TLS certificate is not trusted (set remote.tls_ca to its CA): " + err.Error(), err}
	}
	return err
}

// errCode is the S3 error code of err, "" for a network error.
func errCode(err error) string { return s3Response(err).Code }

// s3Response is the store's answer inside err (wrapped or not), or the
// zero ErrorResponse for a network error.
func s3Response(err error) minio.ErrorResponse {
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	return resp
}

// s3Transient reports whether an S3 failure may pass if tried again: a
// network failure, a timeout, or the store's 5xx, 408 and 429 answers.
func s3Transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *readError
	if errors.As(err, &re) || IsNotExist(err) || errors.Is(err, fs.ErrExist) || isCertError(err) {
		return false
	}
	resp := s3Response(err)
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return resp.StatusCode != http.StatusInsufficientStorage && resp.StatusCode != http.StatusNotImplemented
	case resp.StatusCode != 0:
		return false
	}
	switch resp.Code {
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable":
		return true
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "broken pipe")
}

// s3Credentials reads the keys from file, or from the environment when
// file is "".
func s3Credentials(file string) (*credentials.Credentials, error) {
	if file == "" {
		id, secret := os.Getenv(S3AccessKeyEnv), os.Getenv(S3SecretKeyEnv)
		if id == "" || secret == "" {
			return nil, fmt.Errorf("no credentials: set remote.credentials_file or the environment variables %s and %s", S3AccessKeyEnv, S3SecretKeyEnv)
		}
		return credentials.NewStaticV4(id, secret, os.Getenv(S3SessionTokenEnv)), nil
	}
	b, err := readSecretFile("credentials file", file, 64<<10)
	if err != nil {
		return nil, err
	}
	k, err := ParseS3Credentials(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", file, err)
	}
	return credentials.NewStaticV4(k.AccessKeyID, k.SecretAccessKey, k.SessionToken), nil
}

// S3Keys are the keys of an S3 credentials file.
type S3Keys struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// ParseS3Credentials reads a credentials file in the AWS shared format of
// one profile:
//
//	[default]
//	aws_access_key_id = AKIA…
//	aws_secret_access_key = …
//	aws_session_token = …        (optional)
//
// Lines starting with # or ; are comments. More than one profile is an
// error: a file holds the keys of one identity.
func ParseS3Credentials(r io.Reader) (S3Keys, error) {
	var k S3Keys
	sections := 0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if sections++; sections > 1 {
				return S3Keys{}, fmt.Errorf("line %d: a second profile %s (keep one identity per file)", n, line)
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return S3Keys{}, fmt.Errorf("line %d: want key = value", n)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "aws_access_key_id":
			k.AccessKeyID = val
		case "aws_secret_access_key":
			k.SecretAccessKey = val
		case "aws_session_token":
			k.SessionToken = val
		default:
			return S3Keys{}, fmt.Errorf("line %d: unknown key %q", n, key)
		}
	}
	if err := sc.Err(); err != nil {
		return S3Keys{}, err
	}
	if k.AccessKeyID == "" || k.SecretAccessKey == "" {
		return S3Keys{}, errors.New("want aws_access_key_id and aws_secret_access_key")
	}
	return k, nil
}
