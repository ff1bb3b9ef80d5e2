#!/bin/bash
# The VM part of `make test`: builds (or reuses) the VM's boot assets,
# compiles the snapshot package's tests as a static binary, and runs them in
# the VM against real OpenZFS, LVM2 and btrfs. Fails when any test fails.
# Extra arguments go to the test binary (e.g. -test.run ZFS).
set -eu
cd "$(dirname "$0")/../.."
start=$(date +%s)
VM_ASSETS=$(test/vm/build.sh)
export VM_ASSETS
share=$(mktemp -d "${TMPDIR:-/tmp}/backtory-vm-share.XXXXXX")
trap 'rm -rf "$share"' EXIT
CGO_ENABLED=0 go test -c -tags vmtest -o "$share/snapshot.test" ./snapshot
{
	echo '#!/bin/sh'
	echo 'export BACKTORY_TEST_STRICT=1 BACKTORY_VM_DISKS="/dev/vda /dev/vdb /dev/vdc"'
	printf 'exec ./snapshot.test -test.v -test.timeout 15m'
	for a in "$@"; do printf " '%s'" "$a"; done
	echo
} >"$share/run.sh"
rc=0
test/vm/run "$share/run.sh" || rc=$?
echo "test/vm/test.sh: snapshot tests in the VM: exit $rc, $(($(date +%s) - start))s in all" >&2
exit "$rc"
