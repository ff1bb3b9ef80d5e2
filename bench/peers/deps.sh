#!/bin/bash
# deps.sh installs what the peer benchmark runs, from Debian, when it is missing:
# duplicity, restic, borgbackup, rdiff, gnupg, zstd, GNU time. Idempotent, and
# fast when everything is present. Needs root (or sudo) only when installing.
set -eu

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have duplicity || need+=(duplicity)
have restic || need+=(restic)
have borg || need+=(borgbackup)
have rdiff || need+=(rdiff)
have gpg || need+=(gnupg)
have zstd || need+=(zstd)
[ -x /usr/bin/time ] || need+=(time)
have tar || need+=(tar)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing ${need[*]}" >&2
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}"
fi
