#!/bin/bash
# run.sh measures backtory side by side with duplicity, restic and borg (and rdiff
# for the delta primitives), in one run, on the same data, and prints a table of
# ratios. It is what `make bench-peers` runs; docs/benchmarks.md explains the method.
#
# Environment (all optional):
#   BENCH_SIZE=full|small   full: ~1.5 GiB, ~100k files, median of 3 runs (default)
#                           small: ~150 MiB, ~10k files, 1 run (a quick check)
#   BENCH_RUNS=N            runs per measurement (default 3 for full, 1 for small)
#   BENCH_TOOLS="..."       subset of: backtory duplicity restic borg limit rdiff
#   BENCH_WORK=DIR          scratch space (default bench/work; removed at the end)
#   BENCH_KEEP=1            keep BENCH_WORK (dataset, repos, logs) for inspection
#   BENCH_RESULTS=DIR       where peers-<size>.{md,json,tsv} go (default bench/results)
#   BACKTORY=PATH           the backtory binary to use (default: make build, or go build)
#   BENCH_SEED=N            seed of the mutation (default 20261123)
#   BENCH_BACKTORY_ENCRYPTION=0   run backtory without its encryption section (the
#                           report says so); for builds that cannot seal yet
#
# Each measured command runs under /usr/bin/time: wall, user+sys CPU of the
# process tree, and peak RSS of its largest process. Logs of every command are
# under BENCH_WORK/logs while it runs.
set -eu
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=${BENCH_SIZE:-full}
case $size in
full) runs=${BENCH_RUNS:-3} ;;
small) runs=${BENCH_RUNS:-1} ;;
*)
	echo "run.sh: BENCH_SIZE must be full or small, not $size" >&2
	exit 2
	;;
esac
tools=${BENCH_TOOLS:-backtory duplicity restic borg limit rdiff}
work=${BENCH_WORK:-$root/bench/work}
results=${BENCH_RESULTS:-$root/bench/results}
seed=${BENCH_SEED:-20261123}

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
has_tool() { case " $tools " in *" $1 "*) return 0 ;; esac; return 1; }

# --- preparation: tools, backtory binary, disk space, work dir -------------

[ -n "${BENCH_NO_DEPS:-}" ] || "$here/deps.sh"

bt=${BACKTORY:-}
bt_why=""
if has_tool backtory || has_tool rdiff; then
	if [ -z "$bt" ]; then
		if [ -f "$root/Makefile" ] && grep -q '^build:' "$root/Makefile"; then
			make -C "$root" -s build >&2 && bt=$root/build/backtory || bt_why="make build failed"
		else
			(cd "$root" && go build -o build/backtory ./cmd/backtory) && bt=$root/build/backtory ||
				bt_why="go build failed"
		fi
	fi
	bt=${bt:+$(realpath "$bt")}
fi
# bt_has CMD: backtory lists CMD among its commands.
bt_has() { [ -n "$bt" ] && "$bt" --help 2>&1 | grep -qE "^  $1( |\$)"; }

mkdir -p "$work"
work=$(realpath "$work")
# The work dir is emptied at the start and the end: only ever one of ours.
if [ -n "$(ls -A "$work")" ] && [ ! -e "$work/.bench-peers" ]; then
	echo "run.sh: $work is not empty and not a work dir of this script; set BENCH_WORK to an empty or new directory" >&2
	exit 2
