// Package s3test starts a real SeaweedFS cluster for tests, as ftptest
// starts FTP servers: on 127.0.0.1, one master, three volume servers with
// replication 001 (every object on two of them, so one may die), a filer
// and the S3 gateway, whose identities come from a file. Each process is
// stopped by its PID when the test ends. test/deps/weed.sh builds the weed
// binary; without it the test is skipped, or fails under
// BACKTORY_TEST_STRICT (internal/testenv).
package s3test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/backtory/backtory/internal/testcerts"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
)

// Bin is where test/deps/weed.sh puts weed; BACKTORY_WEED overrides it.
const Bin = "/var/cache/backtory-weed/weed"

// Admin is the identity that may do everything.
var Admin = Identity{Name: "admin", AccessKey: "backtoryadmin", SecretKey: "backtory-admin-secret", Actions: []string{"Admin", "Read", "Write", "List", "Tagging"}}

// Identity is an S3 user of the gateway: its keys and SeaweedFS actions
// ("Read", "Write:bucket", "List:bucket", "Admin").
type Identity struct {
	Name, AccessKey, SecretKey string
	Actions                    []string
}

// Config says how to start the cluster.
type Config struct {
	// Identities besides Admin.
	Identities []Identity
	// VolumeSizeLimitMB is each volume's size (0: 64); with MaxVolumes
	// volumes per server (0: 10) it bounds the store, for the "store full"
	// test.
	VolumeSizeLimitMB int
	MaxVolumes        int
	// TLS makes the gateway serve https too, on HTTPSPort, with a
	// certificate for 127.0.0.1 signed by CAFile (internal/testcerts).
	TLS bool
}

// Cluster is a running SeaweedFS cluster.
type Cluster struct {
	Dir       string // data, configuration, logs
	S3Port    int
	HTTPSPort int     // with Config.TLS
	CAFile    string  // with Config.TLS: the CA of the gateway's certificate
	OtherCA   string  // with Config.TLS: an unrelated CA
	Volumes   []*Proc // the three volume servers
	Gateway   *Proc   // the S3 gateway
	procs     []*Proc
	t         testing.TB
	ids       []Identity
}

// Proc is one weed process.
type Proc struct {
	Name string
	Port int
	argv []string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	t    testing.TB
}

// Start starts a cluster; the test's cleanup stops it and removes its
// files.
func Start(t testing.TB, c Config) *Cluster {
	t.Helper()
	bin := Bin
	if b := os.Getenv("BACKTORY_WEED"); b != "" {
		bin = b
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, bin, "run test/deps/weed.sh (builds SeaweedFS's weed once, about 10 minutes)")
	}
	if c.VolumeSizeLimitMB == 0 {
		c.VolumeSizeLimitMB = 64
	}
	if c.MaxVolumes == 0 {
		c.MaxVolumes = 10
	}
	dir, err := os.MkdirTemp("", "backtory-weed-")
	if err != nil {
		t.Fatal(err)
	}
	cl := &Cluster{Dir: dir, t: t, ids: append([]Identity{Admin}, c.Identities...)}
	t.Cleanup(func() {
		cl.Stop()
		if t.Failed() {
			for _, p := range cl.procs {
				b, _ := os.ReadFile(p.logFile())
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("the end of %s's log:\n%s", p.Name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
		}
		os.RemoveAll(dir)
	})
	ports := freePorts(t, 13)
	master := fmt.Sprintf("127.0.0.1:%d.%d", ports[0], ports[1])
	common := []string{"-ip=127.0.0.1", "-ip.bind=127.0.0.1"}
	mdir := cl.mkdir("master")
	m := cl.proc("master", ports[0], append([]string{"master", "-port=" + strconv.Itoa(ports[0]), "-port.grpc=" + strconv.Itoa(ports[1]),
		"-mdir=" + mdir, "-defaultReplication=001", "-telemetry=false", "-peers=none",
		"-volumeSizeLimitMB=" + strconv.Itoa(c.VolumeSizeLimitMB)}, common...))
	m.Launch()
	for i := range 3 {
		p, g := ports[2+2*i], ports[3+2*i]
		v := cl.proc(fmt.Sprintf("volume%d", i+1), p, append([]string{"volume", "-port=" + strconv.Itoa(p), "-port.grpc=" + strconv.Itoa(g),
			"-dir=" + cl.mkdir(fmt.Sprintf("volume%d", i+1)), "-max=" + strconv.Itoa(c.MaxVolumes), "-master=" + master,
			"-rack=rack1", "-dataCenter=dc1", "-preStopSeconds=0", "-minFreeSpace=1MiB"}, common...))
		v.Launch()
		cl.Volumes = append(cl.Volumes, v)
	}
	fp, fg := ports[8], ports[9]
	f := cl.proc("filer", fp, append([]string{"filer", "-port=" + strconv.Itoa(fp), "-port.grpc=" + strconv.Itoa(fg),
		"-master=" + master, "-defaultStoreDir=" + cl.mkdir("filer")}, common...))
	f.Launch()
	cl.S3Port = ports[10]
	conf := filepath.Join(dir, "s3.json")
	cl.writeIdentities(conf)
	cl.Gateway = cl.proc("s3", cl.S3Port, []string{"s3", "-port=" + strconv.Itoa(cl.S3Port), "-port.grpc=" + strconv.Itoa(ports[11]),
		"-filer=" + fmt.Sprintf("127.0.0.1:%d.%d", fp, fg), "-config=" + conf, "-ip.bind=127.0.0.1", "-ip=127.0.0.1",
		"-port.iceberg=0", "-port.lance=0"})
	if c.TLS {
		certs := testcerts.Get(t)
		cl.HTTPSPort, cl.CAFile, cl.OtherCA = ports[12], certs.CAFile, certs.OtherCAFile
		cl.Gateway.argv = append(cl.Gateway.argv, "-port.https="+strconv.Itoa(cl.HTTPSPort), "-cert.file="+certs.CertFile, "-key.file="+certs.KeyFile)
	}
	cl.Gateway.Launch()
	cl.waitReady()
	return cl
}

// Endpoint is the gateway's host:port.
func (cl *Cluster) Endpoint() string { return fmt.Sprintf("127.0.0.1:%d", cl.S3Port) }

// URL is the s3+http:// url of prefix in bucket.
func (cl *Cluster) URL(bucket, prefix string) string {
	return fmt.Sprintf("%s://%s/%s/%s", remote.SchemeS3HTTP, cl.Endpoint(), bucket, prefix)
}

// CredentialsFile writes id's keys to a file of mode 0600 and returns its
// path.
func (cl *Cluster) CredentialsFile(id Identity) string {
	p := filepath.Join(cl.Dir, "credentials-"+id.Name)
	body := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", id.AccessKey, id.SecretKey)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		cl.t.Fatal(err)
	}
	return p
}

