#!/bin/sh
# Builds the backtory Debian package with dpkg-deb from a static binary:
# the man pages and completions it generates, the systemd units of
# examples/systemd (pointed at /usr/bin/backtory and /etc/default/backtory),
# the maintainer scripts beside this file, the copyright file generated from
# the binary's Go modules, and a changelog for VERSION.
# Run from the top of the source tree (make deb).
# Usage: packaging/deb/build.sh BINARY VERSION OUT.deb
set -eu
bin=$(realpath "$1")
version=$2
out=$3
here=packaging/deb
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
umask 022

install -D -m 0755 "$bin" "$root/usr/bin/backtory"

# Manual pages, compressed as Debian wants them (gzip -9n: no name, no time).
"$bin" man --readme README.md "$root/man" >/dev/null
install -d "$root/usr/share/man/man8" "$root/usr/share/man/man5"
mv "$root"/man/*.8 "$root/usr/share/man/man8/"
mv "$root"/man/*.5 "$root/usr/share/man/man5/"
rmdir "$root/man"
gzip -9n "$root"/usr/share/man/man*/*

# Completions, where bash-completion, zsh and fish look for them.
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
	"$root/usr/share/fish/vendor_completions.d"
"$bin" completion bash >"$root/usr/share/bash-completion/completions/backtory"
"$bin" completion zsh >"$root/usr/share/zsh/vendor-completions/_backtory"
"$bin" completion fish >"$root/usr/share/fish/vendor_completions.d/backtory.fish"

# The systemd units of examples/, for the packaged binary; shipped disabled
# (no [Install] link is made: the admin enables the timers).
install -d "$root/lib/systemd/system"
for u in examples/systemd/*; do
	dst=$root/lib/systemd/system/$(basename "$u")
	sed -e 's|^# /etc/systemd/system/|# /lib/systemd/system/|' \
		-e 's|^\(ExecStart[A-Za-z]*=\)/usr/local/sbin/backtory \([a-z-]*\)|\1/usr/bin/backtory \2 $BACKTORY_OPTS|' \
		-e 's|^\[Service\]$|[Service]\nEnvironmentFile=-/etc/default/backtory|' "$u" >"$dst"
	if ! grep -q /usr/local/sbin "$u"; then
		cp "$u" "$dst" # no backtory command: unchanged
	fi
	chmod 0644 "$dst"
done

# Lintian overrides, each justified in the file and in docs/packaging.md.
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/backtory"

# The conffile the units read.
install -D -m 0644 "$here/default" "$root/etc/default/backtory"

# Documentation: copyright, changelog, the example config (README's
# configuration reference) and the example hooks.
doc=$root/usr/share/doc/backtory
install -d "$doc/examples/hooks"
"$here/copyright.sh" "$bin" >"$doc/copyright"
sed -n '/^## Configuration/,/^## /p' README.md | sed -n '/^```yaml$/,/^```$/p' | sed '1d;$d' >"$doc/examples/backtory.yaml"
if [ ! -s "$doc/examples/backtory.yaml" ]; then
	echo "build.sh: no yaml block in README.md's Configuration" >&2
	exit 1
fi
install -m 0644 examples/hooks/*.sh "$doc/examples/hooks/"
when=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
maint=$(sed -n 's/^Maintainer: //p' "$here/control.in")
{
	printf 'backtory (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from commit %s.\n\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	printf ' -- %s  %s\n' "$maint" "$when"
} | gzip -9n >"$doc/changelog.Debian.gz"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# The control area.
install -d "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$(dpkg --print-architecture)/" -e "s/@SIZE@/$size/" \
	"$here/control.in" >"$root/DEBIAN/control"
echo /etc/default/backtory >"$root/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
