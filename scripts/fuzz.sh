#!/bin/bash
# Runs every fuzz target in the given package directories for a short
# time (part of `make test`). Usage: scripts/fuzz.sh DIR...  (FUZZTIME, default 10s)
#
# Go 1.26's fuzz coordinator can fail a run at the -fuzztime boundary
# although nothing failed (golang/go#75804, fixed in Go 1.27). Such a run
# prints, besides fuzz: progress lines and go test's FAIL trailer, exactly
#
#	--- FAIL: FuzzX (10.03s)
#	    context deadline exceeded
#
# A run whose whole output is that is rerun once, and the rerun's result
# counts. Any other failure fails, even one that mentions a deadline.
# scripts/fuzz_test.sh tests this with a fake go.
set -u
fuzztime=${FUZZTIME:-10s}
failed=0

# race_only OUTPUT FN: OUTPUT is a run of FN that failed only on the race.
race_only() {
	local t=$'\t' rest
	rest=$(printf '%s\n' "$1" |
		grep -v -E "^(fuzz: elapsed: .*|warning: starting with empty corpus|FAIL|exit status 1|FAIL${t}[^${t}]+${t}[0-9.]+s)\$" |
		sed -E 's/^--- FAIL: ([A-Za-z0-9_]+) \([0-9.]+s\)$/--- FAIL: \1 (T)/')
	[ "$rest" = "$(printf -- '--- FAIL: %s (T)\n    context deadline exceeded' "$2")" ]
}

targets=$(grep -rl --include='*_test.go' '^func Fuzz' "$@" | xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's|/[^/]*_test.go:func |:|')
for spec in $targets; do
	pkg=${spec%%:*}
	fn=${spec##*:}
	echo "== fuzz ./$pkg $fn"
	for try in 1 2; do
		out=$(go test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "./$pkg" 2>&1)
		rc=$?
		if [ "$rc" -ne 0 ] && [ "$try" -eq 1 ] && race_only "$out" "$fn"; then
			echo "the run ended on Go's fuzz coordinator race (golang/go#75804); running it again"
			continue
		fi
		break
	done
	if [ "$rc" -eq 0 ]; then
		printf '%s\n' "$out" | tail -n 1
	else
		printf '%s\n' "$out"
		failed=1
	fi
done
exit "$failed"
