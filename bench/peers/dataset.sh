#!/bin/bash
# dataset.sh builds the benchmark dataset: real files copied from this machine,
# chosen deterministically, plus one large binary file.
#
#   dataset.sh OUT SIZE      SIZE is "small" (~150 MiB) or "full" (~1.5 GiB)
#
# OUT/tree/...         about 100k (small: 10k) real files and their symlinks, taken
#                      from the Go toolchain, /usr/share, /usr/include and /usr/lib
# OUT/big/disk.img     one 512 MiB (small: 48 MiB) binary file made of real
#                      library bytes (byte-rotated, so it does not deduplicate
#                      against the tree, but compresses like real binaries)
#
# The same machine gives the same dataset: files are walked in byte order and
# picked by a fixed pacing rule, never at random. Prints one summary line.
set -eu
export LC_ALL=C

out=${1:?usage: dataset.sh OUT small|full}
size=${2:?usage: dataset.sh OUT small|full}
case $size in
small) want_files=10000 want_bytes=$((100 << 20)) big_bytes=$((48 << 20)) ;;
full) want_files=100000 want_bytes=$((960 << 20)) big_bytes=$((512 << 20)) ;;
*)
	echo "dataset.sh: unknown size $size (want small or full)" >&2
	exit 2
	;;
esac
max_file=$((8 << 20)) # larger files are skipped: the tree is for small files

goroot=$(go env GOROOT 2>/dev/null || true)
roots=()
for r in "$goroot" /usr/share /usr/include /usr/lib; do
	[ -n "$r" ] && [ -d "$r" ] && roots+=("$r")
done

rm -rf "$out"
mkdir -p "$out/tree" "$out/big"
list=$out.list

# Candidates: regular files and symlinks, no control characters in names,
# root by root in the order above, each root in byte order.
for r in "${roots[@]}"; do
	find "$r" -xdev \( -type f -o -type l \) ! -path $'*\n*' ! -path $'*\t*' \
		-printf '%y\t%s\t%p\n' 2>/dev/null | sort -t $'\t' -k3,3
done >"$list.all"

# Pacing: walk the candidates one directory run at a time, and keep a whole run
# while both the file count and the byte count stay within their share of the
# target at this point of the walk (plus 5% slack). That spreads the picks over
# all roots, keeps directories whole like a real tree, and lands close to both
# targets.
awk -F'\t' -v nf="$want_files" -v nb="$want_bytes" -v maxf="$max_file" \
	-v n="$(wc -l <"$list.all")" '
	function flush() {
		if (gc > 0 && count + gc <= nf * i / n + nf / 20 && bytes + gb <= nb * i / n + nb / 20) {
			count += gc; bytes += gb
			printf "%s", g
		}
		g = ""; gc = 0; gb = 0
	}
	{
		dir = $3; sub(/\/[^\/]*$/, "", dir)
		if (dir != last) { flush(); last = dir }
		i++
		sz = ($1 == "l") ? 0 : $2 + 0
		if (sz > maxf) next
		gc++; gb += sz
		g = g substr($3, 2) "\n"   # relative to /, for tar -C /
	}
	END { flush() }' "$list.all" >"$list"

tar -C / --no-recursion --verbatim-files-from -T "$list" -cf - 2>/dev/null |
	tar -C "$out/tree" -xf -

# The big file: library bytes, largest libraries last, rotated by one byte value.
find /usr/lib -xdev -type f -size +64k ! -path $'*\n*' -printf '%p\n' 2>/dev/null |
	sort -r >"$list.big"
{
	for _ in 1 2 3 4 5 6 7 8; do
		xargs -d '\n' cat <"$list.big" 2>/dev/null || true
	done
} | head -c "$big_bytes" | tr '\000-\377' '\001-\377\000' >"$out/big/disk.img" || true
if [ "$(stat -c %s "$out/big/disk.img")" -ne "$big_bytes" ]; then
	echo "dataset.sh: could not fill $out/big/disk.img to $big_bytes bytes" >&2
	exit 1
fi
rm -f "$list" "$list.all" "$list.big"

files=$(find "$out" -type f | wc -l)
links=$(find "$out" -type l | wc -l)
dirs=$(find "$out" -type d | wc -l)
bytes=$(du -sb "$out" | cut -f1)
echo "files=$files symlinks=$links dirs=$dirs bytes=$bytes big_bytes=$big_bytes roots=${roots[*]}"
