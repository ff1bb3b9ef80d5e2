#!/bin/bash
# Measures `backtory delta` against librsync's rdiff on the same file pairs in
# one run, and prints throughputs, ratios and delta sizes.
#
#   bench/rsyncdelta.sh                  # 1 GiB files in /var/tmp/rsyncdelta-bench
#   SIZE=$((256<<20)) bench/rsyncdelta.sh
#   DIR=/some/where KEEP=1 bench/rsyncdelta.sh   # keep the generated files
#   REPS=1 bench/rsyncdelta.sh           # one run of each command (default: best of 3)
#
# Pairs: old.bin (random), new.bin (old.bin with ~1% scattered edits: ~1 edit
# per MiB of 1..20000 bytes), rand.bin (nothing matches). Outputs go to files
# in the same directory (page cache), as a user would run the commands.
# rdiff runs at our block length (BlockLen: 8 KiB for 1 GiB) so the delta
# sizes compare like with like; rdiff's default (sqrt rule) is also shown.
set -eu

SIZE=${SIZE:-$((1 << 30))}
DIR=${DIR:-/var/tmp/rsyncdelta-bench}
KEEP=${KEEP:-0}
REPS=${REPS:-3} # runs of each command; the best is reported
root=$(cd "$(dirname "$0")/.." && pwd)

command -v rdiff >/dev/null || bash "$root/test/deps/rdiff.sh"
mkdir -p "$DIR"
cd "$root"
go build -o "$DIR/backtory" ./cmd/backtory
if [ ! -e "$DIR/new.bin" ] || [ "$(stat -c %s "$DIR/old.bin")" != "$SIZE" ]; then
	echo "generating $SIZE-byte files in $DIR ..." >&2
	go run ./rsyncdelta/internal/benchgen -size "$SIZE" -dir "$DIR"
fi
cd "$DIR"
rm -f key && ./backtory delta keygen key
cat old.bin new.bin rand.bin >/dev/null # warm the page cache

# secs CMD...: runs CMD $REPS times and prints the best wall-clock and the
# best CPU (user+sys) seconds.
secs() {
	local TIMEFORMAT='%R %U %S' out best=""
	for _ in $(seq "$REPS"); do
		out=$({ time "$@" >/dev/null; } 2>&1)
		best="$best
$(echo "$out" | tail -1)"
	done
	echo "$best" | awk 'NF == 3 {
		w = $1; c = $2 + $3
		if (bw == "" || w < bw) bw = w
		if (bc == "" || c < bc) bc = c
	} END { if (bw < 0.001) bw = 0.001; if (bc < 0.001) bc = 0.001; print bw, bc }'
}

bt() { ./backtory delta "$@"; }
calc() { awk "BEGIN { x = $1; if (x != x) x = 0; printf \"%.6f\", x }"; }
ops=(signature delta-1%-edits delta-unchanged delta-no-match patch)
declare -A ours theirs in_bytes
in_bytes[signature]=$(stat -c %s old.bin)
in_bytes[delta-1%-edits]=$(stat -c %s new.bin)
in_bytes[delta-unchanged]=$(stat -c %s old.bin)
in_bytes[delta-no-match]=$(stat -c %s rand.bin)
in_bytes[patch]=$(stat -c %s new.bin)

echo "running backtory ..." >&2
ours[signature]=$(secs bt signature --key-file key old.bin our.sig)
# The block length our signature chose: header bytes 8..11, big-endian.
bl=$(od -An -tu1 -j8 -N4 our.sig | awk '{print $1*16777216+$2*65536+$3*256+$4}')
ours[delta-1%-edits]=$(secs bt delta --key-file key our.sig new.bin our-edits.delta)
ours[delta-unchanged]=$(secs bt delta --key-file key our.sig old.bin our-same.delta)
ours[delta-no-match]=$(secs bt delta --key-file key our.sig rand.bin our-rand.delta)
ours[patch]=$(secs bt patch old.bin our-edits.delta our.out)

