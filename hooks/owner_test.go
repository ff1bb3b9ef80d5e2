package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

func TestCheckConfigOwner(t *testing.T) {
	// chown to other users needs root; the checks themselves do not.
	testenv.NeedRoot(t, "it chowns files")
	tests := []struct {
		name     string
		fileMode os.FileMode
		fileUID  int
		dirMode  os.FileMode
		dirUID   int
		want     string // "" for nil
	}{
		{"root 0600", 0o600, 0, 0o700, 0, ""},
		{"root 0644 in 0755", 0o644, 0, 0o755, 0, ""},
		{"group writable", 0o664, 0, 0o755, 0, "has hooks, but it is writable by group or others (mode 0664); hooks run as root, so fix it: chmod go-w "},
		{"others writable", 0o646, 0, 0o755, 0, "(mode 0646)"},
		{"owned by a user", 0o600, 1000, 0o755, 0, "has hooks, but it is owned by uid 1000; hooks run as root, so fix it: chown root "},
		{"directory writable by others", 0o600, 0, 0o777, 0, "but its directory "},
		{"directory owned by a user", 0o600, 0, 0o755, 1000, "is owned by uid 1000"},
		{"sticky directory like /tmp", 0o600, 0, 0o777 | os.ModeSticky, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etc")
			cfg := filepath.Join(dir, "backtory.yaml")
			mustDo(t, os.Mkdir(dir, 0o700))
			mustDo(t, os.WriteFile(cfg, []byte("hooks: {}\n"), 0o600))
			mustDo(t, os.Chmod(cfg, tt.fileMode))
			mustDo(t, os.Chown(cfg, tt.fileUID, 0))
			mustDo(t, os.Chmod(dir, tt.dirMode))
			mustDo(t, os.Chown(dir, tt.dirUID, 0))

			err := CheckConfigOwner(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message is not one line: %q", err)
			}
		})
	}
}

func TestCheckConfigOwnerSymlink(t *testing.T) {
	testenv.NeedRoot(t, "a config with hooks must be owned by root")
	dir := t.TempDir()
	bad := filepath.Join(dir, "real.yaml")
	link := filepath.Join(dir, "backtory.yaml")
	mustDo(t, os.WriteFile(bad, nil, 0o600))
	mustDo(t, os.Chmod(bad, 0o666))
	mustDo(t, os.Symlink("real.yaml", link))
	// The target is what counts, and the message names the config as given.
	err := CheckConfigOwner(link)
	if err == nil || !strings.Contains(err.Error(), "config "+link+" has hooks, but "+bad+" is writable") {
		t.Fatalf("err %v", err)
	}
	if err := CheckConfigOwner(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing config passed")
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
