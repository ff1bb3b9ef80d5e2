#!/bin/sh
# mysql-freeze.sh: a backtory pre_snapshot and post_snapshot hook that holds
# MySQL's or MariaDB's global read lock while the snapshot is taken, so the
# snapshot holds every table (InnoDB, MyISAM, ...) and the binary log at one
# consistent point, flushed to disk.
#
#   sources:
#     - name: data
#       path: /srv
#       snapshot: lvm            # or zfs, btrfs: a freeze is useless without a snapshot
#       lv: vg0/srv
#       hooks:
#         pre_snapshot:  [/etc/backtory/hooks/mysql-freeze.sh]
#         post_snapshot: [/etc/backtory/hooks/mysql-freeze.sh]
#
# Why not `mysql -e 'FLUSH TABLES WITH READ LOCK'` as the hook: the lock
# belongs to the client's session, and the session ends when that client
# exits, so the lock is gone before the snapshot is taken and protects
# nothing. This hook keeps one client running in the background between the
# two phases: in pre_snapshot it starts the client, feeds it the lock
# statement through a FIFO, and returns once the server has granted the lock;
# in post_snapshot it unlocks and lets that client end. The lock is released
# in any case after MYSQL_FREEZE_MAX seconds, when the background process
# holding the FIFO open exits; post_snapshot then fails, since the snapshot
# may have been taken after the lock ended.
#
# While the lock is held every write to the server waits, so keep the
# snapshot quick; FLUSH TABLES WITH READ LOCK itself waits for running
# queries, and the hook gives up (and releases everything) after
# MYSQL_FREEZE_WAIT seconds.
#
# Arguments are passed to the mysql client, e.g.
# --defaults-extra-file=FILE with the user and password (the default, on
# Debian, is root over the socket); give both phases the same ones.
# Environment: MYSQL_FREEZE_WAIT (default 60), MYSQL_FREEZE_MAX (default
# 600), MYSQL_FREEZE_DIR (default /run/backtory-mysql-freeze, the state
# between the two phases).
set -eu

state=${MYSQL_FREEZE_DIR:-/run/backtory-mysql-freeze}
wait_max=${MYSQL_FREEZE_WAIT:-60}
hold_max=${MYSQL_FREEZE_MAX:-600}

say() { echo "mysql-freeze: $*" >&2; }

# contains WORD: the client's output has a line WORD.
contains() { grep -qx "$1" "$state/out" 2>/dev/null; }

# release: end the background processes (the client ends at the end of its
# input, and its session's lock with it) and remove the state.
release() {
	if [ -f "$state/holder.pid" ]; then
		kill "$(cat "$state/holder.pid")" 2>/dev/null || true
	fi
	i=0
	while [ -p "$state/in" ] && ! contains backtory-client-exit && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	rm -rf "$state"
}

freeze() {
	[ -d "$state" ] && release # left over by a run that died
	umask 077
	mkdir "$state"
	mkfifo "$state/in"
	: >"$state/out"
	# The client, its output (with the marker lines) in "out". Its input
	# opens once the holder below opens the FIFO for writing.
	{
		mysql "$@" --batch --unbuffered --skip-column-names || : # set -e holds here too
		echo backtory-client-exit
	} <"$state/in" >"$state/out" 2>&1 &
	# The holder: writes the statements and keeps the FIFO open, so that the
	# client waits for more input, until it is killed or hold_max passes.
	{
		echo "FLUSH TABLES WITH READ LOCK;"
		echo "SELECT 'backtory-locked';"
		exec sleep "$hold_max"
	} >"$state/in" 2>/dev/null &
	echo $! >"$state/holder.pid"

	i=0
	while ! contains backtory-locked; do
		if contains backtory-client-exit; then
			say "cannot lock: $(grep -v '^backtory-' "$state/out" | tail -n 1)"
			release
			exit 1
		fi
		if [ "$i" -ge $((wait_max * 10)) ]; then
			say "FLUSH TABLES WITH READ LOCK did not return within ${wait_max}s (a long query running?); gave up"
			release
			exit 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

thaw() {
	if [ ! -d "$state" ]; then
		return 0 # pre_snapshot did not lock (it failed, or was not configured)
	fi
	if contains backtory-client-exit || ! kill -0 "$(cat "$state/holder.pid")" 2>/dev/null; then
		say "the lock ended before the snapshot did: $(grep -v '^backtory-' "$state/out" | tail -n 1)"
		release
		exit 1
	fi
	# A second writer on the FIFO: unlock, and prove the session was alive.
	# (timeout: should the client be gone, opening the FIFO would wait forever.)
	printf "UNLOCK TABLES;\nSELECT 'backtory-unlocked';\n" | timeout 10 tee "$state/in" >/dev/null || true
	i=0
	while ! contains backtory-unlocked && ! contains backtory-client-exit && [ "$i" -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! contains backtory-unlocked; then
		say "could not unlock: $(grep -v '^backtory-' "$state/out" | tail -n 1)"
		release
		exit 1
	fi
	release
}

case ${BACKTORY_PHASE:-} in
pre_snapshot) freeze "$@" ;;
post_snapshot) thaw ;;
*)
	say "run me as a backtory pre_snapshot and post_snapshot hook (BACKTORY_PHASE is '${BACKTORY_PHASE:-}')"
	exit 2
	;;
esac
