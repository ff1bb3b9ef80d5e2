#!/bin/bash
# Installs the tools the archive and CLI tests compare against: zstd, GNU
# tar and bsdtar (stock restores of volumes), dash, busybox and shellcheck
# (the recovery script), attr and acl (xattrs and ACLs by hand), systemd and
# util-linux (a real systemd-journald in a namespace, for the journal test;
# fincore: the page cache a backup leaves).
# Idempotent and fast when everything is present.
set -eu

pkgs="zstd tar libarchive-tools dash busybox shellcheck attr acl systemd util-linux"

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
