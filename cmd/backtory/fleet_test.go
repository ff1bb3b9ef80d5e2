package main

// A fleet on one SeaweedFS bucket (docs/fleet.md): eight hosts back up at
// once, each sealed to its own key and the admin key; every point in time
// of every host restores exactly; one host's key cannot read another's; a
// host's credentials cannot delete (the store refuses its prune); the
// admin lists, verifies and prunes every host's sets.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/s3test"
)

const fleetBucket = "fleet"

// fleetPolicy denies s3:DeleteObject in the bucket to the hosts' users: a
// SeaweedFS bucket policy (its "Write" action covers delete too).
func fleetPolicy(ids []s3test.Identity) string {
	var arns []string
	for _, id := range ids {
		arns = append(arns, fmt.Sprintf("%q", "arn:aws:iam::000000000000:user/"+id.Name))
	}
	return `{"Version":"2012-10-17","Statement":[{"Sid":"HostsNeverDelete","Effect":"Deny",` +
		`"Principal":{"AWS":[` + strings.Join(arns, ",") + `]},"Action":["s3:DeleteObject"],` +
		`"Resource":["arn:aws:s3:::` + fleetBucket + `/*"]}]}`
}

func TestFleet(t *testing.T) {
	const n = 8
	var ids []s3test.Identity
	for i := 1; i <= n; i++ {
		ids = append(ids, s3test.Identity{Name: fmt.Sprintf("web%d", i), AccessKey: fmt.Sprintf("hostkey%d", i),
			SecretKey: fmt.Sprintf("host-secret-%d", i), Actions: []string{"Read:" + fleetBucket, "Write:" + fleetBucket, "List:" + fleetBucket}})
	}
	cl := s3test.Start(t, s3test.Config{Identities: ids})
	cl.MakeBucket(fleetBucket)
	if err := cl.Client(s3test.Admin).SetBucketPolicy(context.Background(), fleetBucket, fleetPolicy(ids)); err != nil {
		t.Fatalf("set the bucket policy: %v", err)
	}

	dir := t.TempDir()
	key := func(name string) (pub, sec, fpr string) {
		pub, sec = filepath.Join(dir, name+".pub.asc"), filepath.Join(dir, name+".sec.asc")
		code, out, stderr := backtoryOut(t, "key", "generate", "--name", "backtory "+name, "--public", pub, "--secret", sec)
		if code != 0 {
			t.Fatalf("key generate: %s", stderr)
		}
		fpr = strings.Fields(strings.TrimPrefix(out, "fingerprint "))[0]
		return pub, sec, fpr
	}
	adminPub, adminSec, adminFpr := key("admin")

	type host struct {
		name, src, cfg string
		fpr, pub       string
		points         []string // copies of the tree at each backup
	}
	hosts := make([]*host, n)
	for i := range hosts {
		h := &host{name: ids[i].Name, src: sampleTree(t, 0)}
		h.pub, _, h.fpr = key(h.name)
		sec := filepath.Join(dir, h.name+".sec.asc")
		rc := cl.RemoteConfig(ids[i], fleetBucket, "")
		h.cfg = filepath.Join(dir, h.name+".yaml")
		body := "host: " + h.name + "\nstate_dir: " + filepath.Join(dir, h.name+"-state") + "\n" +
			"sources:\n  - name: root\n    path: " + h.src + "\n" +
			"remote:\n  url: " + strings.TrimSuffix(rc.URL, "/") + "\n  credentials_file: " + rc.CredentialsFile + "\n  addressing: path\n  retries: 8\n" +
			"encryption:\n  recipients: [" + adminPub + "]\n  signing_key: " + sec + "\n" +
			"policy:\n  keep_fulls: 1\nvolume_size: 1MiB\n"
		if err := os.WriteFile(h.cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}

	// Three points in time (full, differential, full), all hosts at once.
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range 3 {
				if p > 0 {
					time.Sleep(1100 * time.Millisecond) // set ids have a resolution of one second
					os.WriteFile(filepath.Join(h.src, fmt.Sprintf("point-%d", p)), []byte(h.name+" changed\n"), 0o644)
				}
				args := []string{"backup", "--config", h.cfg}
				if p == 2 {
					args = append(args, "--full")
				}
				if code, _, stderr := backtoryOut(t, args...); code != 0 {
					errs[i] = fmt.Sprintf("%s backup %d: exit %d: %s", h.name, p, code, stderr)
					return
				}
				h.points = append(h.points, copyDir(t, h.src))
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}

	// Every host's every point in time restores exactly.
	for _, h := range hosts {
		sets := listSets(t, "--config", h.cfg)
		if len(sets) != 3 {
			t.Fatalf("%s: %d sets, want 3", h.name, len(sets))
		}
		for p, s := range sets {
			out := filepath.Join(t.TempDir(), "restored")
			mustRun(t, "restore", "--config", h.cfg, "--set", s.ID, "--to", out)
			assertSameTree(t, h.points[p], out)
		}
	}

	// One host's key cannot read another's sets.
	raw, _ := os.ReadFile(hosts[0].cfg)
	spy := filepath.Join(dir, "spy.yaml")
	os.WriteFile(spy, []byte(strings.Replace(string(raw), "host: web1\n", "host: web2\n", 1)), 0o600)
	if code, stderr := backtory(t, "list", "--config", spy); code != exitFailed {
		t.Fatalf("web1's key listing web2's sets: exit %d, %s", code, stderr)
	} else {
		t.Logf("web1's key on web2's sets: %s", strings.TrimSpace(stderr))
	}

	// A host's prune is refused by the store, in one line, and deletes nothing.
	code, stderr := backtory(t, "prune", "--config", hosts[0].cfg)
	if last := lastLine(stderr); code != exitFailed || !strings.Contains(last, "access denied") || !isErrorLine(last) {
		t.Fatalf("a host's prune: exit %d, stderr %q; want exit 1 and access denied", code, stderr)
	}
	if sets := listSets(t, "--config", hosts[0].cfg); len(sets) != 3 {
		t.Fatalf("after the refused prune web1 has %d sets, want 3", len(sets))
	}

	// The admin: every host's sets, verified, then pruned by the policy.
	admin := filepath.Join(dir, "admin.yaml")
	recips := []string{adminPub}
	signers := ""
	for _, h := range hosts {
		recips = append(recips, h.pub)
		signers += "  " + h.name + ": " + h.fpr + "\n"
	}
	arc := cl.RemoteConfig(s3test.Admin, fleetBucket, "")
	body := "host: admin\nstate_dir: " + filepath.Join(dir, "admin-state") + "\n" +
		"sources:\n  - name: root\n    path: /nonexistent\n" +
		"remote:\n  url: " + strings.TrimSuffix(arc.URL, "/") + "\n  credentials_file: " + arc.CredentialsFile + "\n  addressing: path\n" +
		"encryption:\n  recipients: [" + strings.Join(recips, ", ") + "]\n  decryption_keys: [" + adminSec + "]\n  signer_fingerprint: " + adminFpr + "\n" +
		"host_signers:\n" + signers + "policy:\n  keep_fulls: 1\n"
	if err := os.WriteFile(admin, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if all := listSets(t, "--config", admin, "--all-hosts"); len(all) != 3*n {
		t.Fatalf("list --all-hosts: %d sets, want %d", len(all), 3*n)
	}
	if _, out, stderr := backtoryOut(t, "verify", "--config", admin, "--all-hosts"); !strings.Contains(out, fmt.Sprintf("%d sets verified", 3*n)) {
		t.Fatalf("verify --all-hosts: %s%s", out, stderr)
	}
	mustRun(t, "prune", "--config", admin, "--all-hosts")
	all := listSets(t, "--config", admin, "--all-hosts")
	if len(all) != n {
		t.Fatalf("after the admin's prune: %d sets, want %d (keep_fulls: 1)", len(all), n)
	}
	for _, s := range all {
		if s.Kind != "full" {
			t.Fatalf("after the admin's prune %s/%s is left, want only the newest full", s.Host, s.ID)
		}
	}
	// The kept full still restores exactly, with the host's own key.
	for _, h := range hosts[:2] {
		out := filepath.Join(t.TempDir(), "restored")
		mustRun(t, "restore", "--config", h.cfg, "--to", out)
		assertSameTree(t, h.points[2], out)
	}
}

// listSets runs list --json and returns its rows, oldest first.
func listSets(t *testing.T, args ...string) []setRow {
	t.Helper()
	code, stdout, stderr := backtoryOut(t, append([]string{"list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	var rows []setRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("list --json: %v", err)
	}
	return rows
}
