#!/bin/bash
# Builds SeaweedFS's weed (the S3 tests' cluster: internal/s3test) from the Go
# module proxy into /var/cache/backtory-weed/weed, once: about 10 minutes of
# CPU on 2 cores, a ~230 MB binary. Skipped when the cached binary was built
# from the pinned version (test/deps/weed/go.mod). Runs under nice, since the
# machine is shared.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${BACKTORY_WEED_CACHE:-/var/cache/backtory-weed}   # internal/s3test looks here
bin=$cache/weed
version=$(awk '$1 == "require" && $2 == "github.com/seaweedfs/seaweedfs" { print $3 }' "$here/weed/go.mod")
[ -n "$version" ] || { echo "weed.sh: no seaweedfs version in $here/weed/go.mod" >&2; exit 1; }

if [ -x "$bin" ] && [ "$(cat "$cache/version" 2>/dev/null)" = "$version" ]; then
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/weed/go.mod" "$here/weed/deps.go" "$work/"
cd "$work"
echo "weed.sh: building weed $version (once; about 10 minutes)" >&2
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
nice -n 19 go mod download github.com/seaweedfs/seaweedfs
nice -n 19 go build -trimpath -ldflags '-s -w' -o "$cache/weed.new" github.com/seaweedfs/seaweedfs/weed
mv "$cache/weed.new" "$bin"
echo "$version" > "$cache/version"
"$bin" version >&2 || true
