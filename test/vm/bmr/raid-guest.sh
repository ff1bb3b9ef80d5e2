#!/bin/sh
# Runs inside the VM (test/vm/bmr/drills.sh, drills 1 and 4): installs the
# tiny system of osroot.sh on two disks, BIOS GPT + md RAID1 (/dev/vda2,
# /dev/vdb2) -> LVM -> ext4 root, xfs /srv and swap, with GRUB on both disks;
# backs it up from inside (a sealed full, a change, a sealed differential
# with the marker, a later differential) to /dev/vdc; destroys both disks.
# Then:
#   - a tampered volume and a wrong key stop bare-metal at verify, before
#     any disk is touched;
#   - drill 1: recover.sh bare-metal --at <the marker's differential> onto
#     /dev/vdd + /dev/vde, and the UUIDs, PARTUUIDs, labels and md UUID are
#     the recorded ones;
#   - drill 4: bare-metal again onto /dev/vdf alone (vdb's twin is gone):
#     the plan says the array is created degraded and it is.
# The host boots vdd+vde and vdf afterwards. BMR_STOCK=1 (in /host/env)
# restores with stock tools (--stock). Each phase's wall time goes to
# /host/times.txt ("BMR-TIME phase seconds").
# shellcheck disable=SC2016,SC2317 # sh -c scripts in single quotes; functions called via must/check
set -u
export PATH="/host/tools/bin:$PATH"
TAG=DRILL-RAID
# shellcheck source=test/vm/bmr/lib.sh
. /host/lib.sh
STOCK=""
# shellcheck source=/dev/null
[ -f /host/env ] && . /host/env
[ "${BMR_STOCK:-0}" = 1 ] && STOCK=--stock
OS=/mnt/os
inos() { chroot "$OS" /usr/bin/env PATH=/usr/local/bin:/usr/sbin:/usr/bin HOME=/root "$@"; }
: >/host/times.txt
lap_t=$(date +%s)
lap() {
	lap_now=$(date +%s)
	echo "BMR-TIME $1 $((lap_now - lap_t))" | tee -a /host/times.txt
	lap_t=$lap_now
}

# ids DEV...: the identifiers bare-metal must recreate.
ids() {
	for d in "$@"; do
		printf '%s ' "$d"
		blkid -o export "$d" | grep -E '^(UUID|LABEL|TYPE|PARTUUID|PARTLABEL)=' | sort | tr '\n' ' '
		echo
	done
}
mdid() { mdadm --detail "$1" | awk '$1 == "UUID" || $1 == "Name" || $1 == "Raid" { print }'; }

log "installing the system on /dev/vda + /dev/vdb (md RAID1)"
for d in vda vdb; do
	must sfdisk -q /dev/$d <<'EOF'
label: gpt
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=bios
type=A19D880F-05FC-4D3B-A006-743F0F84911E, name=raid
EOF
	must blockdev --rereadpt /dev/$d
	must waitdev /dev/${d}2
done
must mdadm --create /dev/md0 --run --assume-clean --level=raid1 --raid-devices=2 --metadata=1.2 \
	--name=drill:0 /dev/vda2 /dev/vdb2
must waitdev /dev/md0
must lvm pvcreate -ff -y -q /dev/md0
must lvm vgcreate -q sys /dev/md0
must lvm lvcreate -q -y -n root -L 400M sys
must lvm lvcreate -q -y -n data -L 320M sys
must lvm lvcreate -q -y -n swap -L 32M sys
must lvm vgmknodes
must mkfs.ext4 -q -F -L root /dev/mapper/sys-root
must mkfs.xfs -q -f -L data /dev/mapper/sys-data
must mkswap -L swap /dev/mapper/sys-swap >/dev/null
mkdir -p $OS
must mount /dev/mapper/sys-root $OS
must tar -C $OS -xf /host/osroot.tar
mkdir -p $OS/srv $OS/etc/mdadm
must mount /dev/mapper/sys-data $OS/srv
cat >$OS/etc/fstab <<EOF
UUID=$(blkid -s UUID -o value /dev/mapper/sys-root) / ext4 defaults 0 1
LABEL=data /srv xfs defaults 0 2
UUID=$(blkid -s UUID -o value /dev/mapper/sys-swap) none swap sw 0 0
EOF
mdadm --detail --scan >$OS/etc/mdadm/mdadm.conf
echo "data of the installed system" >$OS/root/notes.txt
head -c 3000000 /dev/urandom >$OS/srv/database.bin
for d in dev proc sys; do must mount --bind /$d $OS/$d; done
must inos grub-install --target=i386-pc /dev/vda
must inos grub-install --target=i386-pc /dev/vdb
must inos grub-mkconfig -o /boot/grub/grub.cfg
lap install

