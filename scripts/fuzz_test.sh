#!/bin/bash
# Tests scripts/fuzz.sh with a fake go on PATH that prints canned runs: only
# a run that failed on exactly Go's fuzz coordinator race (golang/go#75804)
# is rerun, and then the rerun counts. Run by `make fuzz`.
set -u
fuzz=$(cd "$(dirname "$0")" && pwd)/fuzz.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/backtory-fuzz-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/pkg"
printf 'package pkg\n\nfunc FuzzX(f *testing.F) {}\n' >"$dir/pkg/x_test.go"
# The fake go prints run<N>.out and exits with run<N>.rc on its N-th call.
cat >"$dir/bin/go" <<'EOF'
#!/bin/sh
n=$(($(cat calls 2>/dev/null || echo 0) + 1))
echo "$n" >calls
cat "run$n.out"
exit "$(cat "run$n.rc")"
EOF
chmod +x "$dir/bin/go"

tab=$(printf '\t')
progress="fuzz: elapsed: 3s, execs: 40304 (13431/sec), new interesting: 4 (total: 7)
fuzz: elapsed: 3s, execs: 40304 (0/sec), new interesting: 4 (total: 7)"
signature="--- FAIL: FuzzX (3.20s)
    context deadline exceeded"
trailer="FAIL
exit status 1
FAIL${tab}example.com/pkg${tab}3.202s"
race="$progress
$signature
$trailer"
pass="fuzz: elapsed: 3s, execs: 19846 (0/sec), new interesting: 4 (total: 7)
PASS
ok  ${tab}example.com/pkg${tab}3.064s"
crasher="--- FAIL: FuzzX (0.52s)
    --- FAIL: FuzzX (0.00s)
        x_test.go:9: fetch: context deadline exceeded

    Failing input written to testdata/fuzz/FuzzX/5c9a6f2c
    To re-run:
    go test -run=FuzzX/5c9a6f2c
FAIL
exit status 1
FAIL${tab}example.com/pkg${tab}0.530s"
logged="--- FAIL: FuzzX (3.10s)
    x_test.go:9: fetch: context deadline exceeded
FAIL
exit status 1
FAIL${tab}example.com/pkg${tab}3.102s"

failed=0
# check NAME WANT-EXIT WANT-CALLS OUT1 RC1 [OUT2 RC2]
check() {
	local name=$1 want=$2 calls=$3 n=1 rc got
	shift 3
	rm -f "$dir"/run* "$dir/calls"
	while [ $# -gt 0 ]; do
		printf '%s\n' "$1" >"$dir/run$n.out"
		echo "$2" >"$dir/run$n.rc"
		n=$((n + 1))
		shift 2
	done
	(cd "$dir" && PATH="$dir/bin:$PATH" FUZZTIME=1s "$fuzz" pkg) >"$dir/log" 2>&1
	rc=$?
	got=$(cat "$dir/calls")
	if [ "$rc" -ne "$want" ] || [ "$got" -ne "$calls" ]; then
		echo "FAIL: $name: exit $rc after $got go runs, want exit $want after $calls"
		cat "$dir/log"
		failed=1
	else
		echo "ok: $name"
	fi
}

check "the race, then a passing rerun" 0 2 "$race" 1 "$pass" 0
check "the race twice" 1 2 "$race" 1 "$race" 1
check "the race plus another failure" 1 1 "$progress
$signature
    --- FAIL: FuzzX/seed#1 (0.00s)
        x_test.go:12: wrong
$trailer" 1
check "a deadline in a written failing input" 1 1 "$crasher" 1
check "a deadline logged by the target" 1 1 "$logged" 1
check "the race's lines under another target" 1 1 "${race//FuzzX/FuzzY}" 1
check "a passing run" 0 1 "$pass" 0
exit "$failed"
