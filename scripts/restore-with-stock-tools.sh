#!/bin/sh
# Restores a backtory full, and brings it forward to one of its
# differentials, with stock tools only: gpg (for sealed sets), sha256sum,
# zstd, GNU tar, rdiff, find, xargs, awk. This is the path of last resort
# that docs/format.md describes; `backtory restore` is the fast path.
#
# It checks before it writes, and stops at the first check that fails:
#  1. each manifest: sealed sets must be signed by the expected signer
#     (gpg --status-fd: VALIDSIG of --signer's fingerprint) and pass the
#     integrity check (GOODMDC); a differential must name its full by the
#     SHA-256 of the full's manifest;
#  2. every volume's SHA-256 against its manifest, before it is unpacked;
#  3. every member name of every volume: no absolute name, no `..`; and
#     before the differential is unpacked over the full, that no directory
#     above one of its members is a symlink in the target;
#  4. every path it deletes, patches or changes the metadata of: a plain
#     relative path, no component above it a symlink (nor, for a patch or
#     a metadata change, the path itself).
# Each pipeline notes its failing stage (plain sh has no pipefail) and the
# script stops there.
#
# Usage: restore-with-stock-tools.sh [--signer FPR | --unauthenticated] FULL_DIR [DIFF_DIR] TARGET
#   FULL_DIR, DIFF_DIR: local copies of the sets' directories (manifest, vol-*)
#   TARGET: an empty directory (created if missing)
#   --signer FPR: the fingerprint of the host's signing key (sealed sets)
#   --unauthenticated: restore a set nothing authenticates (unsealed, or
#     sealed with a passphrase alone), after saying so
# Sealed sets need the secret key in gpg's keyring (GNUPGHOME).
set -eu

die() {
	printf 'restore-with-stock-tools: %s\n' "$*" >&2
	exit 1
}
usage() {
	echo "usage: $0 [--signer FPR | --unauthenticated] FULL_DIR [DIFF_DIR] TARGET" >&2
	exit 2
}

signer='' unauth=0
while [ $# -gt 0 ]; do
	case $1 in
	--signer)
		[ $# -ge 2 ] || usage
		signer=$(printf '%s' "$2" | tr -d ' ' | tr 'a-f' 'A-F')
		shift 2
		;;
	--unauthenticated) unauth=1 && shift ;;
	--) shift && break ;;
	-*) usage ;;
	*) break ;;
	esac
done
if [ $# -eq 2 ]; then
	full=$1 diff='' target=$2
elif [ $# -eq 3 ]; then
	full=$1 diff=$2 target=$3
else
	usage
fi

mkdir -p "$target"
target=$(cd "$target" && pwd)
[ -z "$(ls -A "$target")" ] || die "$target is not empty"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The path checks, as text: run here and in the sh -c children of xargs.
# confined ROOT REL succeeds when REL is a relative path with no empty, .
# or .. component, and no component of it above the last is, below ROOT,
# a symlink or an existing non-directory.
CONFINED='confined() {
	c_cur=$1 c_rest=$2
	case $c_rest in "" | /* | */) return 1 ;; esac
	while :; do
		c_comp=${c_rest%%/*}
		case $c_comp in "" | . | ..) return 1 ;; esac
		c_cur=$c_cur/$c_comp
		[ "$c_rest" = "$c_comp" ] && return 0
		c_rest=${c_rest#*/}
		if [ -L "$c_cur" ] || { [ -e "$c_cur" ] && [ ! -d "$c_cur" ]; }; then
			return 1
		fi
	done
}
# plainfile ROOT REL: confined, and REL itself a regular file, not a symlink.
plainfile() { confined "$1" "$2" && [ -f "$1/$2" ] && [ ! -L "$1/$2" ]; }
# copymeta FROM TO: owner, mode, xattrs (with ACLs) and mtime of FROM onto TO.
copymeta() {
	chown "$(stat -c %u:%g "$1")" "$2"
	chmod "$(stat -c %a "$1")" "$2"
	if command -v getfattr >/dev/null; then
		getfattr --absolute-names -d -m - "$1" 2>/dev/null | while IFS= read -r line; do
			case $line in
			"# file:"* | "") ;;
			*) setfattr -h -n "${line%%=*}" -v "${line#*=}" "$2" ;;
			esac
		done
	fi
	touch -h -r "$1" "$2"
}'
eval "$CONFINED"

