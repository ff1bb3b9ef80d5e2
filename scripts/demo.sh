#!/bin/sh
# What backtory is for, in a minute, on an embedded default: a generated
# sample tree, a local-directory remote under the build directory, no
# snapshot. It generates the host key, writes a sealed full, changes the
# tree, writes a sealed differential (and says why), lists both, restores
# each point in time and compares it with what was saved, restores the full
# with stock tools alone (gpg -d | zstd -d | tar -x), verifies every set
# deeply, and writes the bare-metal recovery script and shows its plan.
# Needs only what `make` built, plus gpg, zstd and tar.
# Usage: scripts/demo.sh BACKTORY WORKDIR
set -eu
bin=$(realpath "$1")
work=$(realpath -m "$2")
rm -rf "$work"
mkdir -p "$work/src"
src=$work/src
say() { printf '\n== %s\n' "$*"; }
run() {
	printf '$ backtory %s\n' "$*"
	"$bin" "$@"
}

say "a sample tree in $src"
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

# snapshot DIR: every path's type, mode, owner, mtime (ns), size and link
# target, then every file's SHA-256 (the excluded cache left out).
snapshot() {
	(cd "$1" && find . -path ./home/alice/.cache -prune -o -printf '%p %y %m %U %G %T@ %s %l\n' | LC_ALL=C sort)
	sums "$1"
}
# sums DIR: every file's SHA-256.
sums() {
	(cd "$1" && find . -path ./home/alice/.cache -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
# same WHAT SAVED DIR: DIR holds what SAVED recorded.
same() {
	snapshot "$3" >"$work/got.txt"
	if ! diff "$2" "$work/got.txt" >"$work/diff.txt"; then
		head -n 20 "$work/diff.txt" >&2
		echo "DEMO FAILED: $1 differs from what was saved" >&2
		exit 1
	fi
	echo "$1: identical to what was saved ($(grep -c '' "$2") lines compared: metadata and content)"
}

say "the host's OpenPGP key (backtory init does this on a real host)"
run key generate --name "backtory demo" --email root@demo.example \
	--public "$work/keys/host.pub.asc" --secret "$work/keys/host.sec.asc"

cat >"$work/backtory.yaml" <<EOF2
# The demo's config: one source, no snapshot, a local directory as remote,
# every object compressed, encrypted to the host key and signed by it.
host: demo
state_dir: $work/state
sources:
  - name: sample
    path: $src
    snapshot: none
    exclude: ["/home/*/.cache"]
remote:
  url: file://$work/remote
encryption:
  recipients: [$work/keys/host.pub.asc]
  signing_key: $work/keys/host.sec.asc
volume_size: 1MiB
compression: zstd:3
EOF2
cfg="--config $work/backtory.yaml"

say "a sealed full (the first backup of a source is a full)"
# shellcheck disable=SC2086
run backup $cfg
snapshot "$src" >"$work/saved-full.txt"
sums "$src" >"$work/saved-full.sums"

say "a change: a log grows, a page is edited, one is deleted, a file is added, a mode changes"
sleep 1 # set ids have a one-second resolution
seq 50001 51000 >>"$src/var/log/syslog"
printf 'page 2, edited\n' >"$src/srv/www/page2.html"
rm "$src/srv/www/page200.html"
printf 'new report\n' >"$src/srv/report.txt"
chmod 600 "$src/etc/hosts"

say "a sealed differential: the log line says why it is one (and not a full)"
# shellcheck disable=SC2086
run backup $cfg
snapshot "$src" >"$work/saved-diff.txt"

say "both sets"
# shellcheck disable=SC2086
run list $cfg
sets=$work/remote/demo/sample
full=$(cd "$sets" && ls -d full-*)
diff=$(cd "$sets" && ls -d diff-*)

say "restore each point in time and compare it with what was saved"
# shellcheck disable=SC2086
run restore $cfg --quiet --set "$full" --to "$work/restored-full"
same "$full" "$work/saved-full.txt" "$work/restored-full"
# shellcheck disable=SC2086
run restore $cfg --quiet --set "$diff" --to "$work/restored-diff"
same "$diff" "$work/saved-diff.txt" "$work/restored-diff"

say "the full restored with stock tools alone: gpg -d | zstd -d | tar -x, volume by volume"
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --import "$work/keys/host.sec.asc"
mkdir "$work/stock-full"
for v in "$sets/$full"/vol-*.tar.zst.pgp; do
	echo "gpg -d $(basename "$v") | zstd -d | tar -x"
	gpg --batch --quiet -d "$v" 2>/dev/null | zstd -q -d | tar -x --numeric-owner -C "$work/stock-full"
done
# Stock tar writes the sparse file whole and sets no directory times
# after filling them: compare the content of every file.
sums "$work/stock-full" >"$work/stock.txt"
if ! diff "$work/saved-full.sums" "$work/stock.txt" >"$work/diff.txt"; then
	head -n 20 "$work/diff.txt" >&2
	echo "DEMO FAILED: the stock-tool restore differs" >&2
	exit 1
fi
echo "stock tools: every file of $full identical ($(grep -c '' "$work/stock.txt") files);" \
	"scripts/restore-with-stock-tools.sh also checks the signatures and applies the differential"

say "verify --deep: every object's hash and signature, every file decoded and hashed"
# shellcheck disable=SC2086
run verify $cfg --deep

say "the bare-metal recovery script, and its plan (it touches nothing)"
# shellcheck disable=SC2086
run recovery-script $cfg --quiet -o "$work/recover.sh"
sh "$work/recover.sh" plan >"$work/plan.txt" 2>&1 || {
	cat "$work/plan.txt" >&2
	echo "DEMO FAILED: recover.sh plan" >&2
	exit 1
}
head -n 12 "$work/plan.txt"
echo "... ($(grep -c '' "$work/plan.txt") lines in $work/plan.txt)"

echo
echo "DEMO OK: a sealed full and differential, each restored identical, the full also with gpg, zstd and tar;" \
	"remote at $work/remote"
