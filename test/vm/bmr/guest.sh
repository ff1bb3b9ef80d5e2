#!/bin/sh
# Runs inside the VM (test/vm/bmr/run.sh): build a machine on /dev/vda, back
# it up to /dev/vdc, destroy /dev/vda, run recover.sh bare-metal onto /dev/vdb,
# and compare. Each check prints "BMR-CHECK ok|FAIL what"; the exit status is
# the number of failures (0: all passed).
# shellcheck disable=SC2016,SC2317 # sh -c scripts in single quotes; functions called via must/check
set -u
export PATH="/host/tools/bin:$PATH"
BT=/host/backtory
TAG=BMR
# shellcheck source=test/vm/bmr/lib.sh
. /host/lib.sh

# listing DIR: one line per path (type, mode, owner, size, mtime, content hash).
listing() {
	(cd "$1" && find . ! -name lost+found ! -path '*/lost+found/*' | sort | while IFS= read -r p; do
		if [ -L "$p" ]; then
			echo "$p L $(readlink "$p")"
		elif [ -f "$p" ]; then
			echo "$p F $(stat -c '%a %u %g %s %Y' "$p") $(sha256sum <"$p" | cut -d' ' -f1)"
		elif [ -d "$p" ]; then
			echo "$p D $(stat -c '%a %u %g' "$p")"
		else
			echo "$p O $(stat -c '%F %a' "$p")"
		fi
	done)
}

# ids DEV...: the identifiers bare-metal must recreate.
ids() {
	for d in "$@"; do
		printf '%s ' "$d"
		blkid -o export "$d" | grep -E '^(UUID|LABEL|TYPE|PARTUUID|PARTLABEL)=' | sort | tr '\n' ' '
		echo
	done
}

log "building the machine on /dev/vda"
must sfdisk -q /dev/vda <<'EOF'
label: gpt
size=64MiB, name=boot
size=1100MiB, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm
type=6A898CC3-1DD2-11B2-99A6-080020736631, name=zfs
EOF
must blockdev --rereadpt /dev/vda
must waitdev /dev/vda3
must mkfs.ext4 -q -F -L boot /dev/vda1
must lvm pvcreate -ff -y -q /dev/vda2
must lvm vgcreate -q vg0 /dev/vda2
must lvm lvcreate -q -y -n root -L 400M vg0
must lvm lvcreate -q -y -n data -L 320M vg0
must lvm lvcreate -q -y -n swap -L 32M vg0
must lvm vgmknodes
must mkfs.ext4 -q -F -L root /dev/mapper/vg0-root
must mkfs.xfs -q -f -L data /dev/mapper/vg0-data
must mkswap -L swap /dev/mapper/vg0-swap >/dev/null
mkdir -p /mnt/sys
must mount /dev/mapper/vg0-root /mnt/sys
mkdir -p /mnt/sys/boot /mnt/sys/srv /mnt/sys/tank /mnt/sys/etc
must mount /dev/vda1 /mnt/sys/boot
must mount /dev/mapper/vg0-data /mnt/sys/srv
log "zpool create (no udev: may take a while)"
must zpool create -f -O mountpoint=/mnt/sys/tank tank /dev/vda3
must zfs create -o compression=lz4 tank/www

log "filling it"
cat >/mnt/sys/etc/fstab <<EOF
UUID=$(blkid -s UUID -o value /dev/mapper/vg0-root) / ext4 defaults 0 1
UUID=$(blkid -s UUID -o value /dev/vda1) /boot ext4 defaults 0 2
LABEL=data /srv xfs defaults 0 2
UUID=$(blkid -s UUID -o value /dev/mapper/vg0-swap) none swap sw 0 0
EOF
echo bmrhost >/mnt/sys/etc/hostname
head -c 1500000 /dev/urandom >/mnt/sys/boot/vmlinuz-test
echo "kernel config" >/mnt/sys/boot/config-test
head -c 4000000 /dev/urandom >/mnt/sys/srv/database.bin
mkdir -p /mnt/sys/srv/www /mnt/sys/tank/www/img
for i in 1 2 3 4 5 6 7 8; do echo "page $i" >"/mnt/sys/tank/www/page$i.html"; done
head -c 300000 /dev/urandom >/mnt/sys/tank/www/img/logo.png
ln -s ../etc/hostname /mnt/sys/srv/hostname-link
chmod 600 /mnt/sys/srv/database.bin

log "backing up (full)"
mkfs.ext4 -q -F /dev/vdc && mkdir -p /backup && must mount /dev/vdc /backup
cp /host/host.sec.asc /host/host.pub.asc /root/ && chmod 600 /root/host.sec.asc
cat >/root/backtory.yaml <<'EOF'
host: bmrhost
state_dir: /tmp/bt-state
sources:
  - name: sys
    path: /mnt/sys
    cross_mounts: true
    exclude: ["lost+found"]
remote:
  url: file:///backup/remote
volume_size: 2MiB
encryption:
  signing_key: /root/host.sec.asc
  recipients: [/root/host.pub.asc]
