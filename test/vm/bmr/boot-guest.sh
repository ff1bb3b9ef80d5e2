#!/bin/sh
# Runs inside the VM (test/vm/bmr/run.sh, boot test): installs the tiny
# system of osroot.sh on /dev/vda (GPT with a BIOS boot partition, /boot on
# ext4, / on LVM) with GRUB, backs it up from inside it (two sources: / and
# /boot) to /dev/vdc, destroys /dev/vda, runs recover.sh bare-metal onto
# /dev/vdb (which reinstalls GRUB in a chroot of the restored system), and
# copies /dev/vdb to /host/restored.img, which the host then boots.
# shellcheck disable=SC2317 # functions called through must/check
set -u
export PATH="/host/tools/bin:$PATH"
TAG=BMR-BOOT
# shellcheck source=test/vm/bmr/lib.sh
. /host/lib.sh
OS=/mnt/os
inos() { chroot "$OS" /usr/bin/env PATH=/usr/local/bin:/usr/sbin:/usr/bin HOME=/root "$@"; }

log "installing the system on /dev/vda"
must sfdisk -q /dev/vda <<'EOF'
label: gpt
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=bios
size=120MiB, name=boot
type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm
EOF
must blockdev --rereadpt /dev/vda
must waitdev /dev/vda3
must mkfs.ext4 -q -F -L boot /dev/vda2
must lvm pvcreate -ff -y -q /dev/vda3
must lvm vgcreate -q sys /dev/vda3
must lvm lvcreate -q -y -n root -L 600M sys
must lvm vgmknodes
must mkfs.ext4 -q -F -L root /dev/mapper/sys-root
mkdir -p $OS
must mount /dev/mapper/sys-root $OS
mkdir -p $OS/boot
must mount /dev/vda2 $OS/boot
must tar -C $OS -xf /host/osroot.tar
cat >$OS/etc/fstab <<EOF
UUID=$(blkid -s UUID -o value /dev/mapper/sys-root) / ext4 defaults 0 1
UUID=$(blkid -s UUID -o value /dev/vda2) /boot ext4 defaults 0 2
EOF
echo "data of the installed system" >$OS/root/notes.txt
for d in dev proc sys; do must mount --bind /$d $OS/$d; done
must inos grub-install --target=i386-pc /dev/vda
must inos grub-mkconfig -o /boot/grub/grub.cfg

log "backing it up from inside"
mkfs.ext4 -q -F /dev/vdc && must mount /dev/vdc $OS/backup
cp /host/backtory $OS/usr/local/bin/backtory
cp /host/host.sec.asc /host/host.pub.asc $OS/root/ && chmod 600 $OS/root/host.sec.asc
cat >$OS/root/backtory.yaml <<'EOF'
host: bootos
state_dir: /var/lib/backtory
sources:
  - name: root
    path: /
    exclude: ["/var/lib/backtory"]
  - name: boot
    path: /boot
remote:
  url: file:///backup/remote
encryption:
  signing_key: /root/host.sec.asc
  recipients: [/root/host.pub.asc]
EOF
must inos backtory backup --config /root/backtory.yaml --full
for s in root boot; do
	sha256sum /host/backtory | cut -d' ' -f1 >$OS/backup/remote/bootos/$s/backtory.sha256
	cp /host/backtory $OS/backup/remote/bootos/$s/backtory
done
must inos backtory recovery-script --config /root/backtory.yaml --source root -o /backup/recover.sh
if ! grep -q '^boot bios grub ' $OS/backup/recover.sh; then
	log "the set has no layout: recovery-script --layout-from-here"
	must inos backtory recovery-script --config /root/backtory.yaml --source root --layout-from-here -o /backup/recover.sh
fi
check "the layout records GRUB on /dev/vda" grep -q '^boot bios grub - /dev/vda$' $OS/backup/recover.sh
cp $OS/backup/recover.sh /host/boot-recover.sh
cp $OS/root/host.sec.asc /root/

log "the disk dies"
for d in dev proc sys backup boot; do umount $OS/$d; done
umount $OS
must lvm vgremove -ff -y sys
must lvm pvremove -ff -y /dev/vda3
dd if=/dev/zero of=/dev/vda bs=1M count=8 2>/dev/null
wipefs -a -q /dev/vda
mkdir -p /backup && must mount /dev/vdc /backup

log "recover.sh bare-metal (with the boot loader)"
sh /backup/recover.sh bare-metal --map vda=vdb --skip vdc --yes --key /root/host.sec.asc --work /tmp/rw
check "bare-metal with boot loader succeeded" [ $? = 0 ]
check "GRUB in the new disk's first sector" sh -c 'dd if=/dev/vdb bs=512 count=1 2>/dev/null | grep -q GRUB'
log "copying the restored disk to the host"
lvm vgchange -an sys >/dev/null 2>&1
must dd if=/dev/vdb of=/host/restored.img bs=1M 2>/dev/null
log "$fails failed checks"
exit "$fails"
