#!/bin/sh
# Runs inside the VM (test/vm/e2e.sh): `backtory backup` of a ZFS dataset
# and of an LVM logical volume, each with its snapshot, through the CLI.
# A post_snapshot hook writes into the live tree after the snapshot: the
# backup must not contain that file (it read the snapshot), the snapshot
# must be gone afterwards, and the restore must equal the tree as it was
# when the snapshot was taken.
set -eu
B=/host/backtory
fail() {
	echo "E2E FAIL: $*"
	exit 1
}
run() {
	echo "+ $*"
	"$@"
}

# tree DIR: a small tree with a big file, a hardlink, a symlink.
tree() {
	mkdir -p "$1/www/sub"
	echo hello >"$1/www/index.html"
	dd if=/dev/urandom of="$1/www/big.bin" bs=1M count=8 2>/dev/null
	ln "$1/www/index.html" "$1/www/sub/hardlink"
	ln -s ../index.html "$1/www/sub/symlink"
}

# config NAME PATH SNAPSHOT-LINES: a config with a post_snapshot hook that
# writes into the live tree.
config() {
	cat >"/etc/backtory-$1.yaml" <<EOF2
host: vm
state_dir: /var/lib/backtory-$1
sources:
  - name: $1
    path: $2
$3
    hooks:
      post_snapshot: ["echo written after the snapshot > $2/www/late.txt"]
remote:
  url: file:///var/backups/$1
EOF2
	chmod 600 "/etc/backtory-$1.yaml"
}

# check NAME PATH: backup, then compare the restore with the saved copy.
check() {
	rm -rf "/tmp/copy-$1"
	cp -a "$2" "/tmp/copy-$1"
	run "$B" backup --config "/etc/backtory-$1.yaml" || fail "$1: backup"
	[ -f "$2/www/late.txt" ] || fail "$1: the post_snapshot hook did not run"
	run "$B" restore --config "/etc/backtory-$1.yaml" --to "/tmp/restored-$1" || fail "$1: restore"
	[ ! -e "/tmp/restored-$1/www/late.txt" ] || fail "$1: the backup read the live tree, not the snapshot"
	diff -r "/tmp/copy-$1" "/tmp/restored-$1" || fail "$1: restored tree differs"
	run "$B" verify --deep --config "/etc/backtory-$1.yaml" || fail "$1: verify"
	rm "$2/www/late.txt"
	echo "more" >>"$2/www/index.html"
	run "$B" backup --config "/etc/backtory-$1.yaml" || fail "$1: differential"
	"$B" list --config "/etc/backtory-$1.yaml" | grep -q " diff " || fail "$1: the second backup is not a differential"
}

mkdir -p /etc /var/lib /var/backups /tmp

# ZFS: a pool on a file vdev (whole disks need udev), dataset tank/srv.
mkdir -p /mnt/vdev
mkfs.ext4 -q -F /dev/vda
mount -t ext4 /dev/vda /mnt/vdev
truncate -s 512M /mnt/vdev/tank.img
run zpool create -f -m /tank tank /mnt/vdev/tank.img
run zfs create tank/srv
tree /tank/srv
config zsrc /tank/srv "    snapshot: zfs
    dataset: tank/srv"
check zsrc /tank/srv
if zfs list -H -t snapshot -o name | grep -q backtory-; then
	zfs list -t snapshot
	fail "zfs: a backtory snapshot is left"
fi

# Change lists (issue 19): a full keeps its ZFS snapshot, and the next
# differential reads only what zfs diff lists since it. The same
# differential taken by walking (the kept snapshot destroyed: the run
# falls back, saying why) has the same file table, and both restore the tree.
run zfs create tank/chg
n=${CHG_FILES:-2000}
i=0
while [ "$i" -lt $((n / 100)) ]; do
	mkdir -p "/tank/chg/d$i"
	j=0
	while [ "$j" -lt 100 ]; do
		echo "$i.$j" >"/tank/chg/d$i/f$j"
		j=$((j + 1))
	done
	i=$((i + 1))
