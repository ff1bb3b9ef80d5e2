#!/bin/bash
# Installs fuse3 (fusermount3), which the FUSE mount tests (fusefs, cmd mount)
# use to mount and unmount. Idempotent and fast when present.
set -eu

pkgs="fuse3"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	exit 0
fi

apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
if ! apt-cache show $missing >/dev/null 2>&1; then
	apt-get $apt_opts update -q
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing; then
	# The package lists may be stale: refresh once and retry.
	apt-get $apt_opts update -q
	DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing
fi
