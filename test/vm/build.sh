#!/bin/bash
# Builds (or finds in the cache) the VM test bed's boot assets: Debian's kernel
# and an initramfs with busybox, OpenZFS (built from zfs-dkms for that kernel),
# LVM2, md RAID (mdadm), dm-crypt (cryptsetup), efivarfs, the filesystem
# tools, and what recover.sh --stock restores with (gpg, zstd, GNU tar, rdiff). Prints the directory that holds `vmlinuz` and
# `initrd.img`. Everything comes from Debian packages fetched with
# `apt-get download` and unpacked with `dpkg -x`; nothing is installed on the
# host. Run test/deps/vm.sh first.
#
# VM_ZFS=0 leaves OpenZFS out (the md/LUKS drills do not need it, and a cold
# build then takes a minute instead of ten).
#
# Cache: $BACKTORY_VM_CACHE (default /var/cache/backtory-vm)
#   debs/                      downloaded .deb files
#   zfs/<zfs>_<kernel>/        OpenZFS modules, keyed by both package versions
#   assets/<hash>/             vmlinuz + initrd.img, keyed by every input
# A cold build takes ~10 min on 2 cores (the ZFS modules); a warm one seconds.
set -eu
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
cache=${BACKTORY_VM_CACHE:-/var/cache/backtory-vm}
mkdir -p "$cache/debs" "$cache/zfs" "$cache/assets"

log() { echo "test/vm/build: $*" >&2; }
die() { log "$*"; exit 1; }

# Candidate versions, asked of apt-cache once (it is slow under load).
declare -A cand
load_candidates() {
	while read -r p v; do cand[$p]=$v; done < <(apt-cache policy "$@" 2>/dev/null |
		awk '/^[^ ].*:$/ {p=substr($0, 1, length($0)-1)} /^  Candidate:/ {print p, $2}')
}
candidate() {
	[ -n "${cand[$1]:-}" ] || load_candidates "$1"
	v=${cand[$1]:-}
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then
		die "package $1 not found: run test/deps/vm.sh (it enables contrib and runs apt-get update)"
	fi
	echo "$v"
}

