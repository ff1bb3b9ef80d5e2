#!/bin/bash
# Installs the tools the archive and CLI tests compare against: zstd, GNU
# tar and bsdtar (stock restores of volumes), dash, busybox and shellcheck
# (the recovery script), attr and acl (xattrs and ACLs by hand), systemd and
# util-linux (a real systemd-journald in a namespace, for the journal test;
# fincore: the page cache a backup leaves).
# Idempotent and fast when everything is present.
set -eu

# shellcheck source=test/deps/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
apt_install zstd tar libarchive-tools dash busybox shellcheck attr acl systemd util-linux
