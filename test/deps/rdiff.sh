#!/bin/bash
# Installs rdiff (librsync's command-line tool), which the rsyncdelta interop
# tests and bench/rsyncdelta.sh run against. Idempotent and fast when present.
set -eu

# shellcheck source=test/deps/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
apt_install rdiff
