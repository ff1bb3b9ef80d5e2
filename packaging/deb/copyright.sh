#!/bin/sh
# Writes the Debian copyright file of the backtory package to stdout, in
# the machine-readable format (DEP-5): backtory itself, the Go runtime and
# standard library, and every Go module linked into BINARY (from the module
# list that Go records in the binary, `go version -m`), each with its
# license file's text from the module cache (downloaded when missing).
# Usage: packaging/deb/copyright.sh BINARY
set -eu
bin=$1
go=${GO:-go}

# licenseOf FILE: the SPDX ids of a license text, by their telltale
# phrases ("MIT and Apache-2.0" for a module under several).
licenseOf() {
	ids=""
	grep -q 'Apache License' "$1" && ids="$ids Apache-2.0"
	grep -q 'Mozilla Public License' "$1" && ids="$ids MPL-2.0"
	grep -qi 'Permission is hereby granted, free of charge' "$1" && ids="$ids MIT"
	grep -q 'Permission to use, copy, modify, and/or distribute' "$1" && ids="$ids ISC"
	grep -q 'CC0 1.0' "$1" && ids="$ids CC0-1.0"
	if grep -q 'Neither the name' "$1"; then
		ids="$ids BSD-3-Clause"
	elif grep -q 'Redistribution and use in source and binary forms' "$1"; then
		ids="$ids BSD-2-Clause"
	fi
	if [ -z "$ids" ]; then
		echo "copyright.sh: $1: unknown license text" >&2
		return 1
	fi
	echo "$ids" | sed 's/ / and /g'
}

# body FILE: the text as a DEP-5 field continuation (" ." for empty lines).
# A full Apache License 2.0 text is replaced by a pointer to Debian's copy
# in /usr/share/common-licenses (Debian policy 12.5).
body() {
	awk '
		/^[[:space:]]*Apache License[[:space:]]*$/ && !done { skip = 1 }
		skip && /END OF TERMS AND CONDITIONS/ {
			print "On Debian systems, the full text of the Apache License 2.0 is in"
			print "/usr/share/common-licenses/Apache-2.0."
			skip = 0; done = 1; next
		}
		!skip { print }
	' "$1" | sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /'
}

cat <<'HEAD'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: backtory
Source: https://github.com/backtory/backtory
Comment: The binary /usr/bin/backtory is statically linked: it contains the
 Go runtime and standard library and the Go modules listed below (the list
 is generated from the modules recorded in the binary, `go version -m`).

Files: *
Copyright: the backtory authors
License: none-yet
Comment: The backtory project has not chosen a license yet; see
 docs/packaging.md.

HEAD

goroot=$($go env GOROOT)
printf 'Files: go-runtime-and-standard-library\nCopyright: The Go Authors\nLicense: BSD-3-Clause\nComment: Go %s\n' "$($go env GOVERSION)"
body "$goroot/LICENSE"
echo

mods=$(mktemp)
trap 'rm -f "$mods"' EXIT
$go version -m "$bin" | awk '$1 == "dep" { print $2, $3 }' >"$mods"
if [ ! -s "$mods" ]; then
	echo "copyright.sh: $bin records no modules (not a Go binary?)" >&2
	exit 1
fi
while read -r mod ver; do
	dir=$($go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	lic=""
	for f in LICENSE LICENSE.txt LICENSE.md LICENCE COPYING LICENSE-MIT; do
		if [ -f "$dir/$f" ]; then lic=$dir/$f; break; fi
	done
	if [ -z "$lic" ]; then
		echo "copyright.sh: $mod@$ver has no license file in $dir" >&2
		exit 1
	fi
	holder=$(grep -m1 -i '^[[:space:]]*copyright (c)\|^[[:space:]]*copyright [0-9]' "$lic" | sed 's/^[[:space:]]*//' || true)
	ids=$(licenseOf "$lic")
	printf 'Files: go-module/%s\nCopyright: %s\nLicense: %s\nComment: %s %s\n' "$mod" "${holder:-the $mod authors}" "$ids" "$mod" "$ver"
	body "$lic"
	echo
done <"$mods"
