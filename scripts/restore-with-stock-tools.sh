#!/bin/sh
# Restores a backtory full, and brings it forward to one of its
# differentials, with stock tools only: gpg (for sealed sets), zstd, GNU
# tar, rdiff, xargs. This is the path of last resort that docs/format.md
# describes; `backtory restore` is the fast, verifying path.
#
# Usage: restore-with-stock-tools.sh FULL_DIR [DIFF_DIR] TARGET
#   FULL_DIR, DIFF_DIR: local copies of the sets' directories (vol-*.tar*)
#   TARGET: an empty directory
# Sealed sets need the secret key in gpg's keyring (GNUPGHOME).
set -eu

if [ $# -eq 2 ]; then
	full=$1 diff='' target=$2
elif [ $# -eq 3 ]; then
	full=$1 diff=$2 target=$3
else
	echo "usage: $0 FULL_DIR [DIFF_DIR] TARGET" >&2
	exit 2
fi

# decode VOLUME: its tar stream on stdout.
decode() {
	case $1 in
	*.pgp) gpg --batch --quiet --decrypt "$1" ;;
	*) cat "$1" ;;
	esac | case $1 in
	*.zst | *.zst.pgp) zstd -dcq ;;
	*) cat ;;
	esac
}

untar() {
	tar --warning=no-unknown-keyword --xattrs --xattrs-include='*' --acls --numeric-owner --same-permissions -xf - "$@"
}

# copymeta FROM TO: owner, mode, xattrs (with ACLs) and mtime of FROM onto TO.
copymeta() {
	chown --reference="$1" "$2"
	chmod --reference="$1" "$2"
	if command -v getfattr >/dev/null; then
		getfattr --absolute-names -d -m - "$1" 2>/dev/null | while IFS= read -r line; do
			case $line in
			"# file:"* | "") ;;
			*) setfattr -n "${line%%=*}" -v "${line#*=}" "$2" ;;
			esac
		done
	fi
	touch --reference="$1" "$2"
}

mkdir -p "$target"
target=$(cd "$target" && pwd)

# volumes DIR: the tar streams of every volume of a set, in order. One tar
# reads them all (--ignore-zeros), so directory times are set once, at the end.
volumes() {
	for v in "$1"/vol-*.tar*; do
		decode "$v"
	done
}

# 1. The full.
volumes "$full" | untar --ignore-zeros -C "$target"
[ -n "$diff" ] || exit 0

# 2. The differential's control entries (.backtory/...) to a work directory.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
volumes "$diff" | untar --ignore-zeros -C "$work" --wildcards '.backtory/*'

# 3. Paths deleted (or whose type changed) since the full.
if [ -s "$work/.backtory/deleted" ]; then
	(cd "$target" && xargs -0 rm -rf -- <"$work/.backtory/deleted")
fi

# 4. Changed files: patch the full's version in place (keeping hardlinks),
#    then take the metadata of the delta's entry.
if [ -d "$work/.backtory/delta" ]; then
	(cd "$work/.backtory/delta" && find . -type f) | while IFS= read -r p; do
		p=${p#./}
		rm -f "$work/patched"
		rdiff patch "$target/$p" "$work/.backtory/delta/$p" "$work/patched"
		# cp into the existing file keeps its inode, so hardlinks stay.
		cp --sparse=always "$work/patched" "$target/$p"
		copymeta "$work/.backtory/delta/$p" "$target/$p"
	done
fi

# 5. Files whose metadata alone changed.
if [ -d "$work/.backtory/meta" ]; then
	(cd "$work/.backtory/meta" && find . -type f) | while IFS= read -r p; do
		p=${p#./}
		copymeta "$work/.backtory/meta/$p" "$target/$p"
	done
fi

# 6. Everything else the differential holds: new and whole files, links,
#    directories (with their final mtimes), devices.
volumes "$diff" | untar --ignore-zeros -C "$target" --exclude='.backtory' --exclude='./.backtory'