done
dd if=/dev/urandom of=/tank/chg/big.bin bs=1M count=16 2>/dev/null
ln /tank/chg/d1/f1 /tank/chg/d1/link
cat >/etc/backtory-zchg.yaml <<EOF2
host: vm
state_dir: /var/lib/backtory-zchg
sources:
  - name: zchg
    path: /tank/chg
    snapshot: zfs
    dataset: tank/chg
remote:
  url: file:///var/backups/zchg
EOF2
chmod 600 /etc/backtory-zchg.yaml
run "$B" backup --config /etc/backtory-zchg.yaml || fail "zchg: full"
zfs list -H -t snapshot -o name | grep -q '^tank/chg@backtory_full-' || fail "zchg: the full's snapshot was not kept"
# 0.1% of the files change: edits, new files and directories, deletions,
# renames of a file, of a directory and of the big file, a chmod.
i=0
while [ "$i" -lt $((n / 1000)) ]; do
	echo changed >>"/tank/chg/d$((i * 7 % (n / 100)))/f$i"
	i=$((i + 1))
done
mkdir /tank/chg/new && echo new >/tank/chg/new/file
rm /tank/chg/d2/f2
mv /tank/chg/d3/f3 /tank/chg/d3/f3.renamed
mv /tank/chg/d4 /tank/chg/d4.moved
mv /tank/chg/big.bin /tank/chg/new/big.moved
chmod 600 /tank/chg/d5/f5
rm -rf /tmp/copy-zchg && cp -a /tank/chg /tmp/copy-zchg
t0=$(cut -d' ' -f1 /proc/uptime)
"$B" backup --config /etc/backtory-zchg.yaml >/tmp/zchg1.log 2>&1 || { cat /tmp/zchg1.log; fail "zchg: differential from zfs diff"; }
t1=$(cut -d' ' -f1 /proc/uptime)
cat /tmp/zchg1.log
grep -q 'scan="zfs diff"' /tmp/zchg1.log || fail "zchg: the differential did not use zfs diff"
zfs destroy "$(zfs list -H -t snapshot -o name | grep '^tank/chg@backtory_full-')"
t2=$(cut -d' ' -f1 /proc/uptime)
"$B" backup --config /etc/backtory-zchg.yaml >/tmp/zchg2.log 2>&1 || { cat /tmp/zchg2.log; fail "zchg: differential by walking"; }
t3=$(cut -d' ' -f1 /proc/uptime)
cat /tmp/zchg2.log
grep -q 'walking the tree: .*is gone' /tmp/zchg2.log || fail "zchg: no notice that the kept snapshot is gone"
grep -q 'scan="walk"' /tmp/zchg2.log || fail "zchg: the fallback did not walk"
ids=$("$B" list --config /etc/backtory-zchg.yaml | grep -o 'diff-[0-9]*T[0-9]*Z' | sort -u)
set -- $ids
[ $# = 2 ] || fail "zchg: want 2 differentials, have: $ids"
"$B" ls --json --set "$1" --config /etc/backtory-zchg.yaml >/tmp/zchg-ls1 || fail "zchg: ls $1"
"$B" ls --json --set "$2" --config /etc/backtory-zchg.yaml >/tmp/zchg-ls2 || fail "zchg: ls $2"
cmp /tmp/zchg-ls1 /tmp/zchg-ls2 || { diff /tmp/zchg-ls1 /tmp/zchg-ls2 | head; fail "zchg: the zfs diff and walk differentials differ"; }
for id in "$1" "$2"; do
	rm -rf /tmp/restored-zchg
	run "$B" restore --config /etc/backtory-zchg.yaml --set "$id" --to /tmp/restored-zchg || fail "zchg: restore $id"
	diff -r /tmp/copy-zchg /tmp/restored-zchg || fail "zchg: $id restored differs"
	[ "$(stat -c %a /tmp/restored-zchg/d5/f5)" = 600 ] || fail "zchg: $id lost the chmod"
done
awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
	printf "zchg: %d files, 0.1%% changed: differential from zfs diff %.1fs, by walking %.1fs (ratio %.2f)\n", n, b - a, d - c, (b - a) / (d - c) }'

