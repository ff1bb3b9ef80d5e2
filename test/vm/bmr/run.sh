#!/bin/bash
# Usage: test/vm/bmr/run.sh
# Environment: BMR_MAIN=0 skips the first test, BMR_BOOT=0 the boot test.
#
# Proves bare-metal recovery in the VM test bed (test/vm/run): a machine
# with a GPT disk (ext4 partition, LVM with ext4, xfs and swap LVs, a ZFS
# pool with a dataset) is backed up with the static backtory (a full and a
# differential, sealed with a fresh key), its disk is destroyed, and
# `recover.sh bare-metal --map vda=vdb` rebuilds it on a blank disk; then
# the restored files, UUIDs, labels, PARTUUIDs and ZFS properties are
# compared with the original's (guest.sh). Exits with the guest's status.
#
# The initramfs lacks sfdisk, wipefs, lsblk, mkswap (with -U) and dumpe2fs:
# test/vm/bmr/tools.sh copies them from the host into the share.
set -eu
cd "$(dirname "$0")/../../.."
start=$(date +%s)
bash test/deps/recovery.sh
VM_ASSETS=$(test/vm/build.sh)
export VM_ASSETS
share=$(mktemp -d "${TMPDIR:-/tmp}/backtory-bmr.XXXXXX")
trap 'rm -rf "$share"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$share/backtory" ./cmd/backtory
bash test/vm/bmr/tools.sh "$share/tools"
"$share/backtory" key generate --name "bmr test" --public "$share/host.pub.asc" --secret "$share/host.sec.asc" >/dev/null
cp test/vm/bmr/lib.sh test/vm/bmr/guest.sh test/vm/bmr/boot-guest.sh "$share/"
rc=0
if [ "${BMR_MAIN:-1}" = 1 ]; then
	VM_DISKS=3 VM_DISK_SIZE=2G VM_TIMEOUT=${VM_TIMEOUT:-1500} test/vm/run "$share/guest.sh" || rc=$?
	cat "$share/result.txt" >&2 2>/dev/null || true
	echo "test/vm/bmr/run.sh: bare-metal recovery in the VM: exit $rc, $(($(date +%s) - start))s" >&2
	[ "$rc" = 0 ] || exit "$rc"
fi

# The boot test: an installed system with GRUB is recovered the same way,
# and the restored disk must boot (BIOS, GRUB, its kernel and initramfs).
[ "${BMR_BOOT:-1}" = 1 ] || exit 0
start=$(date +%s)
test/vm/bmr/osroot.sh "$share/osroot.tar" "$VM_ASSETS"
: >"$share/result.txt"
VM_DISKS=3 VM_DISK_SIZE=1G VM_TIMEOUT=${VM_TIMEOUT:-1500} test/vm/run "$share/boot-guest.sh" || rc=$?
cat "$share/result.txt" >&2 2>/dev/null || true
[ "$rc" = 0 ] || {
	echo "test/vm/bmr/run.sh: bare-metal recovery with boot loader: exit $rc" >&2
	exit "$rc"
}
boot=$share/boot
mkdir -p "$boot"
# shellcheck disable=SC2016 # expanded in the VM
printf '#!/bin/sh\necho "BOOTED $(cat /proc/cmdline)" | tee /host/booted.txt\n' >"$boot/booted.sh"
echo "test/vm/bmr/run.sh: booting the restored disk" >&2
qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 \
	-drive "file=$share/restored.img,if=virtio,format=raw" \
	-virtfs "local,path=$boot,mount_tag=host,security_model=none" \
	-nographic -nodefaults -serial stdio -no-reboot </dev/null >"$boot/console.log" 2>&1 &
qemu=$!
for _ in $(seq 1 300); do
	kill -0 "$qemu" 2>/dev/null || break
	sleep 1
done
if kill -0 "$qemu" 2>/dev/null; then
	kill "$qemu"
	sleep 1
	kill -9 "$qemu" 2>/dev/null || true
fi
wait "$qemu" 2>/dev/null || true
if grep -q 'BOOTED .*BOOT_IMAGE=/vmlinuz-' "$boot/booted.txt" 2>/dev/null; then
	echo "BMR-CHECK ok   the restored disk boots: $(cat "$boot/booted.txt")" >&2
else
	tail -40 "$boot/console.log" >&2
	echo "BMR-CHECK FAIL the restored disk does not boot" >&2
	rc=1
fi
echo "test/vm/bmr/run.sh: recovery with boot loader and boot of the restored disk: exit $rc, $(($(date +%s) - start))s" >&2
exit "$rc"
