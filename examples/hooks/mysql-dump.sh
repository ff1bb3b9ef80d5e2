#!/bin/sh
# mysql-dump.sh: a backtory pre_backup hook that dumps every MySQL or MariaDB
# database into one SQL file, which the backup then contains.
#
#   hooks:
#     pre_backup:
#       - run: [/etc/backtory/hooks/mysql-dump.sh]
#         timeout: 1h
#
# --single-transaction reads every InnoDB table from one consistent snapshot
# of the database without locking it: writes go on during the dump. (Tables
# of other engines, such as MyISAM, are not covered by that snapshot.)
# The dump is written next to its final name and renamed into place only when
# mysqldump succeeded, so the backup never holds a half-written dump; on
# failure the hook exits non-zero and the pre_backup hook aborts the run.
# The dump stays uncompressed: backtory compresses it, and a plain dump
# changes little from one night to the next, so differentials stay small.
#
# Arguments are passed to mysqldump, e.g. --defaults-extra-file=FILE with
# the user and password (the default, on Debian, is root over the socket).
# Environment: MYSQL_DUMP_DIR, the directory of the dump (default
# /var/backups/mysql); it must be inside a backed-up source.
set -eu

dir=${MYSQL_DUMP_DIR:-/var/backups/mysql}
dump=$dir/all-databases.sql

umask 077
mkdir -p "$dir"
tmp=$(mktemp "$dump.XXXXXX")
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

mysqldump "$@" --all-databases --single-transaction --quick \
	--routines --events --triggers --hex-blob --flush-privileges \
	--result-file="$tmp"
# A dump cut short by a server crash can still end in exit 0 on old
# clients; the last line tells.
if ! tail -n 1 "$tmp" | grep -q '^-- Dump completed'; then
	echo "mysql-dump: $dump: the dump is incomplete" >&2
	exit 1
fi
mv -f "$tmp" "$dump"
trap - EXIT