echo "running rdiff -b $bl ..." >&2
theirs[signature]=$(secs rdiff -f -b "$bl" signature old.bin rdiff.sig)
theirs[delta-1%-edits]=$(secs rdiff -f delta rdiff.sig new.bin rdiff-edits.delta)
theirs[delta-unchanged]=$(secs rdiff -f delta rdiff.sig old.bin rdiff-same.delta)
theirs[delta-no-match]=$(secs rdiff -f delta rdiff.sig rand.bin rdiff-rand.delta)
theirs[patch]=$(secs rdiff -f patch old.bin rdiff-edits.delta rdiff.out)

echo "running rdiff with its default block length, for delta sizes ..." >&2
rdiff -f signature old.bin rdiff-default.sig
rdiff -f delta rdiff-default.sig new.bin rdiff-default-edits.delta

for f in our.out rdiff.out; do
	cmp -s "$f" new.bin || { echo "FAIL: $f differs from new.bin" >&2; exit 1; }
done
rdiff -f patch old.bin our-edits.delta check.out && cmp -s check.out new.bin ||
	{ echo "FAIL: rdiff patch of our delta differs from new.bin" >&2; exit 1; }
./backtory delta patch old.bin rdiff-edits.delta check.out && cmp -s check.out new.bin ||
	{ echo "FAIL: our patch of rdiff's delta differs from new.bin" >&2; exit 1; }

echo
echo "backtory delta vs rdiff $(dpkg-query -W -f='${Version}' rdiff 2>/dev/null || true), $(stat -c %s old.bin) bytes, block length $bl, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "best of $REPS runs each; wall = elapsed seconds; cpu = user+sys seconds (less sensitive to other load on the machine)"
printf '%-16s %8s %8s %8s %8s %11s %11s %8s %8s\n' operation "ours" "rdiff" "ours" "rdiff" "ours" "rdiff" "speed-up" "cpu"
printf '%-16s %8s %8s %8s %8s %11s %11s %8s %8s\n' "" "wall s" "wall s" "cpu s" "cpu s" "MiB/s wall" "MiB/s wall" "wall" "ratio"
for op in "${ops[@]}"; do
	read -r ow oc <<<"${ours[$op]}"
	read -r rw rc <<<"${theirs[$op]}"
	n=${in_bytes[$op]}
	printf '%-16s %8.2f %8.2f %8.2f %8.2f %11.0f %11.0f %7.1fx %7.1fx\n' "$op" "$ow" "$rw" "$oc" "$rc" \
		"$(calc "$n / 1048576 / $ow")" "$(calc "$n / 1048576 / $rw")" \
		"$(calc "$rw / $ow")" "$(calc "$rc / $oc")"
done
echo
printf '%-34s %14s %14s\n' size ours rdiff
printf '%-34s %14d %14d\n' "signature" "$(stat -c %s our.sig)" "$(stat -c %s rdiff.sig)"
printf '%-34s %14d %14d\n' "delta, 1% edits" "$(stat -c %s our-edits.delta)" "$(stat -c %s rdiff-edits.delta)"
printf '%-34s %14d %14d\n' "delta, unchanged" "$(stat -c %s our-same.delta)" "$(stat -c %s rdiff-same.delta)"
printf '%-34s %14d %14d\n' "delta, no match" "$(stat -c %s our-rand.delta)" "$(stat -c %s rdiff-rand.delta)"
printf '%-34s %14s %14d\n' "delta, 1% edits, rdiff default -b" "" "$(stat -c %s rdiff-default-edits.delta)"
printf 'delta size ratio (ours / rdiff at the same block length): %.4f\n' "$(calc "$(stat -c %s our-edits.delta) / $(stat -c %s rdiff-edits.delta)")"

rm -f ./*.sig ./*.delta ./*.out key
if [ "$KEEP" = 0 ]; then
	rm -f old.bin new.bin rand.bin backtory
fi
