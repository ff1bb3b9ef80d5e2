#!/bin/bash
# Usage: test/vm/bmr/drills.sh [raid] [raid-stock]
#
# The bare-metal drills of issue 21 in the VM test bed (test/vm/run), each
# a tiny Debian-like system (osroot.sh) installed on a server layout, backed
# up from inside, destroyed, recovered with recover.sh bare-metal and booted
# from the restored disks by qemu (TCG) to a script that checks the marker
# file the differential wrote:
#   raid        drill 1 (BIOS, md RAID1 -> LVM -> ext4 root, xfs, swap) and
#               drill 4 (one member disk missing: the array comes back
#               degraded; the lone disk boots); raid-guest.sh
#   raid-stock  the same restored with --stock (gpg, zstd, tar, rdiff)
# Default: raid. make test-bmr runs raid and raid-stock. Each drill prints "BMR-TIME phase seconds" lines and a
# summary; the exit status is the number of failed drills.
# shellcheck disable=SC2001 # sed prefixes every line
set -eu
cd "$(dirname "$0")/../../.."
here=test/vm/bmr
[ $# -gt 0 ] || set -- raid
bash test/deps/vm.sh
bash test/deps/recovery.sh
# Drills 1 and 4 need no OpenZFS: an image without it builds in a minute cold.
VM_ASSETS=$(VM_ZFS=0 test/vm/build.sh)
export VM_ASSETS
work=$(mktemp -d "${TMPDIR:-/tmp}/backtory-drills.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The share every drill starts from: the static backtory, the host tools
# the initramfs lacks (tools.sh), two keys (the host's and a wrong one) and
# the installed system's tree.
base=$work/base
mkdir -p "$base"
CGO_ENABLED=0 go build -trimpath -o "$base/backtory" ./cmd/backtory
bash "$here/tools.sh" "$base/tools"
"$base/backtory" key generate --name "drill host" --public "$base/host.pub.asc" --secret "$base/host.sec.asc" >/dev/null
"$base/backtory" key generate --name "wrong key" --public "$base/other.pub.asc" --secret "$base/other.sec.asc" >/dev/null
bash "$here/osroot.sh" "$base/osroot.tar" "$VM_ASSETS"
cp "$here/lib.sh" "$here/raid-guest.sh" "$base/"

# boot SHARE DISK...: boots the disk images with the restored boot loader
# (BIOS) and waits for the restored system's init to run SHARE/booted.sh;
# prints its report.
boot() {
	b_share=$1
	shift
	b_drives=()
	for d in "$@"; do b_drives+=(-drive "file=$d,if=virtio,format=raw,cache=unsafe"); done
	rm -f "$b_share/booted.txt" "$b_share/.vm-exit-code"
	qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 "${b_drives[@]}" \
		-virtfs "local,path=$b_share,mount_tag=host,security_model=none" \
		-nographic -nodefaults -serial stdio -no-reboot </dev/null >"$b_share/console.log" 2>&1 &
	b_qemu=$!
	for _ in $(seq 1 "${BOOT_TIMEOUT:-900}"); do
		kill -0 "$b_qemu" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$b_qemu" 2>/dev/null; then
		kill "$b_qemu"
		sleep 1
		kill -9 "$b_qemu" 2>/dev/null || true
	fi
	wait "$b_qemu" 2>/dev/null || true
	cat "$b_share/booted.txt" 2>/dev/null || tail -40 "$b_share/console.log" >&2
}

# What the restored system's init runs (the test bed's init, from the
# restored /boot): assemble the arrays, find the root LV, read the marker.
booted_script() {
	cat <<'EOF'
#!/bin/sh
exec >/host/booted.txt 2>&1
echo "BOOTED $(cat /proc/cmdline)"
mdadm --assemble --scan --run >/dev/null 2>&1
sleep 1
grep -E '^md|blocks' /proc/mdstat | tr '\n' ' '
echo
lvm vgchange -ay sys >/dev/null 2>&1
lvm vgmknodes >/dev/null 2>&1
mkdir -p /mnt/root
if mount -o ro /dev/mapper/sys-root /mnt/root; then
	echo "MARKER $(cat /mnt/root/root/marker)"
	umount /mnt/root
fi
lvm vgchange -an sys >/dev/null 2>&1
EOF
}

# drill_raid [stock]: drills 1 and 4.
drill_raid() {
	d_share=$work/$1
	cp -a "$base" "$d_share"
	[ "$1" = raid-stock ] && echo BMR_STOCK=1 >"$d_share/env"
	d_rc=0
	d_t=$(date +%s)
	VM_DISKS=6 VM_DISK_SIZE=1G VM_DISK_DIR=$d_share/disks VM_MEM=1024 VM_TIMEOUT=${VM_TIMEOUT:-3000} \
		test/vm/run "$d_share/raid-guest.sh" >"$d_share/vm.log" 2>&1 || d_rc=$?
	grep -h '^BMR-CHECK' "$d_share/result.txt" | sed "s/^/$1: /" >&2 || true
	sed "s/^/$1: /" "$d_share/times.txt" >&2 || true
	if [ "$d_rc" != 0 ]; then
		tail -60 "$d_share/vm.log" >&2
		echo "$1: FAIL: the drill's VM exited $d_rc" >&2
		return 1
	fi
	echo "$1: BMR-TIME vm $(($(date +%s) - d_t))" >&2
	mkdir -p "$d_share/boot"
	booted_script >"$d_share/boot/booted.sh"
	d_t=$(date +%s)
	out=$(boot "$d_share/boot" "$d_share/disks/vdd.img" "$d_share/disks/vde.img")
	echo "$1: BMR-TIME boot-raid $(($(date +%s) - d_t))" >&2
	echo "$out" | sed "s/^/$1: boot vdd+vde: /" >&2
	if echo "$out" | grep -q 'BOOTED .*BOOT_IMAGE=' && echo "$out" | grep -q 'raid1 .*\[UU\]' &&
		echo "$out" | grep -q '^MARKER drill marker'; then
		echo "$1: BMR-CHECK ok   drill 1: the restored disks boot (GRUB, kernel), the array is whole, the marker is there" >&2
	else
		echo "$1: BMR-CHECK FAIL drill 1: the restored disks do not boot to the marker" >&2
		d_rc=1
	fi
	d_t=$(date +%s)
	out=$(boot "$d_share/boot" "$d_share/disks/vdf.img")
	echo "$1: BMR-TIME boot-degraded $(($(date +%s) - d_t))" >&2
	echo "$out" | sed "s/^/$1: boot vdf: /" >&2
	if echo "$out" | grep -q 'BOOTED .*BOOT_IMAGE=' && echo "$out" | grep -q 'raid1 .*\[U_\]' &&
		echo "$out" | grep -q '^MARKER drill marker'; then
		echo "$1: BMR-CHECK ok   drill 4: the lone disk boots, the array runs degraded, the marker is there" >&2
	else
		echo "$1: BMR-CHECK FAIL drill 4: the lone restored disk does not boot to the marker" >&2
		d_rc=1
	fi
	rm -rf "$d_share/disks"
	return "$d_rc"
}

failed=0
for d in "$@"; do
	t=$(date +%s)
	case $d in
	raid | raid-stock) drill_raid "$d" || failed=$((failed + 1)) ;;
	*)
		echo "drills.sh: no drill $d" >&2
		exit 2
		;;
	esac
	echo "drills.sh: drill $d: $(($(date +%s) - t))s" >&2
done
exit "$failed"
