#!/bin/bash
# Installs what the Debian package test (test/deb.sh) needs: lintian,
# debootstrap (the chroot the package is installed into), man-db and
# bash-completion (checked inside the chroot too), systemd (systemd-analyze
# verify of the units), zsh and fish (the completion scripts are parsed).
# Idempotent and fast when everything is present.
set -eu

# shellcheck source=test/deps/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
apt_install lintian debootstrap man-db bash-completion systemd dpkg-dev gzip zsh fish
