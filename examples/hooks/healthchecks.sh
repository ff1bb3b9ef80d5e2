#!/bin/sh
# healthchecks.sh: tells a healthchecks.io-style ping URL how each backtory
# run went: a start signal, then success, or failure with the error and the
# end of the run's log. Healthchecks (hosted or self-hosted), and monitors
# that speak the same protocol (Uptime Kuma's push, Cronitor's telemetry
# URL with its own suffixes), then alert when a run fails, or when none
# arrives in time: a stopped timer or a machine that was off.
#
#   hooks:
#     pre_backup:
#       - run: [/etc/backtory/hooks/healthchecks.sh, "https://hc-ping.com/YOUR-UUID"]
#         on_error: continue
#     post_backup: [[/etc/backtory/hooks/healthchecks.sh, "https://hc-ping.com/YOUR-UUID"]]
#     on_failure:  [[/etc/backtory/hooks/healthchecks.sh, "https://hc-ping.com/YOUR-UUID"]]
#
# Configure it as global hooks (not per source): it pings once per run.
# Run backtory with --log-file so that a failure ping carries the log's last
# lines (BACKTORY_LOG_FILE); without one it carries the error alone.
#
# pre_backup pings URL/start; post_backup pings URL with success or warning
# (a warning's text is the body); on_failure pings URL/fail with the error
# and the log tail. post_backup of a failed run pings nothing: on_failure,
# which also runs when the run failed before pre_backup (the remote was
# down), sends the one failure ping. Needs curl.
set -eu

url=${1:?usage: healthchecks.sh PING-URL}
url=${url%/}
tail_lines=${HEALTHCHECKS_LOG_LINES:-50}

ping() { # ping SUFFIX: POST the body read from stdin to URL SUFFIX
	curl -fsS --max-time 10 --retry 3 --retry-connrefused \
		--data-binary @- -o /dev/null "$url$1"
}

body() {
	printf 'backtory on %s: %s\n' "${BACKTORY_HOST:-}" "${BACKTORY_STATUS:-}"
	if [ -n "${BACKTORY_ERROR:-}" ]; then
		printf '%s\n' "$BACKTORY_ERROR"
	fi
	if [ -n "${BACKTORY_LOG_FILE:-}" ] && [ -r "$BACKTORY_LOG_FILE" ]; then
		printf '\nthe last lines of %s:\n' "$BACKTORY_LOG_FILE"
		tail -n "$tail_lines" "$BACKTORY_LOG_FILE"
	fi
}

case ${BACKTORY_PHASE:-} in
pre_backup) printf 'backtory on %s: started\n' "${BACKTORY_HOST:-}" | ping /start ;;
post_backup)
	case ${BACKTORY_STATUS:-} in
	success | warning) body | ping "" ;;
	esac
	;;
on_failure) body | ping /fail ;;
*)
	echo "healthchecks.sh: run it as a pre_backup, post_backup or on_failure hook (phase: ${BACKTORY_PHASE:-none})" >&2
	exit 2
	;;
esac
