// Package examples holds no code: it tests the files shipped in examples/
// (systemd units, the cron file, database hooks) against the real tools:
// shellcheck, systemd-analyze, and a real MariaDB server run through real
// backtory backups.
package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backtory/backtory/internal/testenv"
)

func TestHooksShellcheck(t *testing.T) {
	sc := testenv.NeedTool(t, "shellcheck")
	scripts, _ := filepath.Glob("hooks/*.sh")
	if len(scripts) == 0 {
		t.Fatal("no hooks")
	}
	for _, s := range scripts {
		if out, err := exec.Command(sc, "--shell=sh", s).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
		if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
}

// TestSystemdUnits has systemd-analyze check the units, with the binary's
// path pointing at a real file.
func TestSystemdUnits(t *testing.T) {
	sa := testenv.NeedTool(t, "systemd-analyze")
	dir := t.TempDir()
	units, _ := filepath.Glob("systemd/*")
	var args []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/sbin/backtory"), []byte("/bin/true"))
		p := filepath.Join(dir, filepath.Base(u))
		os.WriteFile(p, b, 0o644)
		if !strings.Contains(p, "@") {
			args = append(args, p)
		}
	}
	cmd := exec.Command(sa, append([]string{"verify"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestCronFile(t *testing.T) {
	b, err := os.ReadFile("cron/backtory")
	if err != nil {
		t.Fatal(err)
	}
	jobs := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.Contains(strings.SplitN(l, " ", 2)[0], "=") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 7 || f[5] != "root" || f[6] != "backtory" {
			t.Errorf("cron line %q: want 5 time fields, the user root, and a backtory command", l)
		}
		jobs++
	}
	if jobs != 2 || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("cron file: %d jobs; it must end in a newline", jobs)
	}
}

// mariadb is a MariaDB server the test started, on a socket in dir.
type mariadb struct {
	socket string
	cmd    *exec.Cmd
}

func startMariaDB(t *testing.T) *mariadb {
	t.Helper()
	install := testenv.NeedTool(t, "mariadb-install-db")
	server := testenv.NeedTool(t, "mariadbd")
	testenv.NeedTool(t, "mysql")
	testenv.NeedTool(t, "mysqldump")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(install, "--no-defaults", "--user=root", "--datadir="+data,
		"--auth-root-authentication-method=socket", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m := &mariadb{socket: filepath.Join(dir, "sock")}
	m.cmd = exec.Command(server, "--no-defaults", "--user=root", "--datadir="+data, "--socket="+m.socket,
		"--skip-networking", "--pid-file="+filepath.Join(dir, "pid"), "--log-error="+filepath.Join(dir, "err.log"))
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			m.cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		if _, err := m.sql("SELECT 1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			t.Fatalf("mariadbd does not answer:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := m.sql("CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO shop.orders VALUES (1)"); err != nil {
		t.Fatalf("create table: %v\n%s", err, out)
	}
	return m
}

func (m *mariadb) sql(q string) (string, error) {
	out, err := exec.Command("mysql", "--socket="+m.socket, "--batch", "--skip-column-names", "-e", q).CombinedOutput()
	return string(out), err
}

// buildBacktory builds the backtory binary.
func buildBacktory(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "backtory")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/backtory").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestMySQLHooks runs real backups of a tree holding a dump, with the
// freeze hook around the snapshot and a probe that tries to write while the
// lock should be held.
func TestMySQLHooks(t *testing.T) {
	testenv.NeedRoot(t, "hooks need a root-owned config, and the test runs mariadbd as root")
	db := startMariaDB(t)
	bin := buildBacktory(t)
	freeze, _ := filepath.Abs("hooks/mysql-freeze.sh")
	dump, _ := filepath.Abs("hooks/mysql-dump.sh")
	sock := "--socket=" + db.socket

	// probe tries an insert that waits at most 1 s for a lock and appends
	// "blocked" or "inserted" to the probe log.
	probe := func(log string, id int) string {
		return `"mysql ` + sock + ` -e 'SET SESSION lock_wait_timeout=1; INSERT INTO shop.orders VALUES (` +
			string(rune('0'+id)) + `)' 2>/dev/null && echo inserted >> ` + log + ` || echo blocked >> ` + log + `"`
	}
	for _, c := range []struct {
		name     string
		hooks    func(dir, log string) string
		env      []string
		code     int
		probes   string
		stderr   string
		wantDump bool
	}{
		{
			name: "freeze holds the lock from pre_snapshot to post_snapshot",
			hooks: func(dir, log string) string {
				return "  pre_backup: [[" + dump + ", " + sock + "]]\n" +
					"  pre_snapshot: [[" + freeze + ", " + sock + "], " + probe(log, 2) + "]\n" +
					"  post_snapshot: [[" + freeze + "], " + probe(log, 3) + "]\n"
			},
			code: 0, probes: "blocked\ninserted\n", wantDump: true,
		},
		{
			name: "FLUSH TABLES WITH READ LOCK in a one-shot client protects nothing",
			hooks: func(dir, log string) string {
				return `  pre_snapshot: ["mysql ` + sock + ` -e 'FLUSH TABLES WITH READ LOCK'", ` + probe(log, 4) + "]\n"
			},
			code: 0, probes: "inserted\n",
		},
		{
			name: "freeze fails when the server is down; post_snapshot has nothing to undo",
			hooks: func(dir, log string) string {
				return "  pre_snapshot: [[" + freeze + ", --socket=" + dir + "/nothing]]\n" +
					"  post_snapshot: [[" + freeze + "]]\n"
			},
			code: 1, stderr: "mysql-freeze: cannot lock: ",
		},
		{
			name: "a lock that expired before post_snapshot is a warning",
			hooks: func(dir, log string) string {
				return "  pre_snapshot: [[" + freeze + ", " + sock + "]]\n" +
					`  post_snapshot: ["sleep 2", [` + freeze + "]]\n"
			},
			env:  []string{"MYSQL_FREEZE_MAX=1"},
			code: 3, stderr: "the lock ended before the snapshot did",
		},
		{
			name: "a failing dump aborts the run",
			hooks: func(dir, log string) string {
				return "  pre_backup: [[" + dump + ", --socket=" + dir + "/nothing]]\n"
			},
			code: 1, stderr: "mysqldump: Got error",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			os.Mkdir(src, 0o755)
			os.WriteFile(filepath.Join(src, "app.conf"), []byte("x\n"), 0o644)
			log := filepath.Join(dir, "probes")
			cfg := filepath.Join(dir, "backtory.yaml")
			body := "host: testhost\nstate_dir: " + filepath.Join(dir, "state") + "\n" +
				"sources:\n  - name: root\n    path: " + src + "\n" +
				"remote:\n  url: file://" + filepath.Join(dir, "remote") + "\n" +
				"hooks:\n" + c.hooks(dir, log)
			os.WriteFile(cfg, []byte(body), 0o600)
			freezeDir := filepath.Join(dir, "freeze")
			cmd := exec.Command(bin, "backup", "--config", cfg)
			cmd.Env = append(os.Environ(), append(c.env, "MYSQL_DUMP_DIR="+filepath.Join(src, "db"), "MYSQL_FREEZE_DIR="+freezeDir)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("backup: exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr.String(), c.code, c.stderr)
			}
			if b, _ := os.ReadFile(log); string(b) != c.probes {
				t.Errorf("probes: %q, want %q", b, c.probes)
			}
			if _, err := os.Stat(freezeDir); err == nil {
				t.Errorf("the freeze hook left its state in %s", freezeDir)
			}
			if pids := processesWith("MYSQL_FREEZE_DIR=" + freezeDir); len(pids) > 0 {
				t.Errorf("the freeze hook left processes behind: %v", pids)
			}
			dumps, _ := filepath.Glob(filepath.Join(src, "db", "*"))
			if c.wantDump {
				// The dump is in the backup, complete.
				out := filepath.Join(dir, "restored")
				if b, err := exec.Command(bin, "restore", "--config", cfg, "--to", out).CombinedOutput(); err != nil {
					t.Fatalf("restore: %v\n%s", err, b)
				}
				b, _ := os.ReadFile(filepath.Join(out, "db", "all-databases.sql"))
				if !bytes.Contains(b, []byte("CREATE TABLE `orders`")) || !bytes.Contains(b, []byte("-- Dump completed")) {
					t.Errorf("the restored dump lacks the table or is incomplete (%d bytes)", len(b))
				}
			} else if len(dumps) > 0 {
				t.Errorf("files left in the dump directory: %v", dumps)
			}
		})
	}
}

// processesWith returns the PIDs of processes whose environment holds v.
func processesWith(v string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == v {
				pids = append(pids, e.Name())
			}
		}
	}
	return pids
}
