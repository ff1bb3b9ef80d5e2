#!/bin/bash
# Installs what the dashboard's browser test drives: Debian's chromium
# (run headless). Idempotent and fast when it is present.
set -eu

# shellcheck source=test/deps/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
apt_install chromium fonts-dejavu-core