# sealstatus STATUS WHAT checks gpg's status output of an opened object.
sealstatus() {
	grep -q '^\[GNUPG:\] GOODMDC' "$1" || die "$2: gpg reports no good integrity check (GOODMDC): refusing it"
	if [ -n "$signer" ]; then
		awk -v fpr="$signer" '$1 == "[GNUPG:]" && $2 == "VALIDSIG" && ($3 == fpr || $NF == fpr) { ok = 1 } END { exit !ok }' "$1" ||
			die "$2 is not signed by $signer: refusing it"
	elif grep -q '^\[GNUPG:\] \(VALIDSIG\|GOODSIG\|BADSIG\|ERRSIG\)' "$1"; then
		die "$2 is signed: give --signer FPR, the fingerprint of the host's signing key, to check by whom"
	elif [ "$unauth" != 1 ]; then
		die "$2 is sealed with a passphrase alone: nothing says who wrote it; give --unauthenticated to restore it anyway"
	fi
}

# manifest DIR: the set's verified manifest, as a file in the work directory.
manifest() {
	m_out=$work/$(basename "$1").manifest.json
	if [ -f "$1/manifest.json.pgp" ]; then
		if ! gpg --batch --quiet --status-fd 3 --decrypt "$1/manifest.json.pgp" 3>"$work/status" >"$m_out" 2>"$work/gpg.err"; then
			grep -q '^\[GNUPG:\] ERRSIG' "$work/status" &&
				die "$1/manifest.json.pgp is not signed by ${signer:-a key gpg knows} (gpg cannot check its signature): refusing it"
			die "$1/manifest.json.pgp: gpg cannot open it: $(head -n2 "$work/gpg.err" | tr '\n' ' ')"
		fi
		sealstatus "$work/status" "$1/manifest.json.pgp"
	elif [ -f "$1/manifest.json" ]; then
		[ "$unauth" = 1 ] || die "$1 is not sealed: nothing authenticates it; give --unauthenticated to restore it anyway"
		cp "$1/manifest.json" "$m_out"
	else
		die "$1 has no manifest"
	fi
	printf '%s\n' "$m_out"
}

