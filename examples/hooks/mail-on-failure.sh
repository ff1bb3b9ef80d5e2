#!/bin/sh
# mail-on-failure.sh: mails the error of a failed backtory run, with the end
# of its log, through the local sendmail (any MTA provides one: Postfix,
# Exim, OpenSMTPD, or msmtp/ssmtp/nullmailer for a smarthost).
#
#   hooks:
#     on_failure: [[/etc/backtory/hooks/mail-on-failure.sh, root]]
#
# Also as a post_backup hook, it mails runs that ended with warnings (and
# stays silent after a success; on a failure the on_failure hook mails):
#
#     post_backup: [[/etc/backtory/hooks/mail-on-failure.sh, root]]
#
# Run backtory with --log-file so that the mail carries the log's last lines
# (BACKTORY_LOG_FILE). Arguments: the recipients. Environment: SENDMAIL,
# the sendmail program (default /usr/sbin/sendmail);
# BACKTORY_MAIL_LOG_LINES, how many log lines (default 50).
set -eu

[ $# -gt 0 ] || { echo "usage: mail-on-failure.sh RECIPIENT..." >&2; exit 2; }
sendmail=${SENDMAIL:-/usr/sbin/sendmail}
tail_lines=${BACKTORY_MAIL_LOG_LINES:-50}
status=${BACKTORY_STATUS:-}

case ${BACKTORY_PHASE:-}:$status in
on_failure:*) ;;
post_backup:warning) ;;
post_backup:*) exit 0 ;;
*)
	echo "mail-on-failure.sh: run it as an on_failure or post_backup hook (phase: ${BACKTORY_PHASE:-none})" >&2
	exit 2
	;;
esac

host=${BACKTORY_HOST:-$(hostname)}
to=$(printf '%s, ' "$@")
{
	printf 'To: %s\n' "${to%, }"
	printf 'Subject: backtory on %s: %s\n' "$host" "$status"
	printf 'Auto-Submitted: auto-generated\n'
	printf 'Content-Type: text/plain; charset=utf-8\n'
	printf '\n'
	printf 'The backtory backup on %s ended: %s.\n\n' "$host" "$status"
	if [ -n "${BACKTORY_ERROR:-}" ]; then
		printf '%s\n' "$BACKTORY_ERROR"
	fi
	if [ -n "${BACKTORY_LOG_FILE:-}" ] && [ -r "$BACKTORY_LOG_FILE" ]; then
		printf '\nThe last lines of %s:\n\n' "$BACKTORY_LOG_FILE"
		tail -n "$tail_lines" "$BACKTORY_LOG_FILE"
	fi
} | "$sendmail" -t -oi
