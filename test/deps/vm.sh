#!/bin/bash
# Installs what the VM test bed (test/vm) needs on a Debian 12 host: qemu, the
# tools to unpack Debian packages and build OpenZFS kernel modules, and
# btrfs-progs for the host-side btrfs snapshot tests, and OVMF (UEFI firmware
# for qemu) for the UEFI bare-metal drills. It also enables the
# "contrib" component (zfs-dkms lives there) in a separate sources file.
# Idempotent and fast when everything is present.
set -eu

pkgs="qemu-system-x86 ovmf gcc binutils make libc6-dev bc perl cpio gzip xz-utils zstd kmod file btrfs-progs e2fsprogs"

contrib=/etc/apt/sources.list.d/backtory-contrib.sources
need_update=0
if [ ! -e "$contrib" ]; then
	cat >"$contrib" <<'SRC'
# Added by backtory's test/deps/vm.sh: zfs-dkms is in Debian's contrib component.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	need_update=1
fi

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ] && [ "$need_update" = 0 ]; then
	exit 0
fi

apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
read -ra missing_list <<<"$missing"
if [ "$need_update" = 1 ] || ! apt-cache show zfs-dkms >/dev/null 2>&1 ||
	! apt-cache show "${missing_list[@]}" >/dev/null 2>&1; then
	apt-get "${apt_opts[@]}" update -q
fi
if [ -n "$missing" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing_list[@]}"
fi
