#!/bin/bash
# Peak memory of a full backup against the number of files: backs up trees
# of 50,000 and 200,000 small files (and 1,000,000 with FILES_MAX=1000000)
# and prints the peak RSS of each run and their ratio. Memory must stay
# flat in the file count. Usage: bench/memory.sh [BACKTORY]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/backtory}
[ -x "$bin" ] || make build >/dev/null
work=$(mktemp -d "${TMPDIR:-/var/tmp}/backtory-mem.XXXXXX")
trap 'rm -rf "$work"' EXIT
counts="50000 200000"
[ -n "${FILES_MAX:-}" ] && counts="$counts $FILES_MAX"

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

printf '%-10s %12s %10s\n' files peak_rss_kib seconds
first=""
for n in $counts; do
	src=$work/src-$n
	tree "$src" "$n"
	cat >"$work/cfg-$n.yaml" <<EOF2
host: mem
state_dir: $work/state-$n
sources: [{name: tree, path: $src}]
remote: {url: "file://$work/remote-$n"}
EOF2
	/usr/bin/time -f '%M %e' -o "$work/time-$n" "$bin" backup --quiet --config "$work/cfg-$n.yaml"
	read -r rss secs <"$work/time-$n"
	printf '%-10s %12s %10s\n' "$n" "$rss" "$secs"
	[ -n "$first" ] || first=$rss
	last=$rss
	rm -rf "$src" "$work/remote-$n"
done
awk -v a="$first" -v b="$last" 'BEGIN { printf "peak RSS ratio, largest tree / 50k files: %.2f\n", b / a }'
