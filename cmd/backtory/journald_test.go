package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// TestJournald runs a backup as a systemd service's stderr would be wired:
// to a real systemd-journald (started in a mount namespace of its own, on
// tmpfs, so the host's journal is untouched), with JOURNAL_STREAM naming
// the stream as systemd sets it (systemd.exec(5)). journalctl then reads
// back each line with its priority: info 6, warning 4, error 3, and no
// "<N>" prefix or timestamp left in the message.
func TestJournald(t *testing.T) {
	testenv.NeedRoot(t, "mounts tmpfs over the journal's directories in a namespace")
	const journald = "/lib/systemd/systemd-journald"
	if _, err := os.Stat(journald); err != nil {
		testenv.Missing(t, journald, "run test/deps/base.sh (Debian package systemd)")
	}
	for _, tool := range []string{"unshare", "systemd-cat", "journalctl"} {
		testenv.NeedTool(t, tool)
	}
	bin := sigBuild(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sampleTree(t, 0), "hooks:\n  post_backup:\n    - run: 'exit 3'\n      on_error: continue\n")
	script := `set -e
mkdir -p /run/systemd/journal
mount -t tmpfs tmpfs /run/systemd/journal
mkdir -p /run/log/journal
mount -t tmpfs tmpfs /run/log/journal
/lib/systemd/systemd-journald & jpid=$!
trap 'kill $jpid' EXIT
i=0; until [ -S /run/systemd/journal/stdout ]; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done
# As systemd does for StandardError=journal: stderr is a stream to journald,
# and JOURNAL_STREAM is its device and inode.
systemd-cat -t backtory sh -c 'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$@"' sh "$BIN" backup --config "$CFG" || echo "exit $?" >"$OUT/exit"
systemd-cat -t backtory sh -c 'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$@"' sh "$BIN" restore --config "$CFG" --set no-such-set --to "$OUT/r" || echo "exit $?" >"$OUT/exit2"
journalctl --sync 2>/dev/null || sleep 1
journalctl -D /run/log/journal -t backtory -o json --no-pager >"$OUT/journal.json"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+bin, "CFG="+cfg, "OUT="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("journald run: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "exit")); strings.TrimSpace(string(b)) != "exit 3" {
		t.Errorf("backup under the journal: %q, want exit 3", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "exit2")); strings.TrimSpace(string(b)) != "exit 2" {
		t.Errorf("restore of a set that does not exist, under the journal: %q, want exit 2", b)
	}
	f, err := os.Open(filepath.Join(dir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ MESSAGE, PRIORITY string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journalctl -o json: %v: %s", err, sc.Bytes())
		}
		got = append(got, e.PRIORITY+" "+e.MESSAGE)
	}
	want := []string{
		"6 backtory: writing a full ",
		"6 backtory: backup done ",
		`4 backtory: warning: post_backup hook "exit 3": exit status 3`,
		"4 backtory: warning: backup done with 1 warning: ",
		`3 backtory: `,
	}
	if len(got) != len(want) {
		t.Fatalf("the journal holds %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("journal line %d: %q, want it to start with %q", i, got[i], w)
		}
	}
	if !strings.Contains(got[4], "no-such-set") {
		t.Errorf("the error line does not name the set: %q", got[4])
	}
}