EOF
must "$BT" backup --config /root/backtory.yaml --full
sleep 1
log "changing it, backing up (differential)"
printf 'EDITED' | dd of=/mnt/sys/srv/database.bin bs=1 seek=2000000 conv=notrunc 2>/dev/null
rm /mnt/sys/boot/config-test
echo "new page" >/mnt/sys/tank/www/new.html
chmod 640 /mnt/sys/etc/hostname
must "$BT" backup --config /root/backtory.yaml --diff
listing /mnt/sys >/tmp/before.list
ids /dev/vda1 /dev/vda2 /dev/mapper/vg0-root /dev/mapper/vg0-data /dev/mapper/vg0-swap | sed 's|/dev/vda|/dev/vdb|g' >/tmp/before.ids
sfdisk --dump /dev/vda | grep -v -E '^(device|last-lba):' | sed 's|/dev/vda|/dev/vdb|g' >/tmp/before.sfdisk

# What recovery.Publisher does after each set: the static binary next to the sets.
sha256sum "$BT" | cut -d' ' -f1 >/backup/remote/bmrhost/sys/backtory.sha256
cp "$BT" /backup/remote/bmrhost/sys/backtory
must "$BT" recovery-script --config /root/backtory.yaml -o /tmp/recover.sh
if ! grep -q '^disk /dev/vda ' /tmp/recover.sh; then
	# backup does not store the layout yet: take it from the machine now.
	log "the set has no layout: recovery-script --layout-from-here"
	must "$BT" recovery-script --config /root/backtory.yaml --layout-from-here -o /tmp/recover.sh
fi
cp /tmp/recover.sh /host/recover.sh

log "the disk dies"
umount /mnt/sys/srv /mnt/sys/boot
must zpool destroy tank
umount /mnt/sys
must lvm vgremove -ff -y vg0
must lvm pvremove -ff -y /dev/vda2
wipefs -a -q /dev/vda3 /dev/vda1
dd if=/dev/zero of=/dev/vda bs=1M count=16 2>/dev/null
wipefs -a -q /dev/vda
rm -rf /tmp/bt-state /mnt/sys

log "recover.sh plan"
sh /tmp/recover.sh plan --map vda=vdb --skip vdc >/host/plan.txt 2>&1
check "plan ran" grep -q 'sfdisk' /host/plan.txt
check "plan touched nothing (vdb has no table)" sh -c '! sfdisk --dump /dev/vdb >/dev/null 2>&1'
cat /host/plan.txt

log "recover.sh bare-metal with a tampered volume on the remote"
set -- /backup/remote/bmrhost/sys/full-*/vol-000001.tar.zst.pgp
vol=$1
cp "$vol" /tmp/vol.orig
printf 'X' | dd of="$vol" bs=1 seek=4000 conv=notrunc 2>/dev/null
sh /tmp/recover.sh bare-metal --map vda=vdb --skip vdc --yes --key /root/host.sec.asc --work /tmp/rw-tampered >/tmp/tampered.log 2>&1
check "a tampered volume stops bare-metal" [ $? != 0 ]
check "... at the verify step" grep -q "does not verify: nothing was written to the disks" /tmp/tampered.log
check "... before any disk is touched (vdb has no table)" sh -c '! sfdisk --dump /dev/vdb >/dev/null 2>&1'
cp /tmp/vol.orig "$vol"
cat /tmp/tampered.log

log "recover.sh bare-metal"
start=$(date +%s)
sh /tmp/recover.sh bare-metal --map vda=vdb --skip vdc --yes --key /root/host.sec.asc --work /tmp/rw
check "bare-metal succeeded" [ $? = 0 ]
log "bare-metal took $(($(date +%s) - start))s"
sh /tmp/recover.sh bare-metal --map vda=vdb --skip vdc --yes --key /root/host.sec.asc --work /tmp/rw >/tmp/rerun.log 2>&1
check "a second run skips every step" sh -c '! grep -q "^recover.sh: +" /tmp/rerun.log && grep -q "done before, skipped" /tmp/rerun.log'

log "comparing"
check "partition table (disk GUID, PARTUUIDs, names, types)" sh -c 'sfdisk --dump /dev/vdb | grep -v -E "^(device|last-lba):" | diff /tmp/before.sfdisk -'
lvm vgchange -ay vg0 >/dev/null 2>&1
lvm vgmknodes >/dev/null 2>&1
ids /dev/vdb1 /dev/vdb2 /dev/mapper/vg0-root /dev/mapper/vg0-data /dev/mapper/vg0-swap >/tmp/after.ids
check "UUIDs, labels and types of filesystems, PV and swap" diff /tmp/before.ids /tmp/after.ids
mkdir -p /mnt/check/mnt/sys
mount /dev/mapper/vg0-root /mnt/check/mnt/sys &&
	mount /dev/vdb1 /mnt/check/mnt/sys/boot &&
	mount /dev/mapper/vg0-data /mnt/check/mnt/sys/srv
zpool import -d /dev/vdb3 -R /mnt/check tank
check "ZFS dataset tank/www with compression=lz4" sh -c '[ "$(zfs get -H -o value compression tank/www)" = lz4 ]'
check "ZFS pool on the new disk" sh -c 'zpool status -P tank | grep -q /dev/vdb3'
listing /mnt/check/mnt/sys >/tmp/after.list
check "files, modes, owners, mtimes and contents (full + differential)" diff /tmp/before.list /tmp/after.list
check "deleted file stays deleted" [ ! -e /mnt/check/mnt/sys/boot/config-test ]
check "fstab references resolve" sh -c 'grep -o "UUID=[^ ]*" /mnt/check/mnt/sys/etc/fstab | while read -r r; do blkid -t "$r" >/dev/null || exit 1; done'
zpool export tank
umount /mnt/check/mnt/sys/srv /mnt/check/mnt/sys/boot /mnt/check/mnt/sys
log "$fails failed checks"
exit "$fails"
