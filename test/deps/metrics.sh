#!/bin/bash
# Installs what the metrics test (cmd/backtory/metrics_test.go) needs on
# Debian 12: node_exporter, the real reader of the textfile-collector files
# backtory writes. Its binary is unpacked from Debian's .deb into a cache
# directory, so no node_exporter service is installed or started.
# Idempotent; fast when everything is present.
set -eu

cache=/var/cache/backtory-test/node-exporter   # metrics_test.go looks here
apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"

[ -x "$cache/usr/bin/prometheus-node-exporter" ] && exit 0

if ! apt-cache show prometheus-node-exporter >/dev/null 2>&1; then
	# shellcheck disable=SC2086 # word list on purpose
	apt-get $apt_opts update -q
fi
tmp=$(mktemp -d)
chmod 755 "$tmp" # apt-get download runs as _apt
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086
(cd "$tmp" && apt-get $apt_opts download -q prometheus-node-exporter)
rm -rf "$cache"
mkdir -p "$cache"
dpkg -x "$tmp"/prometheus-node-exporter_*.deb "$cache"