// RemoteConfig is a backend configuration for prefix in bucket as id,
// path-style, with short timeouts.
func (cl *Cluster) RemoteConfig(id Identity, bucket, prefix string) remote.Config {
	return remote.Config{
		URL:             cl.URL(bucket, prefix),
		CredentialsFile: cl.CredentialsFile(id),
		Addressing:      "path",
		Timeout:         20 * time.Second,
		Connections:     2,
		PartSize:        5 << 20,
	}
}

// Client is a plain S3 client of the gateway as id.
func (cl *Cluster) Client(id Identity) *minio.Client {
	c, err := minio.New(cl.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(id.AccessKey, id.SecretKey, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		cl.t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket as Admin.
func (cl *Cluster) MakeBucket(name string) {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for range 100 { // the filer may still be settling
		if err = cl.Client(Admin).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err == nil {
			return
		}
		if r := minio.ToErrorResponse(err); r.StatusCode == 0 && r.Code == "" || r.StatusCode >= 400 && r.StatusCode < 500 {
			break // a bad name, or no answer: not worth waiting for
		}
		time.Sleep(200 * time.Millisecond)
	}
	cl.t.Fatalf("make bucket %s: %v", name, err)
}

// Stop kills every process of the cluster.
func (cl *Cluster) Stop() {
	for i := len(cl.procs) - 1; i >= 0; i-- {
		cl.procs[i].Kill()
	}
}

// Launch starts the process (again, after Kill) and waits until it
// listens on its port.
func (p *Proc) Launch() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start weed %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	addr := fmt.Sprintf("127.0.0.1:%d", p.Port)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(p.logFile())
			p.t.Fatalf("weed %s exited at start: %s", p.Name, tail(string(b)))
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("weed %s does not listen on %s: %v", p.Name, addr, err)
		}
	}
}

// Kill stops the process (SIGKILL, by its PID and process group).
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Restart kills the process and starts it again on the same ports.
func (p *Proc) Restart() {
	p.Kill()
	p.Launch()
}

func (p *Proc) logFile() string { return filepath.Join(p.dir, p.Name+".log") }

func (cl *Cluster) proc(name string, port int, args []string) *Proc {
	bin := Bin
	if b := os.Getenv("BACKTORY_WEED"); b != "" {
		bin = b
	}
	p := &Proc{Name: name, Port: port, argv: append([]string{bin}, args...), dir: cl.Dir, t: cl.t}
	cl.procs = append(cl.procs, p)
	return p
}

func (cl *Cluster) mkdir(name string) string {
	d := filepath.Join(cl.Dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		cl.t.Fatal(err)
	}
	return d
}

// writeIdentities writes the gateway's identities file.
func (cl *Cluster) writeIdentities(file string) {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type ident struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	var conf struct {
		Identities []ident `json:"identities"`
	}
	for _, id := range cl.ids {
		conf.Identities = append(conf.Identities, ident{id.Name, []cred{{id.AccessKey, id.SecretKey}}, id.Actions})
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		cl.t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		cl.t.Fatal(err)
	}
}

// waitReady waits until the gateway answers and the cluster takes a
// write (the volume servers have joined the master).
func (cl *Cluster) waitReady() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := cl.Client(Admin)
	const probe = "backtory-s3test-probe"
	var err error
	for ctx.Err() == nil {
		if err = c.MakeBucket(ctx, probe, minio.MakeBucketOptions{}); err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			_, err = c.PutObject(ctx, probe, "probe", strings.NewReader("ok"), 2, minio.PutObjectOptions{})
			if err == nil {
				c.RemoveObject(ctx, probe, "probe", minio.RemoveObjectOptions{})
				c.RemoveBucket(ctx, probe)
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	cl.t.Fatalf("the SeaweedFS cluster is not ready: %v", err)
}

// WaitGateway waits until the S3 gateway answers HTTP again.
func (cl *Cluster) WaitGateway() {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, err := http.Get("http://" + cl.Endpoint() + "/"); err == nil {
			r.Body.Close()
			return
		}
	}
	cl.t.Fatal("the S3 gateway does not answer")
}

func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
