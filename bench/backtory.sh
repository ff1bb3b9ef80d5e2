#!/bin/bash
# backtory's own figures, as ratios measured in one run on the same data:
#   - full backup with sealing vs without (the cost of OpenPGP);
#   - the differential after a ~1% change vs the full (time and size), and
#     the size of the change itself;
#   - restore of the differential vs the full backup's time.
# Data: bench/peers/dataset.sh (real files of this machine) and mutate.sh.
# Usage: bench/backtory.sh [small|full]   (default small, ~150 MiB)
set -eu
cd "$(dirname "$0")/.."
size=${1:-small}
bin=$(pwd)/build/backtory
make -s build
work=$(mktemp -d "${TMPDIR:-/var/tmp}/backtory-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

bench/peers/dataset.sh "$work/data" "$size" >&2
"$bin" key generate --name bench --public "$work/host.pub" --secret "$work/host.sec" >/dev/null

# conf NAME SEALED: a config backing up the dataset to its own remote.
conf() {
	{
		echo "host: bench"
		echo "state_dir: $work/state-$1"
		echo "sources: [{name: data, path: $work/data}]"
		echo "remote: {url: \"file://$work/remote-$1\"}"
		if [ "$2" = yes ]; then
			echo "encryption: {recipients: [$work/host.pub], signing_key: $work/host.sec}"
		fi
	} >"$work/$1.yaml"
}

# timed LABEL CMD...: runs CMD, records wall seconds and peak RSS.
timed() {
	local label=$1
	shift
	sync
	/usr/bin/time -f '%e %M' -o "$work/t-$label" "$@" >/dev/null
	read -r secs rss <"$work/t-$label"
	printf '%-22s %8.2f s %8d KiB\n' "$label" "$secs" "$rss"
}

# secs LABEL: the wall seconds timed recorded.
secs() { cut -d' ' -f1 "$work/t-$1"; }

stored() { du -sb "$1" | cut -f1; }

conf plain no
conf sealed yes
timed full_plain "$bin" backup -q --config "$work/plain.yaml"
timed full_sealed "$bin" backup -q --config "$work/sealed.yaml"
bench/peers/mutate.sh plan "$work/data" 1 >"$work/plan"
bench/peers/mutate.sh apply "$work/data" "$work/plan" >&2
full_bytes=$(stored "$work/remote-sealed")
timed diff_sealed "$bin" backup -q --diff --config "$work/sealed.yaml"
diff_bytes=$(($(stored "$work/remote-sealed") - full_bytes))
timed restore_diff "$bin" restore -q --config "$work/sealed.yaml" --to "$work/restored"

echo
awk -v fp="$(secs full_plain)" -v fs="$(secs full_sealed)" -v d="$(secs diff_sealed)" -v r="$(secs restore_diff)" \
	-v fb="$full_bytes" -v db="$diff_bytes" 'BEGIN {
	printf "full, sealed / unsealed time:          %.2f\n", fs / fp
	printf "differential / full time (sealed):     %.3f\n", d / fs
	printf "differential / full stored size:       %.4f (%d of %d bytes)\n", db / fb, db, fb
	printf "restore of the differential / full:    %.2f\n", r / fs
}'
