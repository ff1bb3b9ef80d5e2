#!/bin/bash
# Installs what the tests of examples/ (examples/examples_test.go) need on
# Debian 12: shellcheck, systemd-analyze (package systemd), curl (the
# healthchecks hook), and a MariaDB
# server and client for the database hooks. Only mariadb-server-core is
# installed, not mariadb-server, so no database service is set up or
# started: the test runs its own mariadbd on a socket in a temporary
# directory. Idempotent; fast when everything is present.
set -eu

pkgs="shellcheck systemd mariadb-server-core mariadb-client coreutils curl"
apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=""
for p in $pkgs; do
	installed "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

# shellcheck disable=SC2086 # word lists on purpose
if ! apt-cache show $missing >/dev/null 2>&1; then
	apt-get $apt_opts update -q
fi
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing
