#!/bin/sh
# A real backup and restore on an embedded default: a generated sample tree,
# a local-directory remote under the build directory, no snapshot, no
# encryption. Shows that the restored tree is identical.
# Usage: scripts/demo.sh BACKTORY WORKDIR
set -eu
bin=$(realpath "$1")
work=$(realpath -m "$2")
rm -rf "$work"
mkdir -p "$work/src"
src=$work/src

echo "== building a sample tree in $src"
mkdir -p "$src/etc" "$src/srv/www" "$src/var/log" "$src/home/alice/.cache" "$src/tmp"
printf 'demo-host\n' >"$src/etc/hostname"
printf '127.0.0.1 localhost\n' >"$src/etc/hosts"
for i in $(seq 1 200); do printf 'page %s\n' "$i" >"$src/srv/www/page$i.html"; done
head -c 3000000 /dev/urandom >"$src/srv/www/video.bin"
seq 1 50000 >"$src/var/log/syslog"
truncate -s 100M "$src/var/log/sparse.img"
printf 'data in the middle' | dd of="$src/var/log/sparse.img" bs=1 seek=50000000 conv=notrunc 2>/dev/null
ln -s ../etc/hosts "$src/srv/hosts-link"
ln -s /does/not/exist "$src/srv/dangling"
ln "$src/etc/hosts" "$src/etc/hosts.hardlink"
mkfifo "$src/tmp/fifo"
chmod 1777 "$src/tmp"
chmod 4755 "$src/srv/www/page1.html"
printf 'cached\n' >"$src/home/alice/.cache/junk"
printf 'odd name\n' >"$src/home/alice/name with
newline"
cp -a /usr/share/common-licenses "$src/usr-licenses" 2>/dev/null || true

cat >"$work/backtory.yaml" <<EOF2
# The demo's config: one source, no snapshot, a local directory as remote.
host: demo
state_dir: $work/state
sources:
  - name: sample
    path: $src
    snapshot: none
    exclude: ["/home/*/.cache"]
remote:
  url: file://$work/remote
volume_size: 1MiB
compression: zstd:3
EOF2

echo "== backtory backup"
"$bin" backup --config "$work/backtory.yaml" --verbose
echo "== backtory list"
"$bin" list --config "$work/backtory.yaml"
echo "== backtory verify --deep"
"$bin" verify --config "$work/backtory.yaml" --deep
echo "== backtory restore --to $work/restored"
"$bin" restore --config "$work/backtory.yaml" --to "$work/restored" --verbose

echo "== comparing the source and the restored tree"
# Everything but the excluded cache must be identical: content, type,
# mode, owner, mtime (ns), link targets; sparse files stay sparse.
describe() {
	(cd "$1" && find . -path ./home/alice/.cache -prune -o -printf '%p %y %m %U %G %T@ %s %l\n' | LC_ALL=C sort)
}
describe "$src" >"$work/src.list"
describe "$work/restored" >"$work/restored.list"
if ! diff "$work/src.list" "$work/restored.list"; then
	echo "DEMO FAILED: metadata differs" >&2
	exit 1
fi
if ! diff -r --no-dereference -x .cache "$src" "$work/restored" >/dev/null 2>"$work/diff.err"; then
	grep -v 'is a fifo while file' "$work/diff.err" >&2 || true
	if grep -qv 'is a fifo while file' "$work/diff.err"; then
		echo "DEMO FAILED: content differs" >&2
		exit 1
	fi
fi
echo "sparse file: $(du -k "$src/var/log/sparse.img" | cut -f1) KiB on disk before, $(du -k "$work/restored/var/log/sparse.img" | cut -f1) KiB after"
echo "DEMO OK: $(wc -l <"$work/src.list") paths restored identical (the excluded cache was left out); remote at $work/remote"
