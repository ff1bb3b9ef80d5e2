#!/bin/bash
# mutate.sh changes about 1% of a dataset built by dataset.sh, deterministically.
#
#   mutate.sh plan DATA SEED > PLAN    write the list of changes (reads DATA only)
#   mutate.sh apply DATA PLAN          apply them (to a fresh copy of the same data)
#
# The plan comes from a fixed pseudo-random sequence (Park-Miller, exact in any
# awk) over the files in byte order, so one seed on one dataset always gives the
# same changes. Kinds of change, each on about 0.2% of the tree's files:
# in-place edits of 1..64 bytes (16 in the big file, 10 in files over 1 MiB, and
# in small files), appends of 1..128 KiB, new files, deletions, renames, and
# metadata changes (mode or mtime only). Apply prints one summary line.
set -eu
export LC_ALL=C

cmd=${1:?usage: mutate.sh plan DATA SEED | apply DATA PLAN}
data=${2:?usage: mutate.sh plan DATA SEED | apply DATA PLAN}

plan() {
	local seed=$1
	local big_size
	big_size=$(stat -c %s "$data/big/disk.img")
	(cd "$data" && find tree -type f ! -path $'*\n*' -printf '%s\t%p\n' | sort -t $'\t' -k2,2) |
		awk -F'\t' -v seed="$seed" -v big="$big_size" '
	function rnd() { x = (x * 16807) % 2147483647; return x / 2147483647 }
	function rint(n) { return int(rnd() * n) }
	function text(len,   s) {   # printable, deterministic bytes of length len
		s = ""
		while (length(s) < len) s = s sprintf("%08x", rint(2147483647))
		return substr(s, 1, len)
	}
	BEGIN { x = seed % 2147483646 + 1; OFS = "\t" }
	{ size[NR] = $1 + 0; path[NR] = $2; if ($1 + 0 >= 1048576) large++ }
	END {
		for (k = 0; k < 16; k++)
			print "edit", "big/disk.img", int(big / 16 * k) + rint(int(big / 16) - 64), text(1 + rint(64))
		for (j = 1; j <= NR; j++) {
			if (size[j] >= 1048576 && rnd() < 10 / large) {
				print "edit", path[j], rint(size[j] - 64), text(1 + rint(64)); continue
			}
			r = rnd()
			if (r < 0.002 && size[j] > 0) print "edit", path[j], rint(size[j]), text(1 + rint(64))
			else if (r < 0.004) print "append", path[j], rint(big - 131072), 1 + rint(131072)
			else if (r < 0.006) print "new", path[j], rint(big - 262144), 1 + rint(size[j] < 262144 ? size[j] + 1 : 262144)
			else if (r < 0.008) print "delete", path[j]
			else if (r < 0.010) print "rename", path[j]
			else if (r < 0.011) print "chmod", path[j]
			else if (r < 0.012) print "touch", path[j]
		}
	}'
}

apply() {
	local planf=$1
	local op p a b n=0 written=0
	local -A count=()
	cd "$data"
	while IFS=$'\t' read -r op p a b; do
		case $op in
		edit) # b is the text, a the offset; edits may grow a file by a few bytes at its end
			printf '%s' "$b" | dd of="$p" bs=64K seek="$a" oflag=seek_bytes conv=notrunc status=none
			written=$((written + ${#b})) ;;
		append) # a: offset into the big file, b: length; bytes rotated by two values
			tail -c +"$((a + 1))" big/disk.img | head -c "$b" | tr '\000-\377' '\002-\377\000\001' >>"$p"
			written=$((written + b)) ;;
		new)
			tail -c +"$((a + 1))" big/disk.img | head -c "$b" | tr '\000-\377' '\003-\377\000-\002' >"${p%/*}/new-${p##*/}"
			written=$((written + b)) ;;
		delete) rm -f "$p" ;;
		rename) mv "$p" "${p%/*}/renamed-${p##*/}" ;;
		chmod) chmod 0600 "$p" ;;
		touch) touch -m -d @1700000000 "$p" ;;
		*)
			echo "mutate.sh: bad plan line: $op" >&2
			exit 1
			;;
		esac
		count[$op]=$((${count[$op]:-0} + 1))
		n=$((n + 1))
	done <"$planf"
	local summary="ops=$n bytes_written=$written"
	for op in edit append new delete rename chmod touch; do
		summary+=" $op=${count[$op]:-0}"
	done
	echo "$summary"
}

case $cmd in
plan) plan "${3:?usage: mutate.sh plan DATA SEED}" ;;
apply) apply "$(realpath "${3:?usage: mutate.sh apply DATA PLAN}")" ;;
*)
	echo "mutate.sh: unknown command $cmd (want plan or apply)" >&2
	exit 2
	;;
esac
