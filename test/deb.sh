#!/bin/bash
# The Debian package test (make test-deb; docs/packaging.md). Builds two
# packages of increasing version, runs lintian (no error; every warning must
# be justified in docs/packaging.md), has systemd-analyze verify the units,
# then in a debootstrap chroot (the tarball is cached in
# /var/cache/backtory-deb): dpkg -i, modes of /etc/backtory and
# /var/lib/backtory, man -w backtory-backup, bash completion of a partial
# command line through bash-completion's loader, backtory init and a backup
# through the installed binary, an upgrade that leaves config, keys, state,
# sets and a modified conffile untouched (sha256 before and after), a
# differential and a deep verify by the new version, remove, purge.
# Needs root (chroot, mounts in a private namespace); nothing is installed
# on the host but the tools of test/deps/deb.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

fail() {
	echo "test-deb FAILED: $*" >&2
	exit 1
}
step() { echo "== $*"; }

[ "$(id -u)" = 0 ] || fail "needs root (a chroot, and mounts in a private namespace)"
bash test/deps/deb.sh
for t in lintian debootstrap dpkg-deb systemd-analyze unshare; do
	command -v "$t" >/dev/null || fail "$t is missing (test/deps/deb.sh installs it)"
done

work=$(mktemp -d /var/tmp/backtory-deb.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT

step "building two packages: 0.1-1 and 0.2-1"
for v in 0.1 0.2; do
	make -s build VERSION="$v" BUILD="$work/build-$v" >/dev/null
	packaging/deb/build.sh "$work/build-$v/backtory" "$v-1" "$work/backtory_$v-1.deb" >/dev/null
done
deb1=$work/backtory_0.1-1.deb
deb2=$work/backtory_0.2-1.deb

step "lintian"
lintian --tag-display-limit 0 "$deb1" >"$work/lintian.out" 2>&1 || true
grep -v 'running with root privileges' "$work/lintian.out" || true
if grep -q '^E: ' "$work/lintian.out"; then
	fail "lintian reports errors"
fi
for tag in $(sed -n 's/^W: [^ ]*: \([a-z0-9-]*\).*/\1/p' "$work/lintian.out" | sort -u); do
	grep -q -- "$tag" docs/packaging.md || fail "lintian warning $tag is not justified in docs/packaging.md"
done

step "systemd-analyze verify of the packaged units"
mkdir "$work/x" "$work/units"
dpkg-deb -x "$deb1" "$work/x"
for u in "$work"/x/lib/systemd/system/*; do
	sed "s|/usr/bin/backtory|$work/x/usr/bin/backtory|" "$u" >"$work/units/$(basename "$u")"
done
units=()
for u in "$work"/units/*; do
	case $u in
	*@*) ;; # a template: verified through its instances only
	*) units+=("$(basename "$u")") ;;
	esac
done
(cd "$work/units" && systemd-analyze verify "${units[@]}") >"$work/verify.out" 2>&1 || {
	cat "$work/verify.out"
	fail "systemd-analyze verify"
}
[ ! -s "$work/verify.out" ] || {
	cat "$work/verify.out"
	fail "systemd-analyze verify has something to say"
}
for u in "$work"/x/lib/systemd/system/*; do
	if grep -q '^ExecStart=/usr/bin/backtory' "$u"; then
		grep -q '^EnvironmentFile=-/etc/default/backtory$' "$u" || fail "$(basename "$u") does not read /etc/default/backtory"
	fi
done

step "the debootstrap chroot (cached in /var/cache/backtory-deb)"
cache=/var/cache/backtory-deb
tarball=$cache/bookworm-minbase.tar.gz
if [ ! -s "$tarball" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/root.XXXXXX")
	debootstrap --variant=minbase --include=man-db,bash-completion bookworm "$tmp" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
		fail "debootstrap (see $cache/debootstrap.log)"
	rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
	tar -C "$tmp" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
	rm -rf --one-file-system "$tmp"
fi
root=$work/root
mkdir "$root"
tar -C "$root" -xzf "$tarball"
cp "$deb1" "$deb2" "$root/tmp/"

# in CMD...: runs a shell command in the chroot, with /proc mounted in a
# mount namespace of its own (it goes away with the command).
inroot() {
	unshare -m --propagation private sh -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' \
		inroot "$root" "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 /bin/sh -ec "$*"
}

step "dpkg -i backtory_0.1-1"
inroot dpkg -i /tmp/backtory_0.1-1.deb
inroot '[ "$(stat -c %a /etc/backtory)" = 700 ] && [ "$(stat -c %a /var/lib/backtory)" = 700 ]' ||
	fail "/etc/backtory and /var/lib/backtory are not mode 0700"
inroot 'backtory --version' | grep -q '^backtory 0.1 ' || fail "the installed binary is not version 0.1"
inroot 'dpkg-query -W -f="\${Conffiles}\n" backtory' | grep -q /etc/default/backtory || fail "/etc/default/backtory is not a conffile"

step "man -w backtory-backup"
page=$(inroot 'man -w backtory-backup')
[ "$page" = /usr/share/man/man8/backtory-backup.8.gz ] || fail "man -w backtory-backup: $page"
inroot 'man -w 5 backtory.yaml' | grep -q man5/backtory.yaml.5.gz || fail "no backtory.yaml(5)"
inroot 'MANWIDTH=80 man backtory-restore' | grep -q -- '--to' || fail "man backtory-restore does not show --to"

step "bash completion of 'backtory re' and 'backtory restore --s'"
complete() {
	inroot "bash -c '. /usr/share/bash-completion/bash_completion; __load_completion backtory; COMP_WORDS=($1); COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1)); _backtory; echo \"\${COMPREPLY[*]}\"'"
}
got=$(complete "backtory re")
[ "$got" = "recovery-script remote restore" ] || fail "completing 'backtory re': '$got'"
got=$(complete "backtory restore --s")
[ "$got" = "--source --set" ] || fail "completing 'backtory restore --s': '$got'"

step "backtory init and a backup through the installed binary"
inroot 'mkdir -p /srv/data/sub && seq 1 20000 >/srv/data/numbers && echo hello >/srv/data/sub/hello'
inroot 'backtory init --source /srv/data --remote file:///srv/remote --host chroot'
inroot 'backtory backup --quiet'
inroot 'backtory list' | grep -q full || fail "no full after the backup"
inroot 'echo "BACKTORY_OPTS=\"--quiet\"  # changed by the admin" >/etc/default/backtory'

sums() {
	inroot 'find /etc/backtory /var/lib/backtory /srv/remote /etc/default/backtory -type f | LC_ALL=C sort | xargs sha256sum'
}
sums >"$work/before"
grep -q /etc/backtory/keys/host.sec.asc "$work/before" || fail "no secret key to watch"

step "upgrade to backtory_0.2-1: config, keys, state, sets and the changed conffile untouched"
inroot dpkg -i /tmp/backtory_0.2-1.deb
inroot 'backtory --version' | grep -q '^backtory 0.2 ' || fail "the upgraded binary is not version 0.2"
sums >"$work/after"
diff -u "$work/before" "$work/after" || fail "the upgrade changed config, keys, state or sets"
inroot 'echo more >>/srv/data/sub/hello && backtory backup --quiet'
inroot 'backtory list' | grep -q diff || fail "no differential by the new version"
inroot 'backtory verify --deep --quiet'

step "dpkg -r: the program goes, config, keys and state stay"
sums >"$work/before"
inroot dpkg -r backtory
inroot '! [ -e /usr/bin/backtory ] && [ -e /etc/default/backtory ] && [ -d /var/lib/backtory ]' ||
	fail "remove: wrong leftovers"
sums >"$work/after"
diff -u "$work/before" "$work/after" || fail "remove changed config, keys or state"

step "dpkg -P: the state goes, the keys stay, and it says so"
inroot dpkg -P backtory 2>"$work/purge.err" || { cat "$work/purge.err"; fail "dpkg -P"; }
cat "$work/purge.err"
grep -q 'purge kept /etc/backtory' "$work/purge.err" || fail "purge did not say it kept /etc/backtory"
inroot '! [ -e /var/lib/backtory ] && ! [ -e /etc/default/backtory ] && [ -s /etc/backtory/keys/host.sec.asc ]' ||
	fail "purge: wrong leftovers"
grep /etc/backtory/ "$work/before" >"$work/keys.before"
inroot 'find /etc/backtory -type f | LC_ALL=C sort | xargs sha256sum' >"$work/keys.after"
diff -u "$work/keys.before" "$work/keys.after" || fail "purge changed /etc/backtory"

echo "test-deb OK in $(($(date +%s) - start))s"
