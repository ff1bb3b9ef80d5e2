#!/bin/bash
# Installs what the recovery tests run: the shells recover.sh must work
# under (dash, busybox sh), shellcheck, the stock restore path (gpg,
# gpg-agent, zstd, GNU tar, rdiff; curl, wget and lftp to fetch) and sfdisk/lsblk/wipefs/mkswap/dumpe2fs,
# which test/vm/bmr copies into the VM. Idempotent; fast when all is present.
set -eu
want="dash:dash busybox:busybox shellcheck:shellcheck gpg:gpg gpg-agent:gpg-agent gpgconf:gpgconf zstd:zstd
tar:tar rdiff:rdiff lftp:lftp curl:curl wget:wget sfdisk:fdisk lsblk:util-linux wipefs:util-linux mkswap:util-linux dumpe2fs:e2fsprogs"
missing=""
for pair in $want; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
		case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
	fi
done
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
# shellcheck disable=SC2086 # word lists on purpose
if ! apt-cache show $missing >/dev/null 2>&1; then
	apt-get $apt_opts update -q
fi
# shellcheck disable=SC2086
if ! apt-get $apt_opts install -y -q --no-install-recommends $missing; then
	apt-get $apt_opts update -q
	apt-get $apt_opts install -y -q --no-install-recommends $missing
fi
