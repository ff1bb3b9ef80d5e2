#!/bin/bash
# s3.sh: backtory against restic on the same SeaweedFS cluster (internal/s3test),
# in one run: full and second backup as ratios, and backtory's full against a
# plain S3 client uploading the same sealed bytes (the limit). Uses the peer
# benchmark's dataset and mutation (bench/peers); BENCH_SIZE=small|full.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
size=${BENCH_SIZE:-small}
work=${BENCH_WORK:-$root/bench/work-s3}
bash "$root/test/deps/weed.sh"
command -v restic >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends restic
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
"$here/peers/dataset.sh" "$work/data" "$size" >&2
cp -a "$work/data" "$work/mutated"
"$here/peers/mutate.sh" plan "$work/data" 20261123 >"$work/plan"
"$here/peers/mutate.sh" apply "$work/mutated" "$work/plan" >&2
cd "$root"
BACKTORY_BENCH_S3_DATA=$work/data BACKTORY_BENCH_S3_MUTATED=$work/mutated \
	go test -run '^$' -bench BenchmarkS3Peers -benchtime 1x -timeout 60m -v ./cmd/backtory/
