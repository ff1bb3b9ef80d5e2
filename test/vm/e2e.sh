#!/bin/bash
# The CLI end to end in the VM: `backtory backup` with `snapshot: zfs` and
# `snapshot: lvm` against real OpenZFS and LVM2 (test/vm/e2e-guest.sh).
set -eu
cd "$(dirname "$0")/../.."
start=$(date +%s)
VM_ASSETS=$(test/vm/build.sh)
export VM_ASSETS
share=$(mktemp -d "${TMPDIR:-/tmp}/backtory-e2e.XXXXXX")
trap 'rm -rf "$share"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$share/backtory" ./cmd/backtory
cp test/vm/e2e-guest.sh "$share/e2e-guest.sh"
rc=0
test/vm/run "$share/e2e-guest.sh" || rc=$?
echo "test/vm/e2e.sh: exit $rc, $(($(date +%s) - start))s in all" >&2
exit "$rc"
