#!/bin/bash
# Usage: test/vm/bmr/tools.sh DIR
#
# The VM's initramfs lacks sfdisk, wipefs, lsblk, mkswap (with -U) and
# dumpe2fs: copies them from the host (Debian 12 as well) into DIR/real,
# with the libraries the VM does not have in DIR/lib, behind wrappers in
# DIR/bin that set LD_LIBRARY_PATH (the VM sees DIR as /host/tools).
set -eu
dir=$1
mkdir -p "$dir/bin" "$dir/real" "$dir/lib"
for b in sfdisk wipefs lsblk mkswap dumpe2fs; do
	p=$(PATH=/usr/sbin:/sbin:$PATH command -v "$b")
	cp -L "$p" "$dir/real/$b"
	ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
		case ${lib##*/} in libc.so* | libm.so* | ld-linux* | libpthread* | libdl* | librt*) continue ;; esac
		cp -nL "$lib" "$dir/lib/"
	done
	printf '#!/usr/bin/busybox sh\nLD_LIBRARY_PATH=/host/tools/lib exec /host/tools/real/%s "$@"\n' "$b" >"$dir/bin/$b"
	chmod 755 "$dir/bin/$b"
done
