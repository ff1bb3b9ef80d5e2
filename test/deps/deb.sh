#!/bin/bash
# Installs what the Debian package test (test/deb.sh) needs: lintian,
# debootstrap (the chroot the package is installed into), man-db and
# bash-completion (checked inside the chroot too), systemd (systemd-analyze
# verify of the units), zsh and fish (the completion scripts are parsed).
# Idempotent and fast when everything is present.
set -eu

pkgs="lintian debootstrap man-db bash-completion systemd dpkg-dev gzip zsh fish"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
if ! apt-cache show $missing >/dev/null 2>&1; then
	apt-get $apt_opts update -q
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing; then
	apt-get $apt_opts update -q
	DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing
fi
