#!/bin/bash
# Peak memory of every command against the number of files: for trees of
# 50,000 and 200,000 small files (and 1,000,000 with FILES_MAX=1000000)
# it runs a full backup, a differential (0.1% of the files changed, as
# many new), list, verify --deep, restore, a second full and a prune that
# deletes the first full and its differential, and prints each run's peak
# RSS and time, then the ratio of the largest tree's peak to the 50k
# tree's for each command. Memory must stay flat in the file count.
#
# The sources live on a tmpfs (TMPFS, default /dev/shm: a million small
# files take about 4 GiB there); the remote, the state and the restored
# tree on the disk under TMPDIR. Usage: bench/memory.sh [BACKTORY]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/backtory}
[ -x "$bin" ] || make build >/dev/null
bin=$(realpath "$bin")
work=$(mktemp -d "${TMPDIR:-/var/tmp}/backtory-mem.XXXXXX")
fast=$(mktemp -d "${TMPFS:-/dev/shm}/backtory-mem.XXXXXX")
trap 'rm -rf "$work" "$fast"' EXIT
counts=${COUNTS:-"50000 200000"}
[ -n "${FILES_MAX:-}" ] && counts="$counts $FILES_MAX"
commands="full diff list verify restore full2 prune"

# tree DIR N: N small files, 1000 per directory.
tree() {
	python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "w") as f:
        f.write("file %d\n" % i)
PY
}

# change DIR N: rewrite every 1000th file, add as many new ones.
change() {
	python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 1000):
    d = os.path.join(root, "d%04d" % (i // 1000))
    with open(os.path.join(d, "f%06d.txt" % i), "a") as f:
        f.write("changed\n")
    with open(os.path.join(d, "new%06d.txt" % i), "w") as f:
        f.write("new %d\n" % i)
PY
}

# measure N NAME ARGS...: run backtory, record peak RSS (KiB) and seconds.
measure() {
	local n=$1 name=$2
	shift 2
	/usr/bin/time -f '%M %e' -o "$work/time" "$bin" "$@" --quiet --config "$work/cfg-$n.yaml" >/dev/null
	read -r rss secs <"$work/time"
	printf '%-10s %-8s %12s %10s\n' "$n" "$name" "$rss" "$secs"
	echo "$n $name $rss" >>"$work/results"
}

printf '%-10s %-8s %12s %10s\n' files command peak_rss_kib seconds
for n in $counts; do
	src=$fast/src-$n
	tree "$src" "$n"
	cat >"$work/cfg-$n.yaml" <<EOF2
host: mem
state_dir: $work/state-$n
sources: [{name: tree, path: $src}]
remote: {url: "file://$work/remote-$n"}
policy: {keep_fulls: 1}
EOF2
	measure "$n" full backup --full
	change "$src" "$n"
	sleep 1 # set ids count seconds
	measure "$n" diff backup --diff
	measure "$n" list list
	measure "$n" verify verify --deep
	measure "$n" restore restore --to "$work/restored-$n"
	rm -rf "$work/restored-$n"
	sleep 1
	measure "$n" full2 backup --full
	measure "$n" prune prune
	rm -rf "$src" "$work/remote-$n" "$work/state-$n"
done
first=${counts%% *}
last=${counts##* }
for c in $commands; do
	awk -v c="$c" -v a="$first" -v b="$last" '
		$2 == c && $1 == a { x = $3 } $2 == c && $1 == b { y = $3 }
		END { printf "%-8s peak RSS ratio, %s files / %s files: %.2f\n", c, b, a, y / x }' "$work/results"
done
