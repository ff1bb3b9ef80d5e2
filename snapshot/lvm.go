package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

func init() { registerKind(KindLVM, lvmKind{}) }

// lvmKind takes LVM2 snapshots.
type lvmKind struct{}

func (lvmKind) check(spec Spec) error {
	if spec.LV == "" {
		return errors.New("snapshot: lvm needs lv: <vg>/<lv>")
	}
	if _, _, err := splitLV(spec.LV); err != nil {
		return err
	}
	if spec.Size != "" {
		if _, err := sizeArgs(spec.Size); err != nil {
			return err
		}
	}
	return nil
}

// mountRoot holds the private mount points of LVM snapshots.
var mountRoot = "/run/backtory/snapshots"

// defaultLVMSize is the COW space of a classic snapshot when snapshot_size
// is not set.
const defaultLVMSize = "10%ORIGIN"

// lvmSnapshot is `lvcreate -s` (classic with COW space, or thin), mounted
// read-only at mountRoot/<vg>-<name>.
type lvmSnapshot struct {
	vg, name string
	size     string // "" for thin
	mnt      string
	path     string

	mu       sync.Mutex
	released bool
}

func (s *lvmSnapshot) Path() string { return s.path }
func (s *lvmSnapshot) Name() string { return s.vg + "/" + s.name }
func (s *lvmSnapshot) Kind() string { return KindLVM }

func (s *lvmSnapshot) Verify(ctx context.Context) error {
	return lvmValid(ctx, s.vg, s.name, s.size)
}

func (s *lvmSnapshot) Release(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	verr := lvmValid(ctx, s.vg, s.name, s.size)
	if errors.Is(verr, errLVGone) {
		verr = nil
	}
	if err := removeLVM(ctx, s.vg, s.name, s.mnt); err != nil {
		return errors.Join(verr, err)
	}
	s.released = true
	return verr
}

func (lvmKind) create(ctx context.Context, spec Spec, name string) (Snapshot, error) {
	vg, lv, _ := splitLV(spec.LV)
	src, err := realPath(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err)
	}
	out, err := run(ctx, "lvs", "--noheadings", "--separator", "|", "-o", "lv_kernel_major,lv_kernel_minor,segtype", vg+"/"+lv)
	if err != nil {
		return nil, fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err)
	}
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 3 {
		return nil, fmt.Errorf("lvm snapshot of %s: unexpected lvs output %q", spec.Path, out)
	}
	dev := strings.TrimSpace(f[0]) + ":" + strings.TrimSpace(f[1])
	thin := strings.TrimSpace(f[2]) == "thin"
	ms, err := mounts()
	if err != nil {
		return nil, fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err)
	}
	origin, rel, ok := mountOf(ms, src, func(m mountEntry) bool { return fmt.Sprintf("%d:%d", m.Major, m.Minor) == dev })
	if !ok {
		return nil, fmt.Errorf("lvm snapshot of %s: the path is not on a mounted filesystem of %s: check lv", spec.Path, spec.LV)
	}
	// A bind mount shows a subdirectory of the filesystem.
	rel = filepath.Join(strings.TrimPrefix(origin.Root, "/"), rel)
	opts, err := roMountOptions(origin.FSType)
	if err != nil {
		return nil, fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err)
	}

	size := spec.Size
	args := []string{"--snapshot", "--name", name}
	switch {
	case thin && size == "":
		args = append(args, "--setactivationskip", "n")
	default:
		if size == "" {
			size = defaultLVMSize
		}
		sa, err := sizeArgs(size)
		if err != nil {
			return nil, fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err)
		}
		args = append(args, sa...)
	}
	args = append(args, vg+"/"+lv)
	// lvcreate runs to its end even after Ctrl-C: the snapshot it makes is
	// then released below, instead of being left half-made.
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := run(cctx, "lvcreate", args...); err != nil {
		return nil, errors.Join(fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err),
			removeLVM(context.WithoutCancel(ctx), vg, name, ""))
	}
	s := &lvmSnapshot{vg: vg, name: name, size: size, mnt: filepath.Join(mountRoot, vg+"-"+name)}
	if thin && spec.Size == "" {
		s.size = ""
	}
	s.path = filepath.Join(s.mnt, rel)
	if err := os.MkdirAll(s.mnt, 0o700); err != nil {
		return nil, errors.Join(fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err), s.Release(ctx))
	}
	devPath := "/dev/" + vg + "/" + name
	if err := unix.Mount(devPath, s.mnt, origin.FSType, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, opts); err != nil {
		return nil, errors.Join(fmt.Errorf("lvm snapshot of %s: mount %s read-only (%s) on %s: %w", spec.Path, devPath, opts, s.mnt, err), s.Release(ctx))
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("lvm snapshot of %s: %w", spec.Path, err), s.Release(ctx))
	}
	return s, nil
}