# volumes MANIFEST prints "SHA256  NAME" per volume, in order (the JSON of
# Go's MarshalIndent: one key per line).
volumes() {
	awk '/^  "[a-z_]+": / { cur = $1; gsub(/[":]/, "", cur); next }
		cur == "volumes" && $1 == "\"name\":" { n = $2; gsub(/[",]/, "", n) }
		cur == "volumes" && $1 == "\"sha256\":" { h = $2; gsub(/[",]/, "", h); print h "  " n }' "$1"
}

# objects MANIFEST prints "SHA256  NAME" per object of the set.
objects() {
	awk '/^  "[a-z_]+": / { cur = $1; gsub(/[":]/, "", cur) }
		(cur == "files" || cur == "sigs" || cur == "layout" || cur == "volumes") && $1 == "\"name\":" { n = $2; gsub(/[",]/, "", n) }
		(cur == "files" || cur == "sigs" || cur == "layout" || cur == "volumes") && $1 == "\"sha256\":" { h = $2; gsub(/[",]/, "", h); print h "  " n }' "$1"
}

# field MANIFEST SECTION KEY prints a value of the manifest.
field() {
	awk -v sect="$2" -v key="$3" '
		/^  "[a-z_]+": / { cur = $1; gsub(/[":]/, "", cur); if (sect == "" && cur == key) { v = $2; gsub(/[",]/, "", v); print v; exit } next }
		cur == sect && $1 == "\"" key "\":" { v = $2; gsub(/[",]/, "", v); print v; exit }' "$1"
}

# checkobjects DIR MANIFEST checks every object's SHA-256 against the
# manifest and writes the list of volumes, in order, to $work/vols.<set>.
checkobjects() {
	c_list=$work/vols.$(basename "$1")
	volumes "$2" >"$c_list"
	[ -s "$c_list" ] || die "$2 lists no volume"
	objects "$2" >"$work/objects"
	while IFS= read -r c_line; do
		case ${c_line#*  } in
		"" | *[!A-Za-z0-9._-]*) die "$1: the manifest names a bad object: $c_line" ;;
		esac
	done <"$work/objects"
	(cd "$1" && sha256sum --quiet --strict -c "$work/objects") >"$work/sha.out" 2>&1 ||
		die "$1: $(grep -v '^sha256sum: WARNING' "$work/sha.out" | head -n1): the object does not match its signed manifest, refusing the set"
}

# decode VOLUME: its tar stream on stdout. A failing stage is noted in
# $work/fail, and the object's seal is checked once gpg is done.
decode() {
	case $1 in
	*.pgp)
		if gpg --batch --quiet --status-fd 3 --decrypt "$1" 3>"$work/vstatus" 2>>"$work/gpg.err"; then
			(sealstatus "$work/vstatus" "$1") || echo "gpg: $1" >>"$work/fail"
		else
			echo "gpg: $1" >>"$work/fail"
		fi
		;;
	*) cat "$1" || echo "read: $1" >>"$work/fail" ;;
	esac | case $1 in
	*.zst | *.zst.pgp) zstd -dcq || echo "zstd: $1" >>"$work/fail" ;;
	*) cat ;;
	esac
}

# streams DIR: the tar streams of every volume of a set, in order; it
# stops at the first volume that fails.
streams() {
	while IFS= read -r s_line; do
		decode "$1/${s_line#*  }"
		[ ! -s "$work/fail" ] || break
	done <"$work/vols.$(basename "$1")"
}

# failed WHAT dies when the last pipeline noted a failing stage.
failed() {
	if [ -s "$work/fail" ]; then
		die "$1 failed in $(tr '\n' ' ' <"$work/fail")"
	fi
}

untar() {
	tar --warning=no-unknown-keyword --xattrs --xattrs-include='*' --acls --numeric-owner --same-permissions -xf - "$@"
}

# members DIR [ROOT]: checks the member names of every volume of a set
# (listed by GNU tar in its escape style, decoded here): none absolute or
# with a `..` component, and with ROOT, no directory above a member that is
# a symlink or a non-directory below ROOT.
members() {
	: >"$work/fail"
	streams "$1" | tar -t --ignore-zeros --quoting-style=escape -f - >"$work/members" 2>"$work/tar.err" || echo "tar -t" >>"$work/fail"
	failed "listing the volumes of $1"
	LC_ALL=C awk -v root="${2:-}" '
		function oct(s,  v, k) { v = 0; for (k = 1; k <= 3; k++) v = v * 8 + substr(s, k, 1); return v }
		function dec(s,  out, i, c) {
			out = ""
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				if (c != "\\") { out = out c; continue }
				c = substr(s, ++i, 1)
				if (c ~ /[0-7]/) { out = out sprintf("%c", oct(substr(s, i, 3))); i += 2 }
				else if (c == "n") out = out "\n"
				else if (c == "t") out = out "\t"
				else if (c == "r") out = out "\r"
				else if (c == "f") out = out "\f"
				else if (c == "v") out = out "\v"
				else if (c == "a") out = out "\007"
				else if (c == "b") out = out "\b"
				else out = out c
			}
			return out
		}
		function q(s) { gsub(/'\''/, "'\''\\'\'''\''", s); return "'\''" s "'\''" }
		{
			name = dec($0)
			sub(/^\.\//, "", name)
			sub(/\/$/, "", name)
			if (name == "." || name == "") next
			if (name ~ /^\// || name ~ /(^|\/)\.\.(\/|$)/) { print "a member named " $0 " (absolute, or with ..)"; bad = 1; exit }
			if (root == "") next
			n = split(name, parts, "/")
			pre = ""
			for (i = 1; i < n; i++) {
				pre = pre (i > 1 ? "/" : "") parts[i]
				if (pre in seen) continue
				seen[pre] = 1
				p = root "/" pre
				if (system("[ -L " q(p) " ] || { [ -e " q(p) " ] && [ ! -d " q(p) " ]; }") == 0) {
					print "a member below " pre ", which is a symlink or not a directory in the target"; bad = 1; exit
				}
			}
		}
		END { exit bad }' "$work/members" >"$work/bad" || die "$1: $(cat "$work/bad"): refusing the set"
}

# 1, 2. Every check of both sets before anything is written.
fm=$(manifest "$full")
[ "$(field "$fm" "" kind)" = full ] || die "$full is not a full"
checkobjects "$full" "$fm"
if [ -n "$diff" ]; then
	dm=$(manifest "$diff")
	[ "$(field "$dm" "" kind)" = diff ] || die "$diff is not a differential"
	stored=$full/manifest.json
	[ -f "$stored" ] || stored=$stored.pgp
	[ "$(sha256sum <"$stored" | cut -d' ' -f1)" = "$(field "$dm" base manifest_sha256)" ] ||
		die "$diff was taken against another full than $full (the manifest's SHA-256 differs)"
	checkobjects "$diff" "$dm"
fi
[ "$unauth" != 1 ] || [ -n "$signer" ] ||
	echo "restore-with-stock-tools: warning: nothing authenticates these sets: anyone who could write them could have changed them" >&2
members "$full"

# The full: one tar reads every volume (--ignore-zeros), so directory
# times are set once, at the end.
: >"$work/fail"
streams "$full" | untar --ignore-zeros -C "$target" || echo "tar" >>"$work/fail"
failed "unpacking $full"
[ -n "$diff" ] || exit 0

# The differential's control entries (.backtory/...) to a work directory.
mkdir "$work/d"
: >"$work/fail"
# (A differential without any is fine: tar only says it found none.)
streams "$diff" | untar --ignore-zeros -C "$work/d" --wildcards '.backtory/*' 2>"$work/tar.err" ||
	if grep -v 'Not found in archive' "$work/tar.err" | grep -qv 'Exiting with failure status'; then
		cat "$work/tar.err" >&2
		echo "tar" >>"$work/fail"
	fi
failed "unpacking the control entries of $diff"
ctl=$work/d/.backtory

# Renamed and moved files (format 2): each is patched from its old path
# before the deletions remove it, and put at its new path at the end.
if [ -s "$ctl/moves" ]; then
	mkdir "$work/m"
	xargs -0 -n 2 sh -c "$CONFINED"'
		t=$1 c=$2 m=$3 new=$4 old=$5
		confined "$t" "$new" || { printf "restore-with-stock-tools: %s: refusing to create it (not a plain path below the target)\n" "$new" >&2; exit 255; }
		plainfile "$t" "$old" || { printf "restore-with-stock-tools: %s: refusing to read it (not a plain file below the target)\n" "$old" >&2; exit 255; }
		d=$c/moved/$new
		[ -f "$d" ] && [ ! -L "$d" ] || { printf "restore-with-stock-tools: %s: the set has no delta for it\n" "$new" >&2; exit 255; }
		case $new in */*) mkdir -p "$m/${new%/*}" || exit 255 ;; esac
		rdiff patch "$t/$old" "$d" "$m/$new" || exit 255
	' sh "$target" "$ctl" "$work/m" <"$ctl/moves" || die "patching the moved files of $diff failed"
fi

# Paths deleted (or whose type changed) since the full: all checked first.
if [ -s "$ctl/deleted" ]; then
	xargs -0 sh -c "$CONFINED"'
		t=$1; shift
		for p; do
			confined "$t" "$p" || { printf "restore-with-stock-tools: %s: refusing to delete it (not a plain path below the target)\n" "$p" >&2; exit 255; }
		done' sh "$target" <"$ctl/deleted" || die "$diff: bad .backtory/deleted"
	xargs -0 sh -c 't=$1; shift; for p; do rm -rf -- "$t/$p" || exit 255; done' sh "$target" <"$ctl/deleted" ||
		die "applying the deletions of $diff failed"
fi

# Changed files: patch the full's version in place (keeping hardlinks),
# then take the metadata of the delta's entry.
if [ -d "$ctl/delta" ]; then
	find "$ctl/delta" -type f -print0 | xargs -0 sh -c "$CONFINED"'
		t=$1 c=$2 tmp=$3; shift 3
		for d; do
			p=${d#"$c/delta/"}
			plainfile "$t" "$p" || { printf "restore-with-stock-tools: %s: refusing to patch it (not a plain file below the target)\n" "$p" >&2; exit 255; }
			rm -f "$tmp"
			rdiff patch "$t/$p" "$d" "$tmp" || exit 255
			# cp into the existing file keeps its inode, so hardlinks stay.
			cp --sparse=always "$tmp" "$t/$p" && copymeta "$d" "$t/$p" || exit 255
		done' sh "$target" "$ctl" "$work/patched" || die "applying the deltas of $diff failed"
fi

# Files whose metadata alone changed.
if [ -d "$ctl/meta" ]; then
	find "$ctl/meta" -type f -print0 | xargs -0 sh -c "$CONFINED"'
		t=$1 c=$2; shift 2
		for d; do
			p=${d#"$c/meta/"}
			plainfile "$t" "$p" || { printf "restore-with-stock-tools: %s: refusing to change it (not a plain file below the target)\n" "$p" >&2; exit 255; }
			copymeta "$d" "$t/$p" || exit 255
		done' sh "$target" "$ctl" || die "applying the metadata changes of $diff failed"
fi

# Everything else the differential holds: new and whole files, links,
# directories (with their final mtimes), devices; no member below a symlink.
members "$diff" "$target"
: >"$work/fail"
streams "$diff" | untar --ignore-zeros -C "$target" --exclude='.backtory' --exclude='./.backtory' || echo "tar" >>"$work/fail"
failed "unpacking $diff"

# The moved files at their new paths, with the metadata of their delta's
# entry; their directory keeps the time the differential gave it.
if [ -s "$ctl/moves" ]; then
	xargs -0 -n 2 sh -c "$CONFINED"'
		t=$1 c=$2 m=$3 new=$4
		{ confined "$t" "$new" && [ ! -e "$t/$new" ] && [ ! -L "$t/$new" ]; } ||
			{ printf "restore-with-stock-tools: %s: refusing to create it (not a new plain path below the target)\n" "$new" >&2; exit 255; }
		dir=$(dirname "$t/$new")
		touch -r "$dir" "$m/.stamp" &&
			cp --sparse=always "$m/$new" "$t/$new" && copymeta "$c/moved/$new" "$t/$new" &&
			touch -r "$m/.stamp" "$dir" || exit 255
	' sh "$target" "$ctl" "$work/m" <"$ctl/moves" || die "placing the moved files of $diff failed"
fi