fi
rm -rf "${work:?}"/*
touch "$work/.bench-peers"
# Room for the dataset three times (pristine, data, a restore) and the repositories.
if [ "$size" = full ]; then need_kib=$((1536 * 1024 * 7)); else need_kib=$((160 * 1024 * 7)); fi
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
if [ "$free_kib" -lt "$need_kib" ]; then
	echo "run.sh: $work has $((free_kib >> 20)) GiB free, the $size benchmark needs $((need_kib >> 20)) GiB; set BENCH_WORK to a larger disk" >&2
	exit 1
fi
cleanup() { [ -n "${BENCH_KEEP:-}" ] || rm -rf "${work:?}"/*; }
trap cleanup EXIT
trap 'exit 130' INT TERM

pristine=$work/pristine
data=$work/data
repo=$work/repo
restore=$work/restore
logs=$work/logs
mkdir -p "$logs" "$work/home" "$work/keys"
tsv=$work/results.tsv
printf 'run\ttool\top\tstatus\twall_s\tuser_s\tsys_s\trss_kib\tbytes\tverify\n' >"$tsv"

# The peers keep their keys, caches and config under the work dir.
export HOME=$work/home GNUPGHOME=$work/gnupg
export PASSPHRASE="" SIGN_PASSPHRASE=""
export RESTIC_PASSWORD=backtory-bench RESTIC_CACHE_DIR=$work/cache/restic
export BORG_PASSPHRASE=backtory-bench BORG_BASE_DIR=$work/cache/borg
mkdir -m 0700 "$GNUPGHOME"

# --- machine, dataset, mutation plan, keys ----------------------------------

ver() { "$@" 2>&1 | head -n 1; }
{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "kernel=$(uname -sr)"
	echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "cores=$(nproc)"
	echo "memory=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "filesystem=$(df -PT "$work" | awk 'NR == 2 { print $2 }')"
	# shellcheck disable=SC1091
	echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "backtory=${bt:+$("$bt" version 2>&1 | head -n 1)}"
	echo "duplicity=$(ver duplicity --version)"
	echo "restic=$(ver restic version)"
	echo "borg=$(ver borg --version)"
	echo "rdiff=$(ver rdiff --version)"
	echo "gpg=$(ver gpg --version)"
	echo "zstd=$(ver zstd --version | sed 's/^\*\*\* //; s/, by .*//')"
	echo "tar=$(ver tar --version)"
} >"$work/machine.txt"

say "building the $size dataset in $pristine"
dataset=$("$here/dataset.sh" "$pristine" "$size")
say "dataset: $dataset"
"$here/mutate.sh" plan "$pristine" "$seed" >"$work/plan.tsv"

say "generating the OpenPGP key"
gpg --batch --pinentry-mode loopback --passphrase '' \
	--quick-gen-key 'backtory bench <bench@backtory.invalid>' default default never 2>"$logs/gpg-keygen.log"
fpr=$(gpg --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }')
dup_opts=(--name bench --encrypt-key "$fpr" --sign-key "$fpr" --archive-dir "$work/cache/duplicity")

# backtory: its own key if it can make one, else the same key exported from gpg.
bt_conf=$work/backtory.yaml
if has_tool backtory && [ -n "$bt" ]; then
	if bt_has key && "$bt" key generate --name bench --public "$work/keys/host.pub.asc" \
		--secret "$work/keys/host.sec.asc" >"$logs/backtory-keygen.log" 2>&1; then
		bt_key="a key from backtory key generate"
	else
		gpg --armor --export "$fpr" >"$work/keys/host.pub.asc"
		gpg --batch --pinentry-mode loopback --passphrase '' --armor \
			--export-secret-keys "$fpr" >"$work/keys/host.sec.asc"
		bt_key="the gpg key, exported"
	fi
	cat >"$bt_conf" <<-EOF
		host: bench
		state_dir: $work/cache/backtory
		sources:
		  - name: data
		    path: $data
		    snapshot: none
		remote:
		  url: file://$repo/backtory
		compression: zstd:3
		volume_size: 256MiB
	EOF
	if [ "${BENCH_BACKTORY_ENCRYPTION:-1}" = 0 ]; then
		echo "backtory_encryption=OFF (BENCH_BACKTORY_ENCRYPTION=0)" >>"$work/machine.txt"
	else
		cat >>"$bt_conf" <<-EOF
			encryption:
			  recipients: [$work/keys/host.pub.asc]
			  signing_key: $work/keys/host.sec.asc
		EOF
		echo "backtory_encryption=on, OpenPGP with $bt_key" >>"$work/machine.txt"
	fi
fi

# --- measuring ----------------------------------------------------------------

# record TOOL OP STATUS [BYTES [VERIFY]]: one row of results.tsv from the last measure.
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$1" "$2" "$3" \
		"${m_wall:-}" "${m_user:-}" "${m_sys:-}" "${m_rss:-}" "${4:-}" "${5:-}" >>"$tsv"
}

# measure TOOL OP CMD...: run CMD under /usr/bin/time; sets m_status (ok, failed,
# or n/a when backtory rejects the command line as a usage error) and m_wall,
# m_user, m_sys, m_rss.
measure() {
	local tool=$1 op=$2 rc=0
	shift 2
	local log=$logs/r$run-$tool-$op.log tf=$logs/r$run-$tool-$op.time
	{
		printf '+'
		printf ' %q' "$@"
		echo
	} >"$log"
	/usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >>"$log" 2>&1 || rc=$?
	read -r m_wall m_user m_sys m_rss < <(tail -n 1 "$tf") || true
	m_status=ok
	if [ "$rc" -ne 0 ]; then
		m_status=failed
		[ "$tool" = backtory ] && [ "$rc" -eq 2 ] && m_status=n/a
		say "$tool $op: $m_status (exit $rc): $(grep -v '^+ ' "$log" | tail -n 1)"
		m_wall='' m_user='' m_sys='' m_rss=''
	else
		say "$tool $op: ${m_wall}s wall, $(awk -v u="$m_user" -v s="$m_sys" 'BEGIN { print u + s }')s CPU, $((m_rss / 1024)) MiB RSS"
	fi
}