func (lvmKind) cleanup(ctx context.Context, spec Spec) error {
	vg, lv, _ := splitLV(spec.LV)
	out, err := run(ctx, "lvs", "--noheadings", "--separator", "|", "-o", "lv_name,origin", vg)
	if err != nil {
		return fmt.Errorf("lvm cleanup of %s: %w", spec.LV, err)
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		name, orig, ok := strings.Cut(strings.TrimSpace(line), "|")
		if !ok || !strings.HasPrefix(name, Prefix) || strings.TrimSpace(orig) != lv {
			continue
		}
		if err := removeLVM(ctx, vg, name, filepath.Join(mountRoot, vg+"-"+name)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lvm cleanup of stale snapshots of %s: %w", spec.LV, firstError(errors.Join(errs...)))
	}
	return nil
}

var errLVGone = errors.New("logical volume not found")

// lvmValid checks the snapshot's state: an overflowed classic snapshot is
// marked invalid by the kernel ('I' in lv_attr) or shows 100% used.
func lvmValid(ctx context.Context, vg, name, size string) error {
	out, err := run(ctx, "lvs", "--noheadings", "--separator", "|", "-o", "lv_attr,snap_percent", vg+"/"+name)
	if err != nil {
		if lvMissing(err) {
			return errLVGone
		}
		return fmt.Errorf("check lvm snapshot %s/%s: %w", vg, name, err)
	}
	attr, pct, _ := strings.Cut(strings.TrimSpace(out), "|")
	attr = strings.TrimSpace(attr)
	if (len(attr) > 4 && attr[4] == 'I') || strings.TrimSpace(pct) == "100.00" {
		return fmt.Errorf("lvm snapshot %s/%s: its copy-on-write space (snapshot_size %s) filled up, so what was read is not the snapshot: raise snapshot_size: %w", vg, name, size, ErrInvalidated)
	}
	return nil
}

// removeLVM unmounts and removes a snapshot LV; one that is gone is fine.
func removeLVM(ctx context.Context, vg, name, mnt string) error {
	if mnt != "" {
		err := retryBusy(ctx, func() error { return unix.Unmount(mnt, 0) })
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount lvm snapshot %s/%s from %s: %w (close what uses it, then: umount %s; lvremove %s/%s)", vg, name, mnt, err, mnt, vg, name)
		}
		_ = os.Remove(mnt)
	}
	err := retryBusy(ctx, func() error {
		_, err := run(ctx, "lvremove", "--yes", vg+"/"+name)
		return err
	})
	if err != nil && !lvMissing(err) {
		return fmt.Errorf("remove lvm snapshot: %w (remove it by hand: lvremove %s/%s)", err, vg, name)
	}
	return nil
}

func lvMissing(err error) bool {
	return strings.Contains(err.Error(), "Failed to find") || strings.Contains(err.Error(), "not found")
}

// roMountOptions are the options that mount a snapshot of a mounted
// filesystem read-only without replaying its journal.
func roMountOptions(fstype string) (string, error) {
	switch fstype {
	case "ext4", "ext3":
		return "noload", nil
	case "ext2":
		return "", nil
	case "xfs":
		return "nouuid,norecovery", nil
	case "btrfs":
		return "", fmt.Errorf("a btrfs filesystem on LVM cannot be mounted twice; use snapshot: btrfs")
	default:
		return "", nil
	}
}

var (
	lvNameRE = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)
	sizeRE   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?$`)
	extentRE = regexp.MustCompile(`^[0-9]+%(ORIGIN|VG|FREE|PVS)$`)
)

// splitLV splits "vg/lv".
func splitLV(s string) (vg, lv string, err error) {
	vg, lv, ok := strings.Cut(strings.TrimPrefix(s, "/dev/"), "/")
	if !ok || !lvNameRE.MatchString(vg) || !lvNameRE.MatchString(lv) {
		return "", "", fmt.Errorf("lv %q is not <volume group>/<logical volume>", s)
	}
	return vg, lv, nil
}

// sizeArgs turns snapshot_size into lvcreate's -L or -l.
func sizeArgs(size string) ([]string, error) {
	switch {
	case sizeRE.MatchString(size):
		return []string{"--size", size}, nil
	case extentRE.MatchString(strings.ToUpper(size)):
		return []string{"--extents", strings.ToUpper(size)}, nil
	}
	return nil, fmt.Errorf("snapshot_size %q is neither a size (2G, 512M) nor a percentage (10%%ORIGIN, 50%%FREE)", size)
}
