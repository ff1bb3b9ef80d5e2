#!/bin/bash
# Installs fuse3 (fusermount3), which the FUSE mount tests (fusefs, cmd mount)
# use to mount and unmount. Idempotent and fast when present.
set -eu

# shellcheck source=test/deps/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
apt_install fuse3