# skip TOOL OP WHY: record a row that was not measured.
skip() {
	m_wall='' m_user='' m_sys='' m_rss=''
	record "$1" "$2" n/a
	[ "$run" -ne 1 ] || say "$1 $2: n/a ($3)"
}

# tool_cmd TOOL OP: the command line of one operation, in the array cmd.
# shellcheck disable=SC2016 # the bash -c scripts take their paths as arguments
tool_cmd() {
	case $1-$2 in
	duplicity-full) cmd=(duplicity full "${dup_opts[@]}" "$data" "file://$repo/duplicity") ;;
	duplicity-incr) cmd=(duplicity incremental "${dup_opts[@]}" "$data" "file://$repo/duplicity") ;;
	duplicity-restore) cmd=(duplicity restore "${dup_opts[@]}" "file://$repo/duplicity" "$restore/duplicity") ;;
	restic-full | restic-incr) cmd=(restic --repo "$repo/restic" backup "$data") ;;
	restic-restore) cmd=(restic --repo "$repo/restic" restore latest --target "$restore/restic") ;;
	borg-full) cmd=(borg create "$repo/borg::full" "$data") ;;
	borg-incr) cmd=(borg create "$repo/borg::incr" "$data") ;;
	borg-restore) cmd=(bash -c 'mkdir -p "$1" && cd "$1" && exec borg extract "$2"' _ "$restore/borg" "$repo/borg::incr") ;;
	backtory-full) cmd=("$bt" backup --config "$bt_conf") ;;
	backtory-incr) cmd=("$bt" backup --diff --config "$bt_conf") ;;
	backtory-restore) cmd=("$bt" restore --config "$bt_conf" --to "$restore/backtory") ;;
	limit-full) cmd=(bash -c 'tar -C "$1" -cf - "$2" | zstd -T0 -3 -q >/dev/null' _ "$work" data) ;;
	esac
}

# restored_root TOOL: the directory holding the restored copy of $data.
restored_root() {
	local d
	for d in "$restore/$1" "$restore/$1$data" "$restore/$1/data"; do
		[ -d "$d/big" ] && { echo "$d"; return; }
	done
	echo "$restore/$1"
}

# manifest DIR: type, mode, path and symlink target of everything, and the MD5 of
# every regular file, in byte order.
manifest() {
	(
		cd "$1"
		find . -mindepth 1 \( -type l -printf '%y %P -> %l\n' \) -o \( ! -type l -printf '%y %m %P\n' \) | sort
		find . -type f -print0 | sort -z | xargs -0 -r md5sum
	)
}

backup_tools=()
for t in backtory duplicity restic borg; do has_tool "$t" && backup_tools+=("$t"); done

# backtory_ready: the backtory commands a backup row needs are there.
backtory_ready() {
	[ -n "$bt" ] || { bt_why=${bt_why:-no binary}; return 1; }
	bt_has backup || { bt_why="no backup command yet"; return 1; }
	bt_has restore || { bt_why="no restore command yet"; return 1; }
}