zfs list -H -t snapshot -o name | grep -q '^tank/chg@backtory_full-' && fail "zchg: a kept snapshot is left after the fallback (it was destroyed)"

# A writer keeps appending while the backup runs: reading the snapshot, the
# backup sees one consistent state (no "changed while read" warning, exit 0),
# and the restored log is a prefix of the live one.
(
	i=0
	while [ ! -e /tmp/stop-writer ]; do
		i=$((i + 1))
		echo "line $i $(dd if=/dev/urandom bs=64 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')" >>/tank/srv/www/live.log
	done
) &
writer=$!
sleep 2
run "$B" backup --full --config /etc/backtory-zsrc.yaml || fail "zfs: backup with a live writer exited $?"
rm -rf /tmp/restored-live
run "$B" restore --config /etc/backtory-zsrc.yaml --to /tmp/restored-live www/live.log || fail "zfs: restore of the live log"
touch /tmp/stop-writer
wait "$writer" || true
n=$(wc -c </tmp/restored-live/www/live.log)
[ "$n" -gt 0 ] || fail "zfs: the restored live log is empty"
head -c "$n" /tank/srv/www/live.log | cmp -s - /tmp/restored-live/www/live.log || fail "zfs: the restored live log is not a prefix of the live one"
echo "zfs: the live log was restored as of the snapshot ($n of $(wc -c </tank/srv/www/live.log) bytes)"

# A run killed with SIGKILL while it holds its snapshot leaves it behind;
# the next run removes it and succeeds.
cat >/etc/backtory-zkill.yaml <<EOF2
host: vm
state_dir: /var/lib/backtory-zsrc
sources:
  - name: zsrc
    path: /tank/srv
    snapshot: zfs
    dataset: tank/srv
    hooks:
      post_snapshot: ["sleep 60"]
remote:
  url: file:///var/backups/zsrc
EOF2
chmod 600 /etc/backtory-zkill.yaml
"$B" backup --full --config /etc/backtory-zkill.yaml &
victim=$!
i=0
until zfs list -H -t snapshot -o name | grep -q backtory-; do
	i=$((i + 1))
	[ "$i" -lt 60 ] || fail "zfs: the killed run never took its snapshot"
	sleep 1
done
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
zfs list -H -t snapshot -o name | grep -q backtory- || fail "zfs: SIGKILL left no snapshot to clean up (the test proves nothing)"
run "$B" backup --full --config /etc/backtory-zsrc.yaml || fail "zfs: the run after a SIGKILL"
if zfs list -H -t snapshot -o name | grep -q backtory-; then
	zfs list -t snapshot
	fail "zfs: the stale snapshot of the killed run is left"
fi
echo "zfs: the next run removed the killed run's snapshot"

# LVM: vg0/srv, ext4, a classic snapshot.
run lvm pvcreate -q /dev/vdb
run lvm vgcreate -q vg0 /dev/vdb
run lvm lvcreate -q --yes -L 256M -n srv vg0
mkfs.ext4 -q -F /dev/vg0/srv
mkdir -p /srv
mount -t ext4 /dev/vg0/srv /srv
tree /srv
config lsrc /srv "    snapshot: lvm
    lv: vg0/srv
    snapshot_size: 64M"
check lsrc /srv
if lvm lvs --noheadings -o lv_name vg0 | grep -q backtory-; then
	lvm lvs
	fail "lvm: a backtory snapshot is left"
fi
echo "E2E OK: zfs and lvm backups read their snapshots and released them"
