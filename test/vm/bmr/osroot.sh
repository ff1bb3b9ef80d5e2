#!/bin/bash
# Usage: test/vm/bmr/osroot.sh OUT.tar ASSETS
#
# Builds the root tree of a tiny bootable "installed system" for the boot
# test of test/vm/bmr/run.sh and the drills: busybox-static, GRUB (i386-pc)
# with grub-install and grub-mkconfig, lvm, mdadm, sfdisk/lsblk/blkid/wipefs/dumpe2fs
# (what `backtory` needs to capture the layout), and in /boot the test bed's
# kernel and initramfs (ASSETS from test/vm/build.sh), whose init runs the
# script named by vm_script= on the kernel command line. Packages come from
# Debian's mirror with `apt-get download` into /var/cache/backtory-bmr and are
# unpacked with dpkg -x; nothing is installed on the host.
set -eu
out=$1
assets=$2
cache=/var/cache/backtory-bmr/debs
pkgs="grub-pc-bin grub-common grub2-common gettext-base lvm2 libdevmapper1.02.1 libdevmapper-event1.02.1 libaio1
libefiboot1 libefivar1 busybox-static mdadm"
mkdir -p "$cache"
want=""
for p in $pkgs; do
	ls "$cache/${p}_"*.deb >/dev/null 2>&1 || want="$want $p"
done
# One apt-get call for all missing packages (apt starts slowly under load).
if [ -n "$want" ]; then
	# shellcheck disable=SC2086 # a word list
	(cd "$cache" && apt-get -q download $want >/dev/null 2>&1) ||
		(apt-get -q update >/dev/null && cd "$cache" && apt-get -q download $want >&2)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/backtory-osroot.XXXXXX")
trap 'rm -rf "$work"' EXIT
x=$work/x
root=$work/root
for d in "$cache"/*.deb; do dpkg -x "$d" "$x"; done
mkdir -p "$root"/usr/bin "$root"/usr/sbin "$root"/usr/lib/x86_64-linux-gnu "$root"/usr/lib64 "$root"/usr/share \
	"$root"/etc/default "$root"/etc/lvm "$root"/boot "$root"/proc "$root"/sys "$root"/dev "$root"/run "$root"/tmp \
	"$root"/root "$root"/var/lib "$root"/backup "$root"/usr/local/bin "$root"/usr/share/locale
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

libpath=$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu
addlibs() { # copies the shared libraries a binary needs
	LD_LIBRARY_PATH=$libpath ldd "$1" | while read -r a b c _; do
		case "$b" in
		"=>") lib=$c ;;
		*) case "$a" in /*) lib=$a ;; *) continue ;; esac ;;
		esac
		[ "$lib" = not ] && { echo "osroot.sh: $1 needs $a" >&2; exit 1; }
		t=$root/usr/lib/x86_64-linux-gnu/${lib##*/}
		case "$lib" in /lib64/*) t=$root/usr/lib64/${lib##*/} ;; esac
		[ -e "$t" ] || cp -L "$lib" "$t"
	done
}
addbin() { # addbin DIR FILE...: copies programs (from the packages, else the host) into /usr/DIR
	dir=$1
	shift
	for b in "$@"; do
		src=""
		for d in "$x/usr/sbin" "$x/sbin" "$x/usr/bin" "$x/bin" /usr/sbin /sbin /usr/bin /bin; do
			if [ -e "$d/$b" ]; then
				src=$d/$b
				break
			fi
		done
		[ -n "$src" ] || { echo "osroot.sh: no $b" >&2; exit 1; }
		cp -L "$src" "$root/usr/$dir/$b"
		if file -L "$src" | grep -q 'dynamically linked'; then
			addlibs "$src"
		fi
	done
}

cp "$x/bin/busybox" "$root/usr/bin/busybox"
for a in $("$root/usr/bin/busybox" --list); do
	[ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
addbin sbin grub-install grub-mkconfig grub-probe lvm sfdisk wipefs blkid dumpe2fs mdadm
addbin bin grub-mkrelpath grub-editenv grub-script-check grub-mkimage gettext lsblk
for l in vgchange vgs pvs lvs vgmknodes; do ln -s lvm "$root/usr/sbin/$l"; done
cp -a "$x/usr/lib/grub" "$root/usr/lib/"
cp -a "$x/usr/share/grub" "$root/usr/share/"
cp -a "$x/etc/grub.d" "$root/etc/"
rm -f "$root/etc/grub.d/30_os-prober" "$root/etc/grub.d/30_uefi-firmware"
cat >"$root/etc/lvm/lvm.conf" <<'EOF'
activation {
	udev_sync = 0
	udev_rules = 0
}
devices {
	obtain_device_list_from_udev = 0
}
EOF
cat >"$root/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=backtory-test
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0 loglevel=4 panic=-1 no_timer_check vm_script=booted.sh"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "restored-os" >"$root/etc/hostname"
krel=$(awk '$1 == "kernel" { sub(/^linux-image-/, "", $2); print $2 }' "$assets/versions")
cp "$assets/vmlinuz" "$root/boot/vmlinuz-$krel"
cp "$assets/initrd.img" "$root/boot/initrd.img-$krel"
tar -C "$root" -cf "$out" .