for run in $(seq 1 "$runs"); do
	say "run $run of $runs"
	rm -rf "$data" "$repo" "$restore" "$work/cache"
	mkdir -p "$repo" "$restore" "$work/cache"
	cp -a "$pristine" "$data"
	if has_tool restic; then
		restic init --repo "$repo/restic" >"$logs/r$run-restic-init.log" 2>&1
	fi
	if has_tool borg; then
		borg init --encryption=repokey "$repo/borg" >"$logs/r$run-borg-init.log" 2>&1
	fi
	declare -A ok=() full_bytes=()

	for t in "${backup_tools[@]}"; do
		if [ "$t" = backtory ] && ! backtory_ready; then
			skip backtory full "$bt_why"
			continue
		fi
		tool_cmd "$t" full
		measure "$t" full "${cmd[@]}"
		full_bytes[$t]=$(du -sb "$repo/$t" 2>/dev/null | cut -f1)
		[ "$m_status" = ok ] && ok[$t]=1
		record "$t" full "$m_status" "${full_bytes[$t]}"
	done
	if has_tool limit; then
		tool_cmd limit full
		measure limit full "${cmd[@]}"
		record limit full "$m_status"
	fi

	mutation=$("$here/mutate.sh" apply "$data" "$work/plan.tsv")
	say "mutated: $mutation"
	manifest "$data" >"$work/manifest.ref"

	for t in "${backup_tools[@]}"; do
		if [ -z "${ok[$t]:-}" ]; then
			skip "$t" incr "no full backup"
			continue
		fi
		tool_cmd "$t" incr
		measure "$t" incr "${cmd[@]}"
		total=$(du -sb "$repo/$t" | cut -f1)
		[ "$m_status" = ok ] || unset "ok[$t]"
		record "$t" incr "$m_status" "$((total - full_bytes[$t]))"
	done

	for t in "${backup_tools[@]}"; do
		if [ -z "${ok[$t]:-}" ]; then
			skip "$t" restore "no second backup"
			continue
		fi
		tool_cmd "$t" restore
		measure "$t" restore "${cmd[@]}"
		verify=""
		if [ "$m_status" = ok ]; then
			if manifest "$(restored_root "$t")" | cmp -s - "$work/manifest.ref"; then
				verify=OK
			else
				verify=MISMATCH
				manifest "$(restored_root "$t")" | diff "$work/manifest.ref" - | head -n 20 >"$logs/r$run-$t-verify.diff" || true
				say "$t restore: the restored tree differs from the source, see $logs/r$run-$t-verify.diff"
				m_status=failed
			fi
		fi
		record "$t" restore "$m_status" "" "$verify"
		rm -rf "${restore:?}/$t"
	done

	# The delta primitives on the big file: signature of the pristine file, delta
	# of the mutated one (16 in-place edits), patch back to the mutated file.
	if has_tool rdiff; then
		d=$work/delta
		rm -rf "$d"
		mkdir -p "$d"
		for t in rdiff backtory; do
			if [ "$t" = backtory ] && ! bt_has delta; then
				for op in signature delta patch; do skip backtory "$op" "no delta command yet"; done
				continue
			fi
			if [ "$t" = rdiff ]; then
				sig=(rdiff signature) del=(rdiff delta) pat=(rdiff patch)
			else # backtory's strong sums are keyed: a fresh MAC key, as a full makes
				"$bt" delta keygen "$d/backtory.key" >"$logs/r$run-backtory-keygen.log" 2>&1 || true
				sig=("$bt" delta signature --key-file "$d/backtory.key")
				del=("$bt" delta delta --key-file "$d/backtory.key")
				pat=("$bt" delta patch)
			fi
			measure "$t" signature "${sig[@]}" "$pristine/big/disk.img" "$d/$t.sig"
			record "$t" signature "$m_status" "$(stat -c %s "$d/$t.sig" 2>/dev/null || true)"
			if [ "$m_status" != ok ]; then
				skip "$t" delta "no signature"
				skip "$t" patch "no signature"
				continue
			fi
			measure "$t" delta "${del[@]}" "$d/$t.sig" "$data/big/disk.img" "$d/$t.delta"
			record "$t" delta "$m_status" "$(stat -c %s "$d/$t.delta" 2>/dev/null || true)"
			if [ "$m_status" != ok ]; then
				skip "$t" patch "no delta"
				continue
			fi
			measure "$t" patch "${pat[@]}" "$pristine/big/disk.img" "$d/$t.delta" "$d/$t.out"
			verify=""
			if [ "$m_status" = ok ]; then
				if cmp -s "$d/$t.out" "$data/big/disk.img"; then verify=OK; else verify=MISMATCH m_status=failed; fi
			fi
			record "$t" patch "$m_status" "" "$verify"
			rm -f "$d/$t.out"
		done
	fi
	unset ok full_bytes
done

# --- report -------------------------------------------------------------------

mkdir -p "$results"
cp "$tsv" "$results/peers-$size.tsv"
awk -F'\t' -v size="$size" -v runs="$runs" -v dataset="$dataset" \
	-v mutation="$mutation" -v machine="$work/machine.txt" -v json="$results/peers-$size.json" \
	-f "$here/report.awk" "$tsv" >"$results/peers-$size.md"
cat "$results/peers-$size.md"
say "results: $results/peers-$size.md, $results/peers-$size.json, $results/peers-$size.tsv"
if awk -F'\t' 'NR > 1 && $4 == "failed" { bad = 1 } END { exit !bad }' "$tsv"; then
	echo "run.sh: some runs failed; see the status column" >&2
	exit 1
fi
