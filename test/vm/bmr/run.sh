#!/bin/bash
# Usage: test/vm/bmr/run.sh
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
# they are copied from the host (Debian 12 as well) into the share, with the
# libraries the VM does not have, behind wrappers that set LD_LIBRARY_PATH.
set -eu
cd "$(dirname "$0")/../../.."
start=$(date +%s)
bash test/deps/recovery.sh
VM_ASSETS=$(test/vm/build.sh)
export VM_ASSETS
share=$(mktemp -d "${TMPDIR:-/tmp}/backtory-bmr.XXXXXX")
trap 'rm -rf "$share"' EXIT

CGO_ENABLED=0 go build -trimpath -o "$share/backtory" ./cmd/backtory
mkdir -p "$share/tools/bin" "$share/tools/real" "$share/tools/lib"
for b in sfdisk wipefs lsblk mkswap dumpe2fs; do
	p=$(PATH=/usr/sbin:/sbin:$PATH command -v "$b")
	cp -L "$p" "$share/tools/real/$b"
	ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
		case ${lib##*/} in libc.so* | libm.so* | ld-linux* | libpthread* | libdl* | librt*) continue ;; esac
		cp -nL "$lib" "$share/tools/lib/"
	done
	printf '#!/usr/bin/busybox sh\nLD_LIBRARY_PATH=/host/tools/lib exec /host/tools/real/%s "$@"\n' "$b" >"$share/tools/bin/$b"
	chmod 755 "$share/tools/bin/$b"
done
"$share/backtory" key generate --name "bmr test" --public "$share/host.pub.asc" --secret "$share/host.sec.asc" >/dev/null
cp test/vm/bmr/guest.sh "$share/guest.sh"
rc=0
VM_DISKS=3 VM_DISK_SIZE=2G VM_TIMEOUT=${VM_TIMEOUT:-1500} test/vm/run "$share/guest.sh" || rc=$?
if [ -f "$share/result.txt" ]; then
	cat "$share/result.txt" >&2
fi
echo "test/vm/bmr/run.sh: bare-metal recovery in the VM: exit $rc, $(($(date +%s) - start))s in all" >&2
exit "$rc"