# fetch PKG...: downloads the candidate version of each package into the cache
# (once, all missing ones in one apt-get call: apt starts slowly under load)
# and prints the .deb paths.
debpath() {
	local v
	v=$(candidate "$1")
	find "$cache/debs" -maxdepth 1 -name "${1}_${v//:/%3a}_*.deb" | head -n1
}
fetch() {
	local p want=()
	for p in "$@"; do
		[ -n "$(debpath "$p")" ] || want+=("$p=$(candidate "$p")")
	done
	if [ ${#want[@]} -gt 0 ]; then
		(cd "$cache/debs" && apt-get -q download "${want[@]}" >/dev/null 2>&1) ||
			(cd "$cache/debs" && apt-get -q download "${want[@]}" >&2) ||
			die "apt-get download ${want[*]} failed: if the mirror has moved on, run apt-get update"
	fi
	for p in "$@"; do
		f=$(debpath "$p")
		[ -n "$f" ] || die "apt-get download $p gave no .deb"
		echo "$f"
	done
}

# Versions that key the caches.
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64: run test/deps/vm.sh"
krel=${kpkg#linux-image-}           # 6.1.0-56-amd64
kabi=${krel%-amd64}                 # 6.1.0-56
kbuild=linux-kbuild-$(echo "$kabi" | cut -d. -f1,2)

# Userland that goes into the initramfs, with the libraries that a stock
# Debian 12 host may lack. Shared libraries are resolved with ldd, first in
# the unpacked packages, then on the host (the host is Debian 12 too).
userpkgs=(busybox-static zfsutils-linux libzfs4linux libnvpair3linux libuutil3linux libzpool5linux
lvm2 dmsetup libdevmapper1.02.1 libdevmapper-event1.02.1 libaio1 thin-provisioning-tools
e2fsprogs libext2fs2 libcom-err2 libss2 xfsprogs libinih1 liburcu8 btrfs-progs liblzo2-2
mount util-linux libmount1 libblkid1 libsmartcols1 libuuid1 libudev1 libtirpc3 libtirpc-common
mdadm cryptsetup-bin libcryptsetup12 libpopt0 libargon2-1 libjson-c5 dosfstools gpg gpg-agent gpgconf zstd tar rdiff
libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libssl3 libsystemd0 libcap2 libgcrypt20 libgpg-error0 liblz4-1 libzstd1 liblzma5 libselinux1 libpcre2-8-0 libreadline8 libtinfo6 libedit2 libbsd0 libmd0 zlib1g)

load_candidates "$kpkg" zfs-dkms "linux-headers-$krel" "linux-headers-$kabi-common" "$kbuild" "${userpkgs[@]}"
kver=$(candidate "$kpkg") # 6.1.192-2
zver=$(candidate zfs-dkms)
with_zfs=${VM_ZFS:-1}
[ "$with_zfs" = 1 ] || zver=none
versions=$( {
	echo "kernel $kpkg $kver"
	echo "zfs $zver"
	for p in "${userpkgs[@]}"; do echo "$p $(candidate "$p")"; done
	sha256sum "$here/build.sh" "$here/init"
} )
key=$(echo "$versions" | sha256sum | cut -c1-16)
out=$cache/assets/$key
if [ -s "$out/initrd.img" ] && [ -s "$out/vmlinuz" ]; then
	echo "$out"
	exit 0
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. OpenZFS kernel modules for this kernel, cached by versions.
zdir=$cache/zfs/${zver}_${krel}_${kver}
if [ "$with_zfs" != 1 ]; then
	zdir=$work/nozfs
	mkdir -p "$zdir"
elif [ ! -e "$zdir/done" ]; then
	log "building OpenZFS $zver modules for $krel ($kver); this takes ~10 min on 2 cores, once"
	start=$(date +%s)
	hs=$work/headers
	mkdir -p "$hs"
	for d in $(fetch "linux-headers-$krel" "linux-headers-$kabi-common" "$kbuild" zfs-dkms); do
		dpkg -x "$d" "$hs"
	done
	# The packages use absolute paths (symlinks, includes) into /usr/src and
	# /usr/lib/linux-kbuild-*: point them into the unpacked tree.
	find "$hs" -type l | while read -r l; do
		t=$(readlink "$l")
		case "$t" in /usr/*) ln -sfn "$hs$t" "$l" ;; esac
	done
	sed -i "s|/usr/src/|$hs/usr/src/|g" "$hs/usr/src/linux-headers-$krel/Makefile"
	src=$(ls -d "$hs"/usr/src/zfs-*)
	(
		cd "$src"
		./configure --with-config=kernel \
			--with-linux="$hs/usr/src/linux-headers-$kabi-common" \
			--with-linux-obj="$hs/usr/src/linux-headers-$krel" >"$work/zfs-configure.log" 2>&1 ||
			{ tail -n 30 "$work/zfs-configure.log" >&2; exit 1; }
		make -j"$(nproc)" >"$work/zfs-make.log" 2>&1 ||
			{ tail -n 30 "$work/zfs-make.log" >&2; exit 1; }
	) || die "OpenZFS module build failed (logs above)"
	tmp=$(mktemp -d "$cache/zfs/tmp.XXXXXX")
	find "$src" -name '*.ko' -exec cp {} "$tmp/" \;
	strip --strip-debug "$tmp"/*.ko # 120 MB of debug info otherwise
	ls "$tmp"/zfs.ko >/dev/null || die "OpenZFS build produced no zfs.ko"
	echo "built in $(($(date +%s) - start)) s on $(nproc) cores" >"$tmp/done"
	rm -rf "$zdir"
	mv "$tmp" "$zdir"
	rm -rf "$hs"
	log "OpenZFS modules: $(cat "$zdir/done")"
fi

# 2. Kernel image and the modules the tests need, with their dependencies.
log "assembling initramfs $key"
kroot=$work/kernel
mkdir -p "$kroot"
dpkg -x "$(fetch "$kpkg")" "$kroot"
root=$work/root
mkdir -p "$root"/usr/bin "$root"/usr/sbin "$root"/usr/lib/x86_64-linux-gnu "$root"/usr/lib64 \
	"$root"/proc "$root"/sys "$root"/dev "$root"/run "$root"/tmp "$root"/host "$root"/mnt "$root"/etc \
	"$root"/var/tmp
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
mdir=$root/usr/lib/modules/$krel
mkdir -p "$mdir"
cp "$kroot/boot/vmlinuz-$krel" "$work/vmlinuz"

kmods=$kroot/lib/modules/$krel
find "$kmods" "$zdir" -name '*.ko*' >"$work/allmods"
modpath() { # name -> path of its .ko (dash and underscore are the same)
	n=$(echo "$1" | tr - _)
	awk -v n="$n" '{ b=$0; sub(".*/", "", b); sub("\\.ko.*", "", b); gsub("-", "_", b); if (b == n) { print; exit } }' "$work/allmods"
}
builtin() { grep -q "/$(echo "$1" | tr _ -)\.ko$\|/$(echo "$1" | tr - _)\.ko$" "$kmods/modules.builtin"; }
: >"$work/order"
addmod() { # depth-first, dependencies first
	local p d n
	n=$(echo "$1" | tr - _)
	grep -qx "$n" "$work/seen" 2>/dev/null && return 0
	echo "$n" >>"$work/seen"
	p=$(modpath "$1")
	if [ -z "$p" ]; then
		builtin "$1" && return 0
		die "kernel module $1 not found"
	fi
	for d in $(modinfo -F depends "$p" | tr , ' '); do addmod "$d"; done
	cp "$p" "$mdir/"
	strip --strip-debug "$mdir/$(basename "$p")" # the ZFS build keeps debug info
	basename "$p" >>"$work/order"
}
for m in virtio_pci virtio_blk virtio_console 9pnet_virtio 9p loop crc32c_generic ext4 xfs btrfs \
	dm_mod dm_snapshot dm_thin_pool md_mod raid0 raid1 raid10 dm_crypt xts aes_generic cbc sha256_generic \
	sha512_generic af_alg algif_skcipher algif_hash efivarfs; do
	addmod "$m"
done
if [ "$with_zfs" = 1 ]; then
	addmod spl
	addmod zfs
fi
cp "$work/order" "$root/etc/modules-order"

# 3. Userland.
ur=$work/user
mkdir -p "$ur"
for d in $(fetch "${userpkgs[@]}"); do dpkg -x "$d" "$ur"; done
libpath=$ur/lib/x86_64-linux-gnu:$ur/usr/lib/x86_64-linux-gnu
addlibs() { # copies the shared libraries a binary needs
	LD_LIBRARY_PATH=$libpath ldd "$1" 2>/dev/null | while read -r a b c _; do
		case "$b" in
		"=>") [ "$c" = "not" ] && die "$1 needs $a, which no package provides: add it to userpkgs"
			lib=$c ;;
		*) case "$a" in /*) lib=$a ;; *) continue ;; esac ;;
		esac
		t=$root/usr/lib/x86_64-linux-gnu/$(basename "$lib")
		case "$lib" in /lib64/*) t=$root/usr/lib64/$(basename "$lib") ;; esac
		[ -e "$t" ] || cp -L "$lib" "$t"
	done
}
addbin() { # copies a program from the unpacked packages, with its libraries
	local b d src dst
	for b in "$@"; do
		src=""
		for d in usr/sbin sbin usr/bin bin; do
			[ -e "$ur/$d/$b" ] && { src=$ur/$d/$b; break; }
		done
		[ -n "$src" ] || die "program $b not found in the unpacked packages"
		case "$d" in *sbin) dst=$root/usr/sbin/$b ;; *) dst=$root/usr/bin/$b ;; esac
		if [ -L "$src" ] && [ "$(basename "$(readlink "$src")")" = lvm ]; then
			ln -sf lvm "$dst"
			continue
		fi
		cp -L "$src" "$dst"
		addlibs "$dst"
	done
}
addbin zfs zpool mount.zfs lvm dmsetup mke2fs e2fsck tune2fs mkfs.xfs xfs_repair mkfs.btrfs btrfs \
	mount umount blkid losetup thin_check mdadm cryptsetup mkfs.fat gpg gpg-agent gpgconf zstd tar rdiff
for l in lvcreate lvremove lvrename lvs lvscan lvchange lvextend lvdisplay vgcreate vgchange vgremove vgs \
	vgscan vgdisplay vgmknodes pvcreate pvremove pvs pvdisplay; do
	ln -sf lvm "$root/usr/sbin/$l"
done
ln -sf mke2fs "$root/usr/sbin/mkfs.ext4"
ln -sf e2fsck "$root/usr/sbin/fsck.ext4"
cp "$ur/bin/busybox" "$root/usr/bin/busybox"
# busybox applets for everything else (never shadowing a real tool)
for a in $("$root/usr/bin/busybox" --list-full); do
	case "$a" in */linuxrc | linuxrc) continue ;; esac
	n=$(basename "$a")
	[ -e "$root/usr/bin/$n" ] || [ -e "$root/usr/sbin/$n" ] || ln -s busybox "$root/usr/bin/$n"
done
mkdir -p "$root/etc/lvm" "$root/etc/zfs"
# No udev in the VM: LVM must create its device nodes itself.
cat >"$root/etc/lvm/lvm.conf" <<'EOF'
activation {
	udev_sync = 0
	udev_rules = 0
}
devices {
	obtain_device_list_from_udev = 0
}
global {
	use_lvmetad = 0
}
EOF
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "$krel" >"$root/etc/kernel-release"
cp "$here/init" "$root/init"
chmod 0755 "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"
tmp=$(mktemp -d "$cache/assets/tmp.XXXXXX")
mv "$work/vmlinuz" "$work/initrd.img" "$tmp/"
echo "$versions" >"$tmp/versions"
rm -rf "$out"
mv "$tmp" "$out"
# Keep the three newest asset sets (other checkouts may use older ones).
find "$cache/assets" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +4 |
	cut -d' ' -f2- | xargs -r rm -rf
log "initramfs $(du -h "$out/initrd.img" | cut -f1), kernel $krel"
echo "$out"
