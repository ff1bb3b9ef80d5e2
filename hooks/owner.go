package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckConfigOwner refuses a config file whose hooks someone else could
// have written: hooks run with backtory's privileges (root), so whoever can
// change the file could run anything as root. Call it when the config has
// hooks.
//
// The file, after symlinks are resolved, must be owned by root (or by the
// user running backtory) and not writable by group or others; so must each
// directory above it, unless the directory is sticky (like /tmp), where
// others cannot replace a file they do not own.
func CheckConfigOwner(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("check owner of config %s: %w", path, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return fmt.Errorf("check owner of config %s: %w", path, err)
	}
	if err := checkOwner(path, real, false); err != nil {
		return err
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		if err := checkOwner(path, dir, true); err != nil {
			return err
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

// checkOwner checks one file or directory on the way to config.
func checkOwner(config, p string, isDir bool) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("check owner of config %s: %w", config, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("check owner of config %s: cannot read the owner of %s", config, p)
	}
	what := "config " + config
	if p != config {
		what = fmt.Sprintf("config %s has hooks, but %s", config, p)
		if isDir {
			what = fmt.Sprintf("config %s has hooks, but its directory %s", config, p)
		}
	} else {
		what += " has hooks, but it"
	}
	if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d; hooks run as root, so fix it: chown root %s", what, uid, p)
	}
	sticky := isDir && fi.Mode()&os.ModeSticky != 0
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && !sticky {
		return fmt.Errorf("%s is writable by group or others (mode %04o); hooks run as root, so fix it: chmod go-w %s", what, perm, p)
	}
	return nil
}
