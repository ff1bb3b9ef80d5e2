#!/bin/bash
# Installs GnuPG (gpg, gpg-agent) for the interop tests of archive/seal and
# cmd/backtory's key command. Idempotent; fast when everything is present.
set -eu
need=()
command -v gpg >/dev/null 2>&1 || need+=(gpg)
command -v gpg-agent >/dev/null 2>&1 || need+=(gpg-agent)
command -v gpgconf >/dev/null 2>&1 || need+=(gpgconf)
[ "${#need[@]}" -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${need[@]}"; then
	apt-get update
	apt-get install -y --no-install-recommends "${need[@]}"
fi