log "backing it up from inside"
mkfs.ext4 -q -F /dev/vdc && must mount /dev/vdc $OS/backup
cp /host/backtory $OS/usr/local/bin/backtory
cp /host/host.sec.asc /host/host.pub.asc $OS/root/ && chmod 600 $OS/root/host.sec.asc
cat >$OS/root/backtory.yaml <<'EOF'
host: raidos
state_dir: /var/lib/backtory
sources:
  - name: root
    path: /
    exclude: ["/var/lib/backtory"]
  - name: srv
    path: /srv
remote:
  url: file:///backup/remote
volume_size: 2MiB
encryption:
  signing_key: /root/host.sec.asc
  recipients: [/root/host.pub.asc]
EOF
must inos backtory backup --config /root/backtory.yaml --full
lap backup-full
sleep 1
echo "drill marker: written before the differential" >$OS/root/marker
printf 'EDITED' | dd of=$OS/srv/database.bin bs=1 seek=1000000 conv=notrunc 2>/dev/null
rm $OS/root/notes.txt
must inos backtory backup --config /root/backtory.yaml --diff
lap backup-diff
for f in "$OS"/backup/remote/raidos/root/diff-*; do diffid=${f##*/}; done
log "the marker's differential: $diffid"
for s in root srv; do
	sha256sum /host/backtory | cut -d' ' -f1 >$OS/backup/remote/raidos/$s/backtory.sha256
	cp /host/backtory $OS/backup/remote/raidos/$s/backtory
done
must inos backtory recovery-script --config /root/backtory.yaml --source root -o /backup/recover.sh
check "the layout records md0 as raid1 of vda2, vdb2" grep -q '^md /dev/md0 raid1 1.2 [^ ]* drill:0 - 2 /dev/vda2,/dev/vdb2$' $OS/backup/recover.sh
check "the layout records GRUB on both disks" grep -q '^boot bios grub - /dev/vda,/dev/vdb$' $OS/backup/recover.sh
sleep 1
echo "too late" >$OS/root/too-late
must inos backtory backup --config /root/backtory.yaml --diff
lap backup-later-diff
cp $OS/backup/recover.sh /host/raid-recover.sh
cp $OS/root/host.sec.asc /root/
ids /dev/vda1 /dev/vda2 /dev/vdb1 /dev/vdb2 /dev/md0 /dev/mapper/sys-root /dev/mapper/sys-data /dev/mapper/sys-swap |
	sed 's|/dev/vda|/dev/vdd|g; s|/dev/vdb|/dev/vde|g' >/tmp/before.ids
for d in vda vdb; do sfdisk --dump /dev/$d | grep -v -E '^(device|last-lba):' | sed "s|/dev/$d|/dev/X|" >/tmp/before.$d.sfdisk; done
mdid /dev/md0 >/tmp/before.md

log "the disks die"
for d in dev proc sys backup srv; do umount $OS/$d; done
umount $OS
must lvm vgchange -an sys
must mdadm --stop /dev/md0
dd if=/dev/zero of=/dev/vda bs=1M count=8 2>/dev/null
dd if=/dev/zero of=/dev/vdb bs=1M count=8 2>/dev/null
wipefs -a -q /dev/vda /dev/vdb
mkdir -p /backup && must mount /dev/vdc /backup
RS="sh /backup/recover.sh"
MAP="--map vda=vdd --map vdb=vde --skip vdc"
lap wipe

log "recover.sh plan"
# shellcheck disable=SC2086 # option lists
$RS plan --at "$diffid" $MAP >/host/plan-raid.txt 2>&1
check "plan ran" grep -q 'mdadm --create /dev/md0' /host/plan-raid.txt
check "plan uses the marker's differential" grep -q "source root (/): $diffid" /host/plan-raid.txt
check "plan touched nothing (vdd has no table)" sh -c '! sfdisk --dump /dev/vdd >/dev/null 2>&1'
cat /host/plan-raid.txt

notouched() { sh -c '! sfdisk --dump /dev/vdd >/dev/null 2>&1 && ! sfdisk --dump /dev/vde >/dev/null 2>&1'; }
log "bare-metal with a tampered volume on the remote"
set -- /backup/remote/raidos/root/full-*/vol-000001.tar.zst.pgp
vol=$1
cp "$vol" /tmp/vol.orig
printf 'X' | dd of="$vol" bs=1 seek=4000 conv=notrunc 2>/dev/null
# shellcheck disable=SC2086
$RS bare-metal --at "$diffid" $MAP $STOCK --yes --key /root/host.sec.asc --work /tmp/rw-tampered >/tmp/tampered.log 2>&1
check "a tampered volume stops bare-metal" [ $? != 0 ]
check "... at the verify step" grep -q "nothing was written to the disks" /tmp/tampered.log
check "... before any disk is touched" notouched
cp /tmp/vol.orig "$vol"
cat /tmp/tampered.log

log "bare-metal with the wrong key"
# shellcheck disable=SC2086
$RS bare-metal --at "$diffid" $MAP $STOCK --yes --key /host/other.sec.asc --work /tmp/rw-wrongkey >/tmp/wrongkey.log 2>&1
check "a wrong key stops bare-metal" [ $? != 0 ]
check "... at the verify step" grep -q "nothing was written to the disks" /tmp/wrongkey.log
check "... before any disk is touched" notouched
cat /tmp/wrongkey.log
lap refusals

log "drill 1: recover.sh bare-metal onto vdd + vde"
# shellcheck disable=SC2086
$RS bare-metal --at "$diffid" $MAP $STOCK --yes --key /root/host.sec.asc --work /tmp/rw 2>&1 | tee /host/bare-metal-raid.log
check "bare-metal succeeded" grep -q 'done: the machine is restored' /host/bare-metal-raid.log
grep 'step .*: done in' /host/bare-metal-raid.log | sed 's/^recover.sh: step \([a-z]*\): done in \([0-9]*\)s$/BMR-TIME recover-\1 \2/' >>/host/times.txt
lap recover-raid
check "GRUB in vdd's first sector" sh -c 'dd if=/dev/vdd bs=512 count=1 2>/dev/null | grep -q GRUB'
check "GRUB in vde's first sector" sh -c 'dd if=/dev/vde bs=512 count=1 2>/dev/null | grep -q GRUB'
for d in vdd vde; do sfdisk --dump /dev/$d | grep -v -E '^(device|last-lba):' | sed "s|/dev/$d|/dev/X|" >/tmp/after.$d.sfdisk; done
check "partition table of vdd is vda's (disk GUID, PARTUUIDs, types)" diff /tmp/before.vda.sfdisk /tmp/after.vdd.sfdisk
check "partition table of vde is vdb's" diff /tmp/before.vdb.sfdisk /tmp/after.vde.sfdisk
mdid /dev/md0 >/tmp/after.md
check "md0: same UUID, name, level" diff /tmp/before.md /tmp/after.md
lvm vgchange -ay sys >/dev/null 2>&1
lvm vgmknodes >/dev/null 2>&1
ids /dev/vdd1 /dev/vdd2 /dev/vde1 /dev/vde2 /dev/md0 /dev/mapper/sys-root /dev/mapper/sys-data /dev/mapper/sys-swap >/tmp/after.ids
check "UUIDs, labels, types of md members, PV, filesystems and swap" diff /tmp/before.ids /tmp/after.ids
mkdir -p /mnt/check
must mount /dev/mapper/sys-root /mnt/check
check "the marker is there" grep -q 'drill marker' /mnt/check/root/marker
check "the file deleted before the differential stays deleted" [ ! -e /mnt/check/root/notes.txt ]
check "the later differential is not applied" [ ! -e /mnt/check/root/too-late ]
umount /mnt/check
lvm vgchange -an sys >/dev/null 2>&1
mdadm --stop /dev/md0 >/dev/null 2>&1

log "drill 4: one RAID1 member missing: bare-metal onto vdf alone"
# shellcheck disable=SC2086
$RS plan --at "$diffid" --map vda=vdf --skip vdb --skip vdc >/host/plan-degraded.txt 2>&1
check "plan says md0 is created degraded" grep -q '/dev/md0 is created DEGRADED: 1 of 2 members' /host/plan-degraded.txt
check "plan creates md0 with missing" grep -q 'mdadm --create /dev/md0 .* /dev/vdf2 missing$' /host/plan-degraded.txt
cat /host/plan-degraded.txt
# shellcheck disable=SC2086
$RS bare-metal --at "$diffid" --map vda=vdf --skip vdb --skip vdc $STOCK --yes --key /root/host.sec.asc --work /tmp/rw4 2>&1 | tee /host/bare-metal-degraded.log
check "degraded bare-metal succeeded" grep -q 'done: the machine is restored' /host/bare-metal-degraded.log
lap recover-degraded
check "md0 runs degraded on vdf2" sh -c 'mdadm --detail /dev/md0 | grep -q "State : .*degraded" && mdadm --detail /dev/md0 | grep -q /dev/vdf2'
mdid /dev/md0 >/tmp/after4.md
check "degraded md0: same UUID, name, level" diff /tmp/before.md /tmp/after4.md
check "GRUB in vdf's first sector" sh -c 'dd if=/dev/vdf bs=512 count=1 2>/dev/null | grep -q GRUB'
lvm vgchange -an sys >/dev/null 2>&1
mdadm --stop /dev/md0 >/dev/null 2>&1
sync
log "$fails failed checks"
exit "$fails"
