# ---- everything below is the same in every recover.sh ----

usage() {
	cat <<EOF
usage: recover.sh COMMAND [options] [PATH...]

  plan [--at T] [--map OLD=NEW ...] [--skip DISK ...]
        print the sets, the partition tables and every command of bare-metal;
        touches nothing and needs no network and no keys
  files --to DIR [--at T] [--source NAME] [--force] [PATH...]
        restore files (all, or the PATHs) of the source at time T into DIR
  bare-metal [--at T] [--map OLD=NEW ...] [--skip DISK ...] [--yes] [--target DIR]
        recreate partitions, RAID, LUKS, LVM, ZFS, filesystems (same UUIDs and
        labels), restore every source, fix up and reinstall the boot loader;
        re-running skips the steps that succeeded (--restart forgets them)

options:
  --at T                 point in time as backtory takes it: RFC 3339 (2026-11-20T14:00:00Z,
                         2026-11-20T15:00:00+01:00), local time as TZ says ('2026-11-20 14:00',
                         2026-11-20), or a set id (default: the newest set)
  --map OLD=NEW          restore disk OLD onto disk NEW (sda=vda or /dev/sda=/dev/nvme0n1)
  --skip DISK            leave a recorded disk alone (the disk the backups are on, say)
  --url URL              the remote root (default: $BT_URL)
  --fetch METHOD         fetch with this only: curl, wget, lftp, busybox-wget, busybox-ftpget, sftp, scp
                         (repeatable; default: the first of them this system has)
  --user USER            remote user (default: ${BT_USER:-none}); password from
  --password-file FILE   or the environment variable BACKTORY_REMOTE_PASSWORD
  --tls-ca FILE          PEM of the CA that verifies the FTPS server (default: the
                         remote's tls_ca, written into this script when it was made)
  --key FILE             secret OpenPGP key that decrypts the backups (host or admin key)
  --passphrase-file FILE its passphrase (or, in passphrase mode, the backups' passphrase);
                         or the environment variable BACKTORY_KEY_PASSPHRASE
  --stock                restore with gpg, zstd, tar and rdiff instead of the static backtory
  --backtory FILE        use this backtory binary instead of fetching the signed one
  --work DIR             scratch and state directory (default: /tmp/backtory-recover)
  --luks-key-file FILE   LUKS passphrase file for luksFormat/open (default: ask)
  --no-bootloader        do not reinstall the boot loader
  --yes                  do not ask for confirmation
EOF
}

log() { printf '%s\n' "recover.sh: $*" >&2; }
die() {
	printf '%s\n' "recover.sh: error: $*" >&2
	# Steps run their loops in pipelines (subshells): the flag file tells
	# the step runner that something inside failed.
	if [ -n "${W:-}" ] && [ -d "$W" ]; then
		: >"$W/failed"
	fi
	exit 1
}

# quote prints its arguments as one shell-quoted command line.
quote() {
	q_out=""
	for q_a in "$@"; do
		case $q_a in
		"" | *[!A-Za-z0-9_./:=,@%+-]*)
			q_a="'$(printf '%s' "$q_a" | sed "s/'/'\\\\''/g")'"
			;;
		esac
		q_out="$q_out${q_out:+ }$q_a"
	done
	printf '%s\n' "$q_out"
}

# run executes a command, or, in plan mode, prints it.
run() {
	if [ "$DRY" = 1 ]; then
		printf '    %s\n' "$(quote "$@")"
		return 0
	fi
	log "+ $(quote "$@")"
	"$@" </dev/null || die "failed: $(quote "$@")"
}

# try is run for a command whose failure does not matter.
try() {
	if [ "$DRY" = 1 ]; then
		printf '    %s\n' "$(quote "$@")"
		return 0
	fi
	log "+ $(quote "$@")"
	"$@" </dev/null || log "(that failed; going on)"
	return 0
}

# run_tty is run for a command that asks the operator (cryptsetup).
run_tty() {
	if [ "$DRY" = 1 ]; then
		printf '    %s\n' "$(quote "$@")"
		return 0
	fi
	log "+ $(quote "$@")"
	"$@" </dev/tty || die "failed: $(quote "$@")"
}

# tool prints the absolute path of a real (not busybox) command NAME, or
# nothing. Busybox applets shadow PATH, so full tools are called by path.
tool() {
	for t_d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin $(printf '%s' "${PATH:-}" | tr ':' ' '); do
		t_p=$t_d/$1
		if [ ! -x "$t_p" ] || [ -d "$t_p" ]; then
			continue
		fi
		case $(readlink -f "$t_p" 2>/dev/null) in
		*/busybox*) continue ;;
		esac
		printf '%s\n' "$t_p"
		return 0
	done
	return 1
}

# need prints the path of a real tool or dies naming the package to install
# (plan prints the bare name).
need() {
	tool "$1" && return 0
	if [ "$DRY" = 1 ]; then
		printf '%s\n' "$1"
		return 0
	fi
	die "$1 is missing in this rescue system: install it (Debian package: ${2:-$1}) and run again"
}

# unesc decodes a layout.conf field: every %XX escape (Go's Escape writes
# one for each byte up to space, % and DEL).
unesc() {
	if [ "$1" = - ]; then
		return 0
	fi
	case $1 in
	*%*)
		printf '%s\n' "$1" | LC_ALL=C awk '
			BEGIN { for (i = 0; i < 16; i++) { hex[substr("0123456789ABCDEF", i + 1, 1)] = i; hex[substr("0123456789abcdef", i + 1, 1)] = i } }
			{
				out = ""
				for (i = 1; i <= length($0); i++) {
					c = substr($0, i, 1)
					a = substr($0, i + 1, 1)
					b = substr($0, i + 2, 1)
					if (c == "%" && (a in hex) && (b in hex)) {
						out = out sprintf("%c", hex[a] * 16 + hex[b])
						i += 2
					} else {
						out = out c
					}
				}
				printf "%s", out
			}'
		;;
	*) printf '%s' "$1" ;;
	esac
}

# ---- sets and time ----

# settime prints, as 14 digits YYYYmmddHHMMSS in UTC, the time of a set id
# or of a time given to --at. It reads what the backtory CLI reads
# (archive.ParseTime): RFC 3339 (2026-11-20T14:00:00Z,
# 2026-11-20T15:00:00+01:00), '2026-11-20 15:00:00 +01:00' as 'backtory
# list' prints it, local time as TZ says (2026-11-20, '2026-11-20 14:00',
# 2026-11-20T14:00:05) and 20261120T140000Z; it dies on anything else.
settime() {
	s_in=$1
	case $s_in in full-* | diff-*) s_in=${s_in#*-} ;; esac
	s_f=$(printf '%s\n' "$s_in" | awk '
		function days(y, m, d) {
			y -= (m <= 2)
			return int(y / 400) * 146097 + (y % 400) * 365 + int((y % 400) / 4) - int((y % 400) / 100) + int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1 - 719468
		}
		function mdays(y, m) {
			if (m == 2) return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28
			return (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31
		}
		NR > 1 { exit }
		{
			s = $0; h = 0; mi = 0; se = 0; zone = ""
			if (s ~ /^[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z$/) {
				y = substr(s, 1, 4) + 0; m = substr(s, 5, 2) + 0; d = substr(s, 7, 2) + 0
				h = substr(s, 10, 2) + 0; mi = substr(s, 12, 2) + 0; se = substr(s, 14, 2) + 0; zone = "Z"
			} else {
				if (s !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/) exit
				y = substr(s, 1, 4) + 0; m = substr(s, 6, 2) + 0; d = substr(s, 9, 2) + 0
				s = substr(s, 11)
				if (s ~ /^[T ][0-9][0-9]:[0-9][0-9]/) {
					h = substr(s, 2, 2) + 0; mi = substr(s, 5, 2) + 0; s = substr(s, 7)
					if (s ~ /^:[0-9][0-9]/) {
						se = substr(s, 2, 2) + 0; s = substr(s, 4)
						if (s ~ /^\.[0-9]/) { sub(/^\.[0-9]+/, "", s) }
					}
				}
				sub(/^ +/, "", s)
				if (s == "Z") zone = "Z"
				else if (s ~ /^[-+][0-9][0-9]:?[0-9][0-9]$/) zone = s
				else if (s != "") exit
			}
			if (m < 1 || m > 12 || d < 1 || d > mdays(y, m) || h > 23 || mi > 59 || se > 59) exit
			if (zone == "") { printf "local %04d-%02d-%02d %02d:%02d:%02d\n", y, m, d, h, mi, se; exit }
			off = 0
			if (zone != "Z") {
				zh = substr(zone, 2, 2) + 0; zm = substr(zone, length(zone) - 1, 2) + 0
				if (zh > 23 || zm > 59) exit
				off = (zh * 60 + zm) * 60; if (substr(zone, 1, 1) == "-") off = -off
			}
			printf "epoch %d\n", days(y, m, d) * 86400 + h * 3600 + mi * 60 + se - off
		}')
	case $s_f in
	local\ *)
		# The local time's zone offset (daylight saving included) is known
		# to date -d (GNU, busybox) alone.
		s_e=$(date -d "${s_f#local }" +%s 2>/dev/null) ||
			die "--at $1: this system's date cannot read local times: give the zone (e.g. ${s_f#local }Z for UTC, or +01:00)"
		;;
	epoch\ *) s_e=${s_f#epoch } ;;
	*) die "--at $1: want RFC 3339 (2026-11-20T14:00:00Z, 2026-11-20T15:00:00+01:00), local time (2026-11-20, '2026-11-20 14:00[:05]') or a set id" ;;
	esac
	printf '%s\n' "$s_e" | awk '{
		z = int($1 / 86400); r = $1 - z * 86400
		z += 719468; era = int(z / 146097); doe = z - era * 146097
		yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
		doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100)); mp = int((5 * doy + 2) / 153)
		d = doy - int((153 * mp + 2) / 5) + 1; m = mp < 10 ? mp + 3 : mp - 9; y = yoe + era * 400 + (m <= 2)
		printf "%04d%02d%02d%02d%02d%02d\n", y, m, d, int(r / 3600), int(r % 3600 / 60), r % 60
	}'
}

# pick_set SOURCE prints "ID BASE" of the newest set of SOURCE at or before
# $AT (BASE is - for a full).
pick_set() {
	if [ -z "$AT" ]; then
		p_at=99999999999999
	else
		p_at=$(settime "$AT")
	fi
	bt_sets | awk -v src="$1" -v at="$p_at" -v want="$AT" '
		$1 != src { next }
		{ t = $2; sub(/^[a-z]+-/, "", t); gsub(/[^0-9]/, "", t) }
		$2 == want { id = $2; base = $3; exact = 1 }
		!exact && t <= at { id = $2; base = $3 }
		END { if (id != "") print id, base }'
}

# ---- fetching and verifying ----

# fetch REL DEST downloads the remote object REL (host/source/...) to DEST
# with whatever this system has (or the methods of --fetch, in order):
# cp, curl, GNU wget, lftp, busybox wget, busybox ftpget; for sftp://,
# OpenSSH's sftp, scp, then curl, with the key in $BACKTORY_SSH_KEY (else
# ssh-agent or ~/.ssh) and the host key from $BACKTORY_KNOWN_HOSTS
# (default /etc/backtory/known_hosts), never accepting an unknown one.
fetch() {
	f_url=${URL%/}/$1
	rm -f "$2"
	case $f_url in
	file://*)
		cp "${f_url#file://}" "$2" 2>/dev/null
		return
		;;
	esac
	f_scheme=${f_url%%://*}
	f_rest=${f_url#*://}
	f_hp=${f_rest%%/*}
	f_path=/${f_rest#*/}
	# The URL's path is absolute on the server, as backtory reads it; curl
	# and wget take a path relative to the login directory unless it
	# starts with %2F.
	f_abs=$f_hp/%2F${f_path#/}
	f_host=${f_hp%:*}
	f_port=21
	[ "$f_scheme" = sftp ] && f_port=22
	case $f_hp in *:*) f_port=${f_hp##*:} ;; esac
	f_pass=""
	if [ -n "$USER_NAME" ]; then
		if [ -n "$PASSWORD_FILE" ]; then
			f_pass=$(head -n1 "$PASSWORD_FILE")
		else
			f_pass=${BACKTORY_REMOTE_PASSWORD:-}
		fi
	fi
	f_auth=""
	[ -n "$USER_NAME" ] && f_auth="$USER_NAME:$f_pass@"
	f_methods="curl wget lftp busybox-wget busybox-ftpget"
	if [ "$f_scheme" = sftp ]; then
		f_methods="sftp scp curl"
		# OpenSSH's clients cannot read a password from a file; curl can.
		[ -n "$f_pass" ] && [ -z "${BACKTORY_SSH_KEY:-}" ] && f_methods="curl sftp scp"
		f_kh=${BACKTORY_KNOWN_HOSTS:-/etc/backtory/known_hosts}
		[ -r "$f_kh" ] || die "sftp: no known_hosts file $f_kh to check the server's host key with: set BACKTORY_KNOWN_HOSTS (the backed-up host's /etc/backtory/known_hosts)"
		f_khost=$f_host
		[ "$f_port" = 22 ] || f_khost="[$f_host]:$f_port"
		# OpenSSH's options: the host key from f_kh only, never asking.
		set -- "$1" "$2" -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$f_kh" \
			-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=30 -o ServerAliveInterval=15 -P "$f_port"
		if [ -n "${BACKTORY_SSH_KEY:-}" ]; then
			set -- "$@" -o IdentitiesOnly=yes -i "$BACKTORY_SSH_KEY"
		fi
		case $f_path in /~/*) f_path=${f_path#/~/} ;; esac
		f_login=$f_host
		[ -n "$USER_NAME" ] && f_login=$USER_NAME@$f_host
	fi
	f_ca=$(ca_file)
	for f_m in ${FETCH:-$f_methods}; do
		case $f_m in
		sftp | scp)
			[ "$f_scheme" = sftp ] || continue
			f_bin=$(tool "$f_m") || continue
			f_dest=$2
			shift 2
			if [ "$f_m" = sftp ]; then
				printf 'get "%s" "%s"\n' "$f_path" "$f_dest" | "$f_bin" -q -b - "$@" "$f_login" >/dev/null
			else
				"$f_bin" -q "$@" "$f_login:$f_path" "$f_dest"
			fi
			return
			;;
		curl)
			f_bin=$(tool curl) || continue
			if [ "$f_scheme" = sftp ]; then
				"$f_bin" -V 2>/dev/null | grep -q '^Protocols:.* sftp' || continue
				# curl checks the host key by its SHA-256, from the same file.
				f_sha=$(ssh-keygen -F "$f_khost" -f "$f_kh" 2>/dev/null | grep -v '^#' | ssh-keygen -lf - 2>/dev/null |
					awk '{ sub(/^SHA256:/, "", $2); print $2 "="; exit }')
				[ -n "$f_sha" ] || die "sftp: $f_kh has no key for $f_khost (or ssh-keygen is missing)"
			fi
			# A config file keeps the password out of the process list.
			{
				[ -n "$USER_NAME" ] && printf 'user = "%s"\n' "$(cfq "$USER_NAME:$f_pass")"
				[ -n "$f_ca" ] && printf 'cacert = "%s"\n' "$(cfq "$f_ca")"
				case $f_scheme in
				ftp) printf 'url = "ftp://%s"\n' "$(cfq "$f_abs")" ;;
				ftps) printf 'ssl-reqd\nurl = "ftp://%s"\n' "$(cfq "$f_abs")" ;;
				ftps+implicit) printf 'url = "ftps://%s"\n' "$(cfq "$f_abs")" ;;
				sftp)
					case $f_path in /*) f_cp=$f_path ;; *) f_cp=/~/$f_path ;; esac
					printf 'url = "sftp://%s:%s%s"\nhostpubsha256 = "%s"\n' "$f_host" "$f_port" "$f_cp" "$f_sha"
					[ -n "${BACKTORY_SSH_KEY:-}" ] && printf 'key = "%s"\n' "$BACKTORY_SSH_KEY"
					;;
				*) printf 'url = "%s"\n' "$f_url" ;;
				esac
			} >"$W/curl.conf"
			"$f_bin" -fsS --retry 3 -K "$W/curl.conf" -o "$2"
			f_rc=$?
			rm -f "$W/curl.conf"
			return $f_rc
			;;
		wget)
			case $f_scheme in ftps* | sftp) continue ;; esac
			f_bin=$(tool wget) || continue
			f_wurl=$f_scheme://$f_auth$f_rest
			[ "$f_scheme" = ftp ] && f_wurl=ftp://$f_auth$f_abs
			"$f_bin" -q -t 3 ${f_ca:+"--ca-certificate=$f_ca"} -O "$2" "$f_wurl"
			return
			;;
		lftp)
			f_bin=$(tool lftp) || continue
			case $f_scheme in
			ftp) f_set="set ftp:ssl-allow false" f_open=ftp ;;
			ftps) f_set="set ftp:ssl-force true; set ftp:ssl-protect-data true" f_open=ftp ;;
			ftps+implicit) f_set="set ftp:ssl-protect-data true" f_open=ftps ;;
			*) continue ;;
			esac
			[ -n "$f_ca" ] && f_set="$f_set; set ssl:ca-file $(lq "$f_ca")"
			# The password goes through the environment (--env-password),
			# never into the command string; every other word is quoted.
			f_login=""
			[ -n "$USER_NAME" ] && f_login="-u $(lq "$USER_NAME") --env-password"
			LFTP_PASSWORD=$f_pass "$f_bin" -c "$f_set; open $f_login $(lq "$f_open://$f_hp"); get1 -o $(lq "$2") $(lq "$f_path")"
			return
			;;
		busybox-wget)
			case $f_scheme in ftps* | https | sftp) continue ;; esac
			command -v busybox >/dev/null 2>&1 || continue
			busybox wget -q -O "$2" "$f_scheme://$f_auth$f_rest"
			return
			;;
		busybox-ftpget)
			[ "$f_scheme" = ftp ] || continue
			command -v busybox >/dev/null 2>&1 || continue
			if [ -n "$USER_NAME" ]; then
				busybox ftpget -P "$f_port" -u "$USER_NAME" -p "$f_pass" "$f_host" "$2" "$f_path"
			else
				busybox ftpget -P "$f_port" "$f_host" "$2" "$f_path"
			fi
			return
			;;
		*) die "--fetch $f_m: want curl, wget, lftp, busybox-wget, busybox-ftpget, sftp or scp" ;;
		esac
	done
	[ "$f_scheme" = sftp ] && die "no way to fetch $f_url here: install openssh-client (sftp, scp) or a curl with sftp"
	die "no way to fetch $f_url here: install curl, wget or (for FTPS) lftp"
}

# ca_file prints the PEM file that verifies the FTPS server: --tls-ca, or
# the remote's tls_ca written into this script; nothing when there is none.
ca_file() {
	if [ -n "$TLS_CA" ]; then
		printf '%s\n' "$TLS_CA"
	elif [ "$BT_CA" = 1 ]; then
		[ -s "$W/ca.pem" ] || bt_ca >"$W/ca.pem"
		printf '%s\n' "$W/ca.pem"
	fi
}

# cfq escapes a value for a double-quoted string of curl's config file.
cfq() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }

# lq quotes a word for lftp's command line: in double quotes, with
# backslash before a backslash or a double quote.
lq() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }

# gpg_home prepares a GnuPG home that holds the host's public key and, when
# given, the secret key.
gpg_home() {
	[ -n "$GPG" ] || die "gpg is missing in this rescue system: install it (Debian package: gpg) or use the static backtory"
	[ -d "$W/gnupg" ] && return 0
	mkdir -p "$W/gnupg" && chmod 700 "$W/gnupg"
	if [ -n "$BT_FPR" ]; then
		bt_pubkey >"$W/signer.asc"
		"$GPG" --homedir "$W/gnupg" --batch --quiet --import "$W/signer.asc" 2>/dev/null ||
			die "gpg cannot import the signing key embedded in this script"
	fi
	if [ -n "$KEY" ]; then
		gpgq --import "$KEY" 2>/dev/null || die "gpg cannot import the secret key $KEY"
	fi
}

gpgq() {
	if [ -n "$PASSFILE" ]; then
		"$GPG" --homedir "$W/gnupg" --batch --no-tty --quiet --pinentry-mode loopback --passphrase-file "$PASSFILE" "$@"
	else
		"$GPG" --homedir "$W/gnupg" --batch --no-tty --quiet "$@"
	fi
}

# validsig FILE succeeds when gpg's status output FILE holds a good
# signature by the pinned key.
validsig() {
	awk -v fpr="$BT_FPR" '$1 == "[GNUPG:]" && $2 == "VALIDSIG" && ($3 == fpr || $NF == fpr) { ok = 1 } END { exit !ok }' "$1"
}

# verify_detached FILE checks FILE.asc against FILE with the pinned key.
verify_detached() {
	gpg_home
	"$GPG" --homedir "$W/gnupg" --batch --no-tty --quiet --status-fd 3 --verify "$1.asc" "$1" 3>"$W/status" 2>/dev/null &&
		validsig "$W/status"
}

# open_small FILE OUT decrypts a sealed object into OUT and checks that it
# was signed by the pinned key; OUT exists only if it was.
open_small() {
	case $1 in
	*.pgp) ;;
	*)
		o_src=$1
		case $1 in *.zst) o_src=$W/open.tmp && "$ZSTD" -dqc "$1" >"$o_src" || return 1 ;; esac
		[ "$o_src" = "$2" ] || mv "$o_src" "$2" 2>/dev/null || cp "$o_src" "$2"
		return 0
		;;
	esac
	gpg_home
	rm -f "$2" "$W/open.tmp"
	gpgq --status-fd 3 --decrypt "$1" 3>"$W/status" >"$W/open.tmp" 2>"$W/gpg.err" ||
		die "cannot open $1: $(head -n3 "$W/gpg.err" | tr '\n' ' ')(the right --key and --passphrase-file? gpg-agent installed?)"
	if [ -n "$BT_FPR" ] && ! validsig "$W/status"; then
		die "$1 is not signed by $BT_FPR: refusing it"
	fi
	grep -q '^\[GNUPG:\] GOODMDC' "$W/status" || die "$1: gpg reports no good integrity check (GOODMDC): refusing it"
	case $1 in
	*.zst.pgp) "$ZSTD" -dqc "$W/open.tmp" >"$2" || die "cannot decompress $1" ;;
	*) mv "$W/open.tmp" "$2" ;;
	esac
}

# ---- the static backtory (fast path) ----

# get_backtory prints the path of a verified static backtory, or fails.
get_backtory() {
	if [ -n "$BT_BIN" ]; then
		printf '%s\n' "$BT_BIN"
		return 0
	fi
	g_b=$W/bin/backtory
	if [ -x "$g_b" ]; then
		printf '%s\n' "$g_b"
		return 0
	fi
	mkdir -p "$W/bin"
	fetch "$BT_HOST/$1/backtory" "$g_b.tmp" || return 1
	g_ok=0
	if [ -n "$BT_BINARY_SHA256" ] && [ "$(sha256sum "$g_b.tmp" | cut -d' ' -f1)" = "$BT_BINARY_SHA256" ]; then
		g_ok=1
	elif [ -n "$BT_FPR" ] && tool gpg >/dev/null && fetch "$BT_HOST/$1/backtory.asc" "$g_b.tmp.asc" &&
		verify_detached "$g_b.tmp"; then
		g_ok=1
	fi
	if [ "$g_ok" != 1 ]; then
		log "the remote's backtory binary matches neither the SHA-256 in this script nor a signature by $BT_FPR: not using it"
		rm -f "$g_b.tmp"
		return 1
	fi
	chmod 700 "$g_b.tmp" && mv "$g_b.tmp" "$g_b"
	"$g_b" version >/dev/null 2>&1 || {
		log "the static backtory does not run here (another CPU architecture?)"
		return 1
	}
	printf '%s\n' "$g_b"
}

# bt_config SOURCE writes a backtory config for the rescue system.
bt_config() {
	c_f=$W/backtory-$1.yaml
	{
		printf 'host: %s\nstate_dir: %s\n' "$BT_HOST" "$W/state-$1"
		printf 'sources:\n  - name: %s\n    path: /\n' "$1"
		printf 'remote:\n  url: "%s"\n' "$URL"
		[ -n "$USER_NAME" ] && printf '  user: "%s"\n' "$USER_NAME"
		[ -n "$PASSWORD_FILE" ] && printf '  password_file: "%s"\n' "$PASSWORD_FILE"
		[ -n "${BACKTORY_SSH_KEY:-}" ] && printf '  ssh_key: "%s"\n' "$BACKTORY_SSH_KEY"
		[ -n "${BACKTORY_KNOWN_HOSTS:-}" ] && printf '  known_hosts: "%s"\n' "$BACKTORY_KNOWN_HOSTS"
		case $URL in ftps*) [ -n "$(ca_file)" ] && printf '  tls_ca: "%s"\n' "$(ca_file)" ;; esac
		if [ "$BT_SEALED" = 1 ] && [ -z "$BT_FPR" ]; then
			printf 'encryption:\n  mode: passphrase\n'
			[ -n "$PASSFILE" ] && printf '  passphrase_file: "%s"\n' "$PASSFILE"
		elif [ "$BT_SEALED" = 1 ]; then
			bt_pubkey >"$W/signer.asc"
			printf 'encryption:\n  recipients: ["%s"]\n  signer_fingerprint: "%s"\n' "$W/signer.asc" "$BT_FPR"
			[ -n "$KEY" ] && printf '  decryption_keys: ["%s"]\n' "$KEY"
			[ -n "$PASSFILE" ] && printf '  passphrase_file: "%s"\n' "$PASSFILE"
		fi
	} >"$c_f"
	printf '%s\n' "$c_f"
}

# ---- restoring one source ----

# restore_source SOURCE DIR FORCE [PATH...] restores the set of SOURCE at
# $AT into DIR: with the static backtory, else with stock tools.
# check_keys dies unless the keys that open the sets were given.
check_keys() {
	if [ "$BT_SEALED" = 1 ] && [ -n "$BT_FPR" ] && [ -z "$KEY" ]; then
		die "the backups are encrypted: give --key FILE, the host's or the admin's secret key (and --passphrase-file if it has one)"
	fi
	if [ "$BT_SEALED" = 1 ] && [ -z "$BT_FPR" ] && [ -z "$PASSFILE" ]; then
		die "the backups are encrypted with a passphrase: give --passphrase-file FILE or set BACKTORY_KEY_PASSPHRASE"
	fi
}

restore_source() {
	r_src=$1
	r_dir=$2
	r_force=$3
	shift 3
	r_pick=$(pick_set "$r_src")
	[ -n "$r_pick" ] || die "no set of source $r_src at or before ${AT:-now} (sets: $(bt_sets | awk -v s="$r_src" '$1 == s { printf "%s ", $2 }'))"
	r_id=${r_pick%% *}
	if [ "$DRY" = 1 ]; then
		printf '    restore set %s of source %s into %s\n' "$r_id" "$r_src" "$r_dir"
		return 0
	fi
	check_keys
	if [ "$BT_SEALED" != 1 ]; then
		log "warning: the backups are not sealed: nothing can be verified, anyone with access to the remote could have changed them"
	elif [ -z "$BT_FPR" ]; then
		log "warning: passphrase mode: objects are not signed, only their integrity under the passphrase is checked"
	fi
	mkdir -p "$r_dir"
	if [ "$STOCK" != 1 ] && r_bt=$(get_backtory "$r_src"); then
		r_cfg=$(bt_config "$r_src")
		log "restoring $r_src set $r_id into $r_dir with $r_bt"
		if [ "$r_force" = 1 ]; then
			"$r_bt" restore --config "$r_cfg" --set "$r_id" --to "$r_dir" --force -- "$@"
		else
			"$r_bt" restore --config "$r_cfg" --set "$r_id" --to "$r_dir" -- "$@"
		fi
		r_rc=$?
		[ $r_rc = 0 ] || [ $r_rc = 3 ] || die "backtory restore of $r_src failed (exit $r_rc)"
		return 0
	fi
	[ "$STOCK" = 1 ] || log "falling back to stock tools (gpg, zstd, tar, rdiff)"
	if [ "$r_force" != 1 ] && [ -n "$(ls -A "$r_dir" 2>/dev/null)" ]; then
		die "$r_dir is not empty (use --force)"
	fi
	stock_restore "$r_src" "$r_id" "$r_dir" "$@"
}

# stock_manifest SOURCE ID prints the path of the verified manifest of a set.
stock_manifest() {
	m_dir=$W/sets/$2
	mkdir -p "$m_dir"
	if [ ! -s "$m_dir/manifest.json" ]; then
		m_name=manifest.json
		[ "$BT_SEALED" = 1 ] && m_name=manifest.json.pgp
		fetch "$BT_HOST/$1/$2/$m_name" "$m_dir/$m_name" || die "cannot fetch $BT_HOST/$1/$2/$m_name"
		open_small "$m_dir/$m_name" "$m_dir/manifest.json"
	fi
	printf '%s\n' "$m_dir/manifest.json"
}

# manifest_field FILE SECTION KEY prints a value of the manifest (JSON
# written by Go's MarshalIndent: one key per line).
manifest_field() {
	awk -v sect="$2" -v key="$3" '
		/^  "[a-z_]+": / { cur = $1; gsub(/[":]/, "", cur); if (sect == "" && cur == key) { v = $2; gsub(/[",]/, "", v); print v; exit } next }
		cur == sect && $1 == "\"" key "\":" { v = $2; gsub(/[",]/, "", v); print v; exit }' "$1"
}

# manifest_volumes FILE prints "SHA256 NAME" per volume.
manifest_volumes() {
	awk '/^  "[a-z_]+": / { cur = $1; gsub(/[":]/, "", cur); next }
		cur == "volumes" && $1 == "\"name\":" { n = $2; gsub(/[",]/, "", n) }
		cur == "volumes" && $1 == "\"sha256\":" { h = $2; gsub(/[",]/, "", h); print h, n }' "$1"
}

# stock_volume SOURCE ID SHA NAME fetches a volume, checks its SHA-256
# against the verified manifest, and prints the local path.
stock_volume() {
	v_f=$W/sets/$2/$4
	if [ ! -f "$v_f" ] || [ "$(sha256sum "$v_f" | cut -d' ' -f1)" != "$3" ]; then
		fetch "$BT_HOST/$1/$2/$4" "$v_f" || die "cannot fetch $BT_HOST/$1/$2/$4"
	fi
	[ "$(sha256sum "$v_f" | cut -d' ' -f1)" = "$3" ] || die "$BT_HOST/$1/$2/$4 does not match its manifest (SHA-256): refusing it"
	printf '%s\n' "$v_f"
}

# plain_stream FILE writes a volume's tar stream to stdout: decrypted,
# decompressed. Failures are noted in $W/pipe.fail (sh has no pipefail).
plain_stream() {
	{
		case $1 in
		*.pgp) gpgq --decrypt "$1" 2>"$W/gpg.err" || echo "gpg ($1)" >>"$W/pipe.fail" ;;
		*) cat "$1" ;;
		esac
	} | {
		case $1 in
		*.zst | *.zst.pgp) "$ZSTD" -dqc || echo "zstd ($1)" >>"$W/pipe.fail" ;;
		*) cat ;;
		esac
	}
}

# untar_stream DIR [MEMBER...] extracts the tar stream on stdin into DIR.
# GNU tar reads concatenated volumes (-i).
untar_stream() {
	u_dir=$1
	shift
	if [ "$GNU_TAR" = 1 ]; then
		"$TAR" -x -i -f - -C "$u_dir" -p --numeric-owner --xattrs --xattrs-include='*' --acls "$@" 2>"$W/tar.err"
	else
		"$TAR" -x -f - -C "$u_dir" "$@" 2>"$W/tar.err"
	fi || {
		# Asking for members a volume does not hold is fine.
		if grep -vi 'not found in archive' "$W/tar.err" | grep -qv 'Exiting with failure status'; then
			echo tar >>"$W/pipe.fail"
		fi
	}
}

# pipe_check dies naming what failed in the last extraction.
pipe_check() {
	if [ -s "$W/pipe.fail" ]; then
		cat "$W/gpg.err" "$W/tar.err" >&2 2>/dev/null
		die "extracting $1 failed in: $(tr '\n' ' ' <"$W/pipe.fail")"
	fi
}

# untar_volume FILE DIR [MEMBER...]: decrypt, decompress and extract one volume.
untar_volume() {
	u_f=$1
	shift
	rm -f "$W/pipe.fail"
	plain_stream "$u_f" | untar_stream "$@"
	pipe_check "$u_f"
}

# The path checks of the stock restore, as text: run here and in the sh -c
# children of find and xargs. confined ROOT REL succeeds when REL is a
# relative path with no empty, . or .. component, and no component of it
# above the last is, below ROOT, a symlink or an existing non-directory;
# plainfile ROOT REL when REL itself is also a regular file, not a symlink.
# shellcheck disable=SC2016 # expanded where it runs
CONFINED='confined() {
	c_cur=$1 c_rest=$2
	case $c_rest in "" | /* | */) return 1 ;; esac
	while :; do
		c_comp=${c_rest%%/*}
		case $c_comp in "" | . | ..) return 1 ;; esac
		c_cur=$c_cur/$c_comp
		[ "$c_rest" = "$c_comp" ] && return 0
		c_rest=${c_rest#*/}
		if [ -L "$c_cur" ] || { [ -e "$c_cur" ] && [ ! -d "$c_cur" ]; }; then
			return 1
		fi
	done
}
plainfile() { confined "$1" "$2" && [ -f "$1/$2" ] && [ ! -L "$1/$2" ]; }'
eval "$CONFINED"

# members_ok FILE checks the member names of a volume before it is
# unpacked: none absolute or with a .. component and, when MEMBER_ROOT is
# set (unpacking over an existing tree), none below a directory that is a
# symlink or not a directory there. GNU tar lists names escaped; they are
# decoded here.
members_ok() {
	rm -f "$W/list.fail"
	plain_stream "$1" | {
		if [ "$GNU_TAR" = 1 ]; then
			"$TAR" -t -i --quoting-style=escape -f - 2>"$W/tar.err"
		else
			"$TAR" -t -f - 2>"$W/tar.err"
		fi || echo "tar -t ($1)" >>"$W/list.fail"
	} >"$W/members"
	[ ! -s "$W/list.fail" ] || return 1
	LC_ALL=C awk -v root="$MEMBER_ROOT" -v esc="$GNU_TAR" -v sq="'" -v dq='"' '
		function oct(s,  v, k) { v = 0; for (k = 1; k <= 3; k++) v = v * 8 + substr(s, k, 1); return v }
		function dec(s,  out, i, c) {
			out = ""
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				if (c != "\\") { out = out c; continue }
				c = substr(s, ++i, 1)
				if (c ~ /[0-7]/) { out = out sprintf("%c", oct(substr(s, i, 3))); i += 2 }
				else if (c == "n") out = out "\n"
				else if (c == "t") out = out "\t"
				else if (c == "r") out = out "\r"
				else if (c == "f") out = out "\f"
				else if (c == "v") out = out "\v"
				else if (c == "a") out = out "\007"
				else if (c == "b") out = out "\b"
				else out = out c
			}
			return out
		}
		function q(s) { gsub(sq, sq dq sq dq sq, s); return sq s sq }
		{
			name = esc == 1 ? dec($0) : $0
			sub(/^\.\//, "", name)
			sub(/\/$/, "", name)
			if (name == "." || name == "") next
			if (name ~ /^\// || name ~ /(^|\/)\.\.(\/|$)/) { print "a member named " $0 " (absolute, or with ..)"; bad = 1; exit }
			if (root == "") next
			n = split(name, parts, "/")
			pre = ""
			for (i = 1; i < n; i++) {
				pre = pre (i > 1 ? "/" : "") parts[i]
				if (pre in seen) continue
				seen[pre] = 1
				p = q(root "/" pre)
				if (system("[ -L " p " ] || { [ -e " p " ] && [ ! -d " p " ]; }") == 0) {
					print "a member below " pre ", which is a symlink or not a directory in " root; bad = 1; exit
				}
			}
		}
		END { exit bad }' "$W/members" >"$W/members.bad" && return 0
	log "error: $1: $(cat "$W/members.bad"): refusing the set"
	return 1
}

# members turns restore PATHs into tar member names, with their deltas and
# metadata entries in a differential's reserved directory.
members() {
	for m_p in "$@"; do
		m_p=${m_p#/}
		m_p=${m_p%/}
		[ -n "$m_p" ] || m_p=.
		printf '%s\n%s\n%s\n%s\n' "$m_p" ".backtory/delta/$m_p" ".backtory/meta/$m_p" ".backtory/moved/$m_p"
	done
}

# stock_restore SOURCE ID DIR [PATH...]
stock_restore() {
	s_src=$1
	s_id=$2
	s_dir=$3
	shift 3
	TAR=$(tool tar) || TAR=tar
	GNU_TAR=0
	"$TAR" --version 2>/dev/null | grep -q 'GNU tar' && GNU_TAR=1
	[ "$GNU_TAR" = 1 ] || log "GNU tar is missing: busybox tar restores without ACLs and xattrs"
	[ "$BT_SEALED" = 1 ] && gpg_home
	# Over an existing tree (--force), no member may lie below a symlink.
	MEMBER_ROOT=""
	[ -z "$(ls -A "$s_dir" 2>/dev/null)" ] || MEMBER_ROOT=$s_dir
	s_m=$(stock_manifest "$s_src" "$s_id") || exit 1
	s_kind=$(manifest_field "$s_m" "" kind)
	if [ "$s_kind" = diff ]; then
		s_base=$(manifest_field "$s_m" base id)
		s_bhash=$(manifest_field "$s_m" base manifest_sha256)
		s_bm=$(stock_manifest "$s_src" "$s_base") || exit 1
		s_stored=$W/sets/$s_base/manifest.json
		[ "$BT_SEALED" = 1 ] && s_stored=$s_stored.pgp
		[ "$(sha256sum "$s_stored" | cut -d' ' -f1)" = "$s_bhash" ] ||
			die "differential $s_id was taken against another $s_base than the one on the remote: the full was replaced"
		log "restoring full $s_base into $s_dir (stock tools)"
		stock_volumes "$s_src" "$s_base" "$s_bm" "$s_dir" "$@"
		log "applying differential $s_id (stock tools)"
		stock_diff "$s_src" "$s_id" "$s_m" "$s_dir" "$@"
	else
		log "restoring full $s_id into $s_dir (stock tools)"
		stock_volumes "$s_src" "$s_id" "$s_m" "$s_dir" "$@"
	fi
}

# stock_verify SOURCE ID checks with stock tools what a restore of set ID
# reads: its manifest's seal; for a differential, its full's manifest and
# the hash that names it; the SHA-256 of every volume of both. Volumes are
# fetched, checked and dropped (--keep keeps them for the restore): the
# check costs a second download, never the sets' size in $W.
stock_verify() {
	[ "$BT_SEALED" = 1 ] && gpg_home
	sy_m=$(stock_manifest "$1" "$2") || return 1
	manifest_volumes "$sy_m" | sed "s/\$/ $2/" >"$W/verify-vols"
	if [ "$(manifest_field "$sy_m" "" kind)" = diff ]; then
		sy_base=$(manifest_field "$sy_m" base id)
		sy_bm=$(stock_manifest "$1" "$sy_base") || return 1
		sy_stored=$W/sets/$sy_base/manifest.json
		[ "$BT_SEALED" = 1 ] && sy_stored=$sy_stored.pgp
		[ "$(sha256sum "$sy_stored" | cut -d' ' -f1)" = "$(manifest_field "$sy_m" base manifest_sha256)" ] || {
			log "differential $2 was taken against another $sy_base than the one on the remote: the full was replaced"
			return 1
		}
		manifest_volumes "$sy_bm" | sed "s/\$/ $sy_base/" >>"$W/verify-vols"
	fi
	while read -r sy_sha sy_name sy_id; do
		sy_f=$(stock_volume "$1" "$sy_id" "$sy_sha" "$sy_name") || return 1
		[ "$KEEP" = 1 ] || rm -f "$sy_f"
	done <"$W/verify-vols"
}

# stock_volumes SOURCE ID MANIFEST DIR [PATH...] extracts every volume.
stock_volumes() {
	sv_src=$1
	sv_id=$2
	sv_m=$3
	sv_dir=$4
	shift 4
	manifest_volumes "$sv_m" >"$W/vols-$sv_id"
	rm -f "$W/pipe.fail"
	if [ "$GNU_TAR" = 1 ]; then
		# One tar reads every volume: directory times are set once, after
		# everything below them was written. Each volume's hash is checked
		# before it is decrypted.
		while read -r sv_sha sv_name; do
			sv_f=$(stock_volume "$sv_src" "$sv_id" "$sv_sha" "$sv_name") || {
				echo "fetch ($sv_name)" >>"$W/pipe.fail"
				break
			}
			members_ok "$sv_f" || {
				echo "member names ($sv_name)" >>"$W/pipe.fail"
				break
			}
			plain_stream "$sv_f"
			[ "$KEEP" = 1 ] || rm -f "$sv_f"
		done <"$W/vols-$sv_id" | {
			IFS='
'
			set -f
			# shellcheck disable=SC2046 # one member per line, no globbing
			untar_stream "$sv_dir" $(members "$@")
		}
		pipe_check "the volumes of $sv_id"
		return 0
	fi
	while read -r sv_sha sv_name; do
		sv_f=$(stock_volume "$sv_src" "$sv_id" "$sv_sha" "$sv_name") || exit 1
		members_ok "$sv_f" || die "refusing $sv_name of $sv_id"
		# shellcheck disable=SC2046 # one member per line, no globbing
		(IFS='
' && set -f && untar_volume "$sv_f" "$sv_dir" $(members "$@")) || exit 1
		[ "$KEEP" = 1 ] || rm -f "$sv_f"
	done <"$W/vols-$sv_id"
}

# stock_diff SOURCE ID MANIFEST DIR [PATH...] brings a restored full forward:
# deletions first, then the volumes, then rdiff deltas and metadata.
stock_diff() {
	d_src=$1
	d_id=$2
	d_m=$3
	d_dir=$4
	shift 4
	manifest_volumes "$d_m" >"$W/vols-$d_id"
	d_last=$(tail -n1 "$W/vols-$d_id")
	d_f=$(stock_volume "$d_src" "$d_id" "${d_last%% *}" "${d_last#* }") || exit 1
	mkdir -p "$W/deleted-$d_id"
	(untar_volume "$d_f" "$W/deleted-$d_id" .backtory/deleted .backtory/moves) || exit 1
	d_moves=$W/deleted-$d_id/.backtory/moves
	if [ -s "$d_moves" ]; then
		# Renamed and moved files (format 2): their old paths are kept
		# under a second name (a hardlink) until they are patched.
		# shellcheck disable=SC2016 # expanded by sh -c
		xargs -0 -n 2 sh -c "$CONFINED"'
			root=$1 new=$2 old=$3
			confined "$root" "$new" && confined "$root" ".backtory/base/$new" || {
				echo "recover.sh: error: $new: refusing to create it (not a plain path below $root)" >&2
				exit 255
			}
			[ -e "$root/$old" ] || [ -L "$root/$old" ] || exit 0 # not restored: see below
			plainfile "$root" "$old" || { echo "recover.sh: error: $old: refusing to read it (not a plain file below $root)" >&2; exit 255; }
			b=$root/.backtory/base/$new
			mkdir -p "$(dirname "$b")" && ln "$root/$old" "$b" || exit 255' sh "$d_dir" <"$d_moves" ||
			die "the moved files of $d_id are refused"
	fi
	if [ -s "$W/deleted-$d_id/.backtory/deleted" ]; then
		# Every path is checked before any is removed.
		# shellcheck disable=SC2016 # expanded by sh -c
		xargs -0 sh -c "$CONFINED"'
			t=$1
			shift
			for p; do
				confined "$t" "$p" || {
					printf "recover.sh: error: %s: refusing to delete it (not a plain path below %s)\n" "$p" "$t" >&2
					exit 255
				}
			done' sh "$d_dir" <"$W/deleted-$d_id/.backtory/deleted" || die "the deletions of $d_id are refused"
		(cd "$d_dir" && xargs -0 rm -rf -- <"$W/deleted-$d_id/.backtory/deleted") || die "cannot apply the deletions of $d_id"
	fi
	MEMBER_ROOT=$d_dir
	stock_volumes "$d_src" "$d_id" "$d_m" "$d_dir" "$@"
	if [ -s "$d_moves" ]; then
		RDIFF=$(need rdiff) || exit 1
		export RDIFF
		# shellcheck disable=SC2016 # expanded by sh -c
		xargs -0 -n 2 sh -c "$CONFINED"'
			root=$1 tmp=$2 new=$3 old=$4
			d=$root/.backtory/moved/$new
			[ -f "$d" ] && [ ! -L "$d" ] || exit 0 # not selected
			b=$root/.backtory/base/$new
			[ -f "$b" ] || { echo "recover.sh: error: $new was moved from $old: restore $old too" >&2; exit 255; }
			{ confined "$root" "$new" && [ ! -e "$root/$new" ] && [ ! -L "$root/$new" ]; } || {
				echo "recover.sh: error: $new: refusing to create it (not a new plain path below $root)" >&2
				exit 255
			}
			"$RDIFF" patch "$b" "$d" "$tmp" || { echo "rdiff patch $new failed" >&2; exit 255; }
			# Its directory keeps the time the differential gave it.
			dir=$(dirname "$root/$new")
			touch -r "$dir" "$tmp.stamp" && cat "$tmp" >"$root/$new" && rm -f "$tmp" || exit 255
			chown "$(stat -c %u:%g "$d")" "$root/$new" 2>/dev/null
			chmod "$(stat -c %a "$d")" "$root/$new" && touch -r "$d" "$root/$new" && touch -r "$tmp.stamp" "$dir" || exit 255' \
			sh "$d_dir" "$W/patch.tmp" <"$d_moves" || die "applying the moved files of $d_id failed"
	fi
	if [ -d "$d_dir/.backtory/delta" ]; then
		RDIFF=$(need rdiff) || exit 1
		export RDIFF
		# shellcheck disable=SC2016 # expanded by sh -c
		find "$d_dir/.backtory/delta" -type f -exec sh -c "$CONFINED"'
			root=$1 tmp=$2; shift 2
			for d in "$@"; do
				r=${d#"$root/.backtory/delta/"}
				plainfile "$root" "$r" || { echo "recover.sh: error: $r: refusing to patch it (not a plain file below $root)" >&2; exit 1; }
				p=$root/$r
				"$RDIFF" patch "$p" "$d" "$tmp" || { echo "rdiff patch $p failed" >&2; exit 1; }
				# Written into the file, not renamed over it: hardlinks keep
				# sharing it, and its directory keeps its time.
				cat "$tmp" >"$p" && rm -f "$tmp" || exit 1
				chown "$(stat -c %u:%g "$d")" "$p" 2>/dev/null
				chmod "$(stat -c %a "$d")" "$p" && touch -r "$d" "$p" || exit 1
			done' sh "$d_dir" "$W/patch.tmp" {} + || die "applying the deltas of $d_id failed"
	fi
	if [ -d "$d_dir/.backtory/meta" ]; then
		# shellcheck disable=SC2016 # expanded by sh -c
		find "$d_dir/.backtory/meta" ! -type d -exec sh -c "$CONFINED"'
			root=$1; shift
			for d in "$@"; do
				r=${d#"$root/.backtory/meta/"}
				plainfile "$root" "$r" || { echo "recover.sh: error: $r: refusing to change it (not a plain file below $root)" >&2; exit 1; }
				p=$root/$r
				chown "$(stat -c %u:%g "$d")" "$p" 2>/dev/null
				chmod "$(stat -c %a "$d")" "$p" && touch -r "$d" "$p" || exit 1
			done' sh "$d_dir" {} + || die "applying the metadata changes of $d_id failed"
	fi
	rm -rf "$d_dir/.backtory"
}

# ---- layout and disk mapping ----

# map_file IN OUT rewrites device names by $MAPS ("old=new ..." basenames).
map_file() {
	awk -v maps="$MAPS" '
		BEGIN { n = split(maps, m, " "); for (i = 1; i <= n; i++) { split(m[i], kv, "="); old[i] = kv[1]; nw[i] = kv[2] } }
		function mapname(x,   i, o, part) {
			for (i = 1; i <= n; i++) {
				o = old[i]
				if (x == o) return nw[i]
				if (substr(x, 1, length(o)) == o) {
					part = substr(x, length(o) + 1)
					if (part ~ /^p?[0-9]+$/) { sub(/^p/, "", part); return (nw[i] ~ /[0-9]$/ ? nw[i] "p" : nw[i]) part }
				}
			}
			return x
		}
		{
			s = $0; out = ""
			while ((i = index(s, "/dev/")) > 0) {
				out = out substr(s, 1, i + 4); s = substr(s, i + 5)
				if (match(s, /^[A-Za-z0-9_.-]+/)) { out = out mapname(substr(s, 1, RLENGTH)); s = substr(s, RLENGTH + 1) }
			}
			print out s
		}' "$1" >"$2"
}

# skip_disks CONF drops the records that name a disk of $SKIPS or one of
# its partitions (a backup disk, a USB stick that was plugged in). A dead
# RAID member only leaves its array (created degraded, with "missing") and
# the list of disks the boot loader goes on.
skip_disks() {
	awk -v skips="$SKIPS" '
		BEGIN { n = split(skips, sk, " ") }
		function skipped(x,   i, rest) {
			for (i = 1; i <= n; i++) {
				if (x == "/dev/" sk[i]) return 1
				if (index(x, "/dev/" sk[i]) == 1) {
					rest = substr(x, length(sk[i]) + 6)
					if (rest ~ /^p?[0-9]+$/) return 1
				}
			}
			return 0
		}
		# keep(F) drops the skipped devices of the list in field F; it
		# returns how many are left.
		function keep(f,   m, j, it, out, k) {
			m = split($f, it, ","); out = ""; k = 0
			for (j = 1; j <= m; j++) if (!skipped(it[j])) { out = out (k ? "," : "") it[j]; k++ }
			$f = k ? out : "-"
			return k
		}
		# An array with a member gone is created degraded; the boot loader
		# goes on the disks that are left.
		$1 == "md" { if (keep(9)) print; next }
		$1 == "boot" { keep(5); print; next }
		{
			drop = 0
			for (f = 2; f <= NF; f++) { m = split($f, it, ","); for (j = 1; j <= m; j++) if (skipped(it[j])) drop = 1 }
			if (!drop) print
		}' "$1"
}

# layout_prepare writes the embedded layout, mapped, into $L.
layout_prepare() {
	rm -rf "$W/layout.orig" "$L"
	mkdir -p "$W/layout.orig" "$L"
	bt_layout "$W/layout.orig"
	# A disk that another one is mapped onto is replaced: its own records go.
	for l_m in $MAPS; do
		l_new=${l_m#*=}
		case " $MAPS " in *" $l_new="*) ;; *) SKIPS="$SKIPS${SKIPS:+ }$l_new" ;; esac
	done
	if [ -n "$SKIPS" ]; then
		skip_disks "$W/layout.orig/layout.conf" >"$W/layout.skip" && mv "$W/layout.skip" "$W/layout.orig/layout.conf"
	fi
	for l_f in "$W/layout.orig"/*; do
		map_file "$l_f" "$L/${l_f##*/}"
	done
	# A dump for another disk must not name the old disk or its size.
	for l_f in "$L"/sfdisk-*.dump; do
		[ -f "$l_f" ] || continue
		grep -v '^device:' "$l_f" | grep -v '^last-lba:' >"$l_f.new" && mv "$l_f.new" "$l_f"
	done
}

# records KEYWORD prints the layout's records of one kind.
records() { grep "^$1 " "$L/layout.conf" || true; }

# partdev DISK N prints the device of partition N.
partdev() {
	case $1 in
	*[0-9]) printf '%sp%s\n' "$1" "$2" ;;
	*) printf '%s%s\n' "$1" "$2" ;;
	esac
}

# ---- bare-metal steps (each prints its commands in plan mode) ----

LVM_CONFIG='activation { udev_sync = 0 udev_rules = 0 } devices { use_devicesfile = 0 }'

lvmc() { run "$LVM" "$@" --config "$LVM_CONFIG"; }

step_wipe() {
	# Whatever the rescue system assembled from old disks must let go.
	[ -n "$(records pv)" ] && try "$LVM" vgchange -an --config "$LVM_CONFIG"
	[ -n "$(records md)" ] && try "$MDADM" --stop --scan
	[ -n "$(records zpool)" ] && try "$ZPOOL" export -a
	records disk | while read -r _ w_disk _ _ w_table _; do
		[ "$w_table" = - ] && continue
		run "$WIPEFS" -a -f "$w_disk"
	done
}

step_partitions() {
	records disk | while read -r _ p_disk _ _ _ p_dump; do
		[ "$p_dump" = - ] && continue
		if [ "$DRY" = 1 ]; then
			printf '    %s < %s:\n' "$(quote "$SFDISK" -q --no-reread --wipe always --wipe-partitions always "$p_disk")" "$p_dump"
			sed 's/^/        /' "$L/$p_dump"
		else
			log "+ sfdisk $p_disk < $p_dump"
			"$SFDISK" -q --no-reread --wipe always --wipe-partitions always "$p_disk" <"$L/$p_dump" ||
				die "sfdisk $p_disk failed: is the disk big enough? (compare the table above with: blockdev --getsize64 $p_disk)"
		fi
		run "$BLOCKDEV" --rereadpt "$p_disk"
		[ "$DRY" = 1 ] && continue
		awk -F' : ' '/^\/dev\// { print $1 }' "$L/$p_dump" >"$W/parts"
		while read -r p_part; do
			p_n=0
			while [ ! -b "$p_part" ] && [ $p_n -lt 20 ]; do
				sleep 0.5 2>/dev/null || sleep 1
				p_n=$((p_n + 1))
			done
			[ -b "$p_part" ] || die "partition $p_part did not appear"
			"$WIPEFS" -a -q -f "$p_part"
		done <"$W/parts"
	done
}

step_md() {
	records md | while read -r _ m_dev m_level m_meta m_uuid m_name m_chunk m_total m_devs; do
		set -- --create "$m_dev" --run --assume-clean --level="$m_level" --raid-devices="$m_total"
		[ "$m_meta" != - ] && set -- "$@" --metadata="$m_meta"
		[ "$m_uuid" != - ] && set -- "$@" --uuid="$m_uuid"
		[ "$m_name" != - ] && set -- "$@" --name="$(unesc "$m_name")"
		[ "$m_chunk" != - ] && set -- "$@" --chunk="$m_chunk"
		m_n=0
		for m_d in $(printf '%s' "$m_devs" | tr ',' ' '); do
			set -- "$@" "$m_d"
			m_n=$((m_n + 1))
		done
		if [ "$m_n" -lt "$m_total" ]; then
			if [ "$DRY" = 1 ]; then
				printf '    (%s is created DEGRADED: %s of %s members; add the others later with mdadm --add)\n' "$m_dev" "$m_n" "$m_total"
			else
				log "$m_dev is created degraded: $m_n of $m_total members"
			fi
		fi
		while [ "$m_n" -lt "$m_total" ]; do
			set -- "$@" missing
			m_n=$((m_n + 1))
		done
		run "$MDADM" "$@"
	done
}

step_luks() {
	records luks | while read -r _ k_dev k_name k_type k_uuid k_cipher k_bits _; do
		[ "$k_name" = - ] && k_name=luks-$k_uuid
		set -- luksFormat --batch-mode --type "$k_type"
		[ "$k_uuid" != - ] && set -- "$@" --uuid "$k_uuid"
		[ "$k_cipher" != - ] && set -- "$@" --cipher "$k_cipher"
		[ "$k_bits" != 0 ] && set -- "$@" --key-size "$k_bits"
		if [ -n "$LUKS_KEY" ]; then
			run "$CRYPTSETUP" "$@" --key-file "$LUKS_KEY" "$k_dev"
			run "$CRYPTSETUP" open --key-file "$LUKS_KEY" "$k_dev" "$k_name"
		else
			[ "$DRY" = 1 ] || log "type the new passphrase of $k_dev (it was $k_name)"
			run_tty "$CRYPTSETUP" "$@" "$k_dev"
			run_tty "$CRYPTSETUP" open "$k_dev" "$k_name"
		fi
	done
}

step_lvm() {
	records pv | while read -r _ v_dev v_vg v_uuid _; do
		v_cfg=$(records vg | awk -v vg="$v_vg" '$2 == vg { print $5 }')
		lvmc pvcreate -ff -y --uuid "$v_uuid" --restorefile "$L/$v_cfg" "$v_dev"
	done
	records vg | while read -r _ v_vg _ _ v_cfg; do
		if records lv | awk -v vg="$v_vg" '$2 == vg && $6 ~ /thin/ { f = 1 } END { exit !f }'; then
			lvmc vgcfgrestore --force -f "$L/$v_cfg" "$v_vg"
		else
			lvmc vgcfgrestore -f "$L/$v_cfg" "$v_vg"
		fi
		lvmc vgchange -ay "$v_vg"
	done
	# Snapshots (backtory's own, taken for the backup) are not restored.
	records lv | while read -r _ v_vg v_lv _ _ _ v_origin _; do
		[ "$v_origin" != - ] && lvmc lvremove -f "$v_vg/$v_lv"
	done
	[ -n "$(records pv)" ] && lvmc vgmknodes
	return 0
}

step_zfs() {
	records zpool | while read -r _ z_pool z_vdevs; do
		set -- create -f -R "$TARGET"
		for z_prop in ashift autotrim compatibility; do
			z_v=$(records zpoolprop | awk -v p="$z_pool" -v n="$z_prop" '$2 == p && $3 == n { print $4 }')
			case $z_v in "" | - | off | 0) continue ;; esac # 0: ashift chosen by ZFS
			set -- "$@" -o "$z_prop=$(unesc "$z_v")"
		done
		set -- "$@" "$z_pool"
		for z_d in $(printf '%s' "$z_vdevs" | tr ',' ' '); do set -- "$@" "$z_d"; done
		run "$ZPOOL" "$@"
	done
	records zfs | while read -r _ z_name z_type z_size; do
		z_name=$(unesc "$z_name")
		records zfsprop | awk -v n="$(printf '%s' "$z_name" | sed 's/ /%20/g')" '$2 == n && ($5 == "local" || $5 == "received") { print $3, $4 }' >"$W/zprops"
		case $z_name in
		*/*)
			set -- create
			[ "$z_type" = volume ] && set -- "$@" -V "$z_size"
			while read -r z_k z_v; do set -- "$@" -o "$z_k=$(unesc "$z_v")"; done <"$W/zprops"
			run "$ZFS" "$@" "$z_name"
			;;
		*)
			while read -r z_k z_v; do run "$ZFS" set "$z_k=$(unesc "$z_v")" "$z_name"; done <"$W/zprops"
			;;
		esac
	done
	# Mounted again after the filesystems below them (step mount).
	run "$ZFS" unmount -a
}

step_mkfs() {
	records fs | while read -r _ f_dev _ f_type f_uuid f_label _ f_bs f_is; do
		f_label=$(unesc "$f_label")
		case $f_type in
		ext2 | ext3 | ext4)
			set -- "$(need mke2fs e2fsprogs)" -F -q -t "$f_type"
			[ "$f_uuid" != - ] && set -- "$@" -U "$f_uuid"
			[ -n "$f_label" ] && set -- "$@" -L "$f_label"
			[ "$f_bs" != 0 ] && set -- "$@" -b "$f_bs"
			[ "$f_is" != 0 ] && set -- "$@" -I "$f_is"
			;;
		xfs)
			set -- "$(need mkfs.xfs xfsprogs)" -f
			[ "$f_uuid" != - ] && set -- "$@" -m uuid="$f_uuid"
			[ -n "$f_label" ] && set -- "$@" -L "$f_label"
			;;
		vfat)
			set -- "$(need mkfs.fat dosfstools)"
			[ "$f_uuid" != - ] && set -- "$@" -i "$(printf '%s' "$f_uuid" | tr -d -)"
			[ -n "$f_label" ] && set -- "$@" -n "$f_label"
			;;
		btrfs)
			set -- "$(need mkfs.btrfs btrfs-progs)" -f
			[ "$f_uuid" != - ] && set -- "$@" -U "$f_uuid"
			[ -n "$f_label" ] && set -- "$@" -L "$f_label"
			;;
		*)
			log "filesystem type $f_type on $f_dev: not recreated (make it by hand)"
			continue
			;;
		esac
		run "$@" "$f_dev"
	done
	records swap | while read -r _ s_dev s_uuid s_label; do
		set -- "$(need mkswap util-linux)"
		[ "$s_uuid" != - ] && set -- "$@" -U "$s_uuid"
		[ "$s_label" != - ] && set -- "$@" -L "$(unesc "$s_label")"
		run "$@" "$s_dev"
	done
}

step_mount() {
	run mkdir -p "$TARGET"
	records fs | while read -r _ o_dev o_mp o_type _; do
		[ "$o_mp" = - ] && continue
		o_mp=$(unesc "$o_mp")
		run mkdir -p "$TARGET$o_mp"
		run "$MOUNT" -t "$o_type" "$o_dev" "$TARGET$o_mp"
	done
	[ -n "$(records zpool)" ] && run "$ZFS" mount -a
	# ZFS datasets with canmount=noauto (a root dataset, say) are mounted by hand.
	records zfsprop | awk '$3 == "canmount" && $4 == "noauto" { print $2 }' | while read -r o_ds; do
		run "$ZFS" mount "$(unesc "$o_ds")"
	done
	return 0
}

step_restore() {
	bt_sources | while read -r r_name r_path; do
		r_path=$(unesc "$r_path")
		restore_source "$r_name" "$TARGET${r_path%/}" 1 || exit 1
	done
}

step_fixup() {
	if [ "$DRY" = 1 ]; then
		printf '    check every UUID=, LABEL= and PARTUUID= in %s/etc/fstab and crypttab resolves\n' "$TARGET"
		printf '    move %s/etc/lvm/devices/system.devices aside; point ZFS pools at %s/etc/zfs/zpool.cache\n' "$TARGET" "$TARGET"
		return 0
	fi
	for x_f in "$TARGET/etc/fstab" "$TARGET/etc/crypttab"; do
		[ -f "$x_f" ] || continue
		grep -o '\(UUID\|LABEL\|PARTUUID\)=[^ 	]*' "$x_f" | sort -u | while read -r x_ref; do
			x_ref=$(printf '%s' "$x_ref" | tr -d '"')
			if ! "$BLKID" -t "$x_ref" >/dev/null 2>&1; then
				log "warning: $x_f names $x_ref, which no device has: edit it before rebooting"
			fi
		done
	done
	if [ -f "$TARGET/etc/lvm/devices/system.devices" ]; then
		mv "$TARGET/etc/lvm/devices/system.devices" "$TARGET/etc/lvm/devices/system.devices.backtory-old"
	fi
	if [ -n "$(records zpool)" ] && [ -d "$TARGET/etc/zfs" ]; then
		records zpool | while read -r _ x_pool _; do
			"$ZPOOL" set cachefile="$TARGET/etc/zfs/zpool.cache" "$x_pool" || log "warning: cannot write zpool.cache for $x_pool"
		done
	fi
	return 0
}

step_bootloader() {
	if [ "$NO_BOOT" = 1 ]; then
		log "not reinstalling the boot loader (--no-bootloader)"
		return 0
	fi
	b_line=$(records boot)
	b_mode=$(printf '%s' "$b_line" | cut -d' ' -f2)
	b_loader=$(printf '%s' "$b_line" | cut -d' ' -f3)
	b_esp=$(unesc "$(printf '%s' "$b_line" | cut -d' ' -f4)")
	b_disks=$(printf '%s' "$b_line" | cut -d' ' -f5 | tr ',' ' ')
	if [ "$b_loader" != grub ]; then
		if [ "$DRY" = 1 ]; then
			printf '    (boot loader %s: reinstall it by hand, chroot %s)\n' "$b_loader" "$TARGET"
		else
			log "boot loader $b_loader: reinstall it by hand (chroot $TARGET)"
		fi
		return 0
	fi
	if [ "$DRY" != 1 ] && [ ! -e "$TARGET/usr/sbin/grub-install" ]; then
		log "warning: the restored system has no grub-install: reinstall the boot loader by hand"
		return 0
	fi
	for b_fs in dev proc sys run; do
		run mkdir -p "$TARGET/$b_fs"
		run "$MOUNT" --bind "/$b_fs" "$TARGET/$b_fs"
	done
	if [ "$b_mode" = uefi ]; then
		[ -d /sys/firmware/efi ] || [ "$DRY" = 1 ] || die "the machine booted with UEFI, this rescue system with BIOS: boot the rescue system in UEFI mode"
		run "$MOUNT" -t efivarfs efivarfs "$TARGET/sys/firmware/efi/efivars"
		run chroot "$TARGET" grub-install --target=x86_64-efi --efi-directory="${b_esp:-/boot/efi}" --recheck
	else
		for b_d in $b_disks; do
			[ "$b_d" = - ] && continue
			run chroot "$TARGET" grub-install --target=i386-pc --recheck "$b_d"
		done
	fi
	if [ "$DRY" = 1 ] || [ -e "$TARGET/usr/sbin/update-initramfs" ]; then
		run chroot "$TARGET" update-initramfs -u -k all
	fi
	run chroot "$TARGET" grub-mkconfig -o /boot/grub/grub.cfg
}

step_finish() {
	if [ "$DRY" = 1 ]; then
		printf '    unmount everything under %s, export ZFS pools, deactivate LVM\n' "$TARGET"
		return 0
	fi
	awk -v t="$TARGET" '$2 == t || index($2, t "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r e_mp; do
		"$UMOUNT" "$e_mp" 2>/dev/null || "$UMOUNT" -l "$e_mp"
	done
	[ -n "$(records zpool)" ] && "$ZPOOL" export -a
	[ -n "$(records pv)" ] && "$LVM" vgchange -an --config "$LVM_CONFIG" >/dev/null
	sync
	log "done: the machine is restored; remove the rescue medium and reboot"
}

STEPS="verify wipe partitions md luks lvm zfs mkfs mount restore fixup bootloader finish"

# step_verify checks, before any disk is touched, that the sets the restore
# needs are there and intact: with the static backtory, the size, hash and
# seal of every object of the set and of its full (backtory verify); with
# stock tools, the seals of the manifests and the hash of every volume.
step_verify() {
	bt_sources | while read -r v_name _; do
		v_pick=$(pick_set "$v_name")
		[ -n "$v_pick" ] || die "no set of source $v_name at or before ${AT:-now}: nothing was written to the disks"
		v_id=${v_pick%% *}
		if [ "$DRY" = 1 ]; then
			printf '    verify set %s of source %s (and its full) before touching a disk\n' "$v_id" "$v_name"
			continue
		fi
		check_keys
		if [ "$STOCK" != 1 ] && v_bt=$(get_backtory "$v_name"); then
			"$v_bt" verify --config "$(bt_config "$v_name")" --set "$v_id" >/dev/null ||
				die "set $v_id of source $v_name does not verify: nothing was written to the disks"
		else
			stock_verify "$v_name" "$v_id" ||
				die "set $v_id of source $v_name does not verify: nothing was written to the disks"
		fi
		log "set $v_id of source $v_name verified"
	done
}

step_needed() {
	case $1 in
	wipe | partitions) [ -n "$(records disk | awk '$6 != "-"')" ] ;;
	md) [ -n "$(records md)" ] ;;
	luks) [ -n "$(records luks)" ] ;;
	lvm) [ -n "$(records pv)" ] ;;
	zfs) [ -n "$(records zpool)" ] ;;
	*) true ;;
	esac
}

# find_tools sets the tool variables bare-metal needs (plan: the names).
find_tools() {
	for t_spec in SFDISK:sfdisk:fdisk WIPEFS:wipefs:util-linux BLOCKDEV:blockdev:util-linux BLKID:blkid:util-linux \
		MOUNT:mount:mount UMOUNT:umount:mount LVM:lvm:lvm2 MDADM:mdadm:mdadm CRYPTSETUP:cryptsetup:cryptsetup \
		ZPOOL:zpool:zfsutils-linux ZFS:zfs:zfsutils-linux; do
		t_var=${t_spec%%:*}
		t_rest=${t_spec#*:}
		t_name=${t_rest%%:*}
		t_path=$(tool "$t_name") || t_path=""
		if [ -z "$t_path" ]; then
			t_path=$t_name
			t_need=0
			case $t_name in
			sfdisk | wipefs) [ -n "$(records disk | awk '$6 != "-"')" ] && t_need=1 ;;
			blockdev | mount | umount) command -v "$t_name" >/dev/null 2>&1 || t_need=1 ;;
			lvm) [ -n "$(records pv)" ] && t_need=1 ;;
			mdadm) [ -n "$(records md)" ] && t_need=1 ;;
			cryptsetup) [ -n "$(records luks)" ] && t_need=1 ;;
			zpool | zfs) [ -n "$(records zpool)" ] && t_need=1 ;;
			esac
			if [ "$t_need" = 1 ]; then
				if [ "$DRY" = 1 ]; then
					printf '  missing here: %s (Debian package %s)\n' "$t_name" "${t_rest#*:}"
				else
					die "$t_name is missing in this rescue system: install it (Debian package: ${t_rest#*:}) and run again"
				fi
			fi
		fi
		eval "$t_var=\$t_path"
	done
}

# ---- commands ----

# hsize BYTES prints a size for people (1.5 GiB).
hsize() {
	awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB PiB", u, " "); i = 1
		while (b >= 1024 && i < 6) { b /= 1024; i++ }
		printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'
}

# now DEV prints the size of DEV on this machine, if it is there.
now() {
	if [ -b "$1" ] && n_b=$(blockdev --getsize64 "$1" 2>/dev/null); then
		printf 'here now %s' "$(hsize "$n_b")"
	else
		printf 'not here yet'
	fi
}

# plan_devices lists what bare-metal creates, with the sizes recorded at
# backup time and the sizes of the devices this machine has now.
plan_devices() {
	printf '\nwhat bare-metal creates (recorded then; this machine now):\n'
	records md | while read -r _ p_dev p_level _ p_uuid _ _ p_total p_devs; do
		p_n=$(printf '%s\n' "$p_devs" | tr ',' '\n' | grep -c .)
		p_deg=""
		[ "$p_n" -lt "$p_total" ] && p_deg=" DEGRADED"
		printf '  md array %s: %s, UUID %s, %s of %s members%s (%s)\n' "$p_dev" "$p_level" "$p_uuid" "$p_n" "$p_total" "$p_deg" "$p_devs"
		for p_m in $(printf '%s' "$p_devs" | tr ',' ' '); do printf '    member %s: %s\n' "$p_m" "$(now "$p_m")"; done
	done
	records luks | while read -r _ p_dev p_name p_type p_uuid _; do
		printf '  LUKS container %s (%s, UUID %s) on %s: %s\n' "$p_name" "$p_type" "$p_uuid" "$p_dev" "$(now "$p_dev")"
	done
	records pv | while read -r _ p_dev p_vg _ p_size; do
		printf '  LVM PV of VG %s on %s: %s then, %s\n' "$p_vg" "$p_dev" "$(hsize "$p_size")" "$(now "$p_dev")"
	done
	records lv | while read -r _ p_vg p_lv _ p_size p_seg _; do
		printf '  LVM LV %s/%s (%s): %s\n' "$p_vg" "$p_lv" "$p_seg" "$(hsize "$p_size")"
	done
	records zpool | while read -r _ p_pool p_vdevs; do
		printf '  ZFS pool %s: %s\n' "$p_pool" "$(printf '%s' "$p_vdevs" | tr ',' ' ')"
		for p_v in $(printf '%s' "$p_vdevs" | tr ',' ' '); do
			case $p_v in /dev/*) printf '    vdev %s: %s\n' "$p_v" "$(now "$p_v")" ;; esac
		done
	done
	records zfs | while read -r _ p_ds p_type p_size; do
		p_size=$([ "$p_type" = volume ] && printf ', %s' "$(hsize "$p_size")")
		printf '  ZFS %s %s%s\n' "$p_type" "$(unesc "$p_ds")" "$p_size"
	done
	records fs | while read -r _ p_dev p_mp p_type _ p_label _; do
		p_mp=$(unesc "$p_mp")
		[ "$p_mp" = - ] && p_mp="not mounted"
		printf '  %s filesystem on %s, label %s, %s: %s\n' "$p_type" "$p_dev" "$(unesc "$p_label")" "$p_mp" "$(now "$p_dev")"
	done
	records swap | while read -r _ p_dev _; do
		printf '  swap on %s: %s\n' "$p_dev" "$(now "$p_dev")"
	done
}

cmd_plan() {
	layout_prepare
	printf 'recover.sh plan for host %s (layout captured %s, set %s; script by %s)\n' "$BT_HOST" \
		"$(records captured | cut -d' ' -f2)" "$BT_LAYOUT_SET" "$BT_TOOL"
	printf '\nsets at %s:\n' "${AT:-the newest}"
	bt_sources | while read -r p_name p_path; do
		p_pick=$(pick_set "$p_name")
		printf '  source %s (%s): %s\n' "$p_name" "$(unesc "$p_path")" "${p_pick:-NO SET at this time}"
	done
	if [ -n "$MAPS" ]; then
		printf '\ndisk mapping: %s\n' "$MAPS"
	fi
	printf '\ndisks that bare-metal overwrites:\n'
	records disk | while read -r _ p_disk p_size _ p_table _; do
		[ "$p_table" = - ] && p_table="none (used whole, or unused)"
		printf '  %s: %s bytes recorded, partition table %s' "$p_disk" "$p_size" "$p_table"
		if [ -b "$p_disk" ] && p_now=$(blockdev --getsize64 "$p_disk" 2>/dev/null); then
			printf ', here %s bytes' "$p_now"
		else
			printf ', not present here'
		fi
		printf '\n'
	done
	plan_devices
	printf '\ntools:\n'
	find_tools
	printf '  (the restore itself needs the static backtory from the remote, or gpg, zstd, tar and rdiff)\n'
	printf '\nsteps:\n'
	for p_step in $STEPS; do
		step_needed "$p_step" || continue
		printf '  %s:\n' "$p_step"
		"step_$p_step"
	done
	if [ -z "$(records disk)" ] && [ -z "$(records fs)" ]; then
		printf '\nthis script holds no layout (set %s was written without one): bare-metal cannot run, files can\n' "$BT_LAYOUT_SET"
	fi
	if [ -n "$(records missing)" ]; then
		printf '\nnot captured (tool missing at backup time): %s\n' "$(records missing | cut -d' ' -f2 | tr '\n' ' ')"
	fi
}

cmd_files() {
	[ -n "$TO" ] || die "files needs --to DIR"
	src=${SOURCE:-$BT_DEFAULT_SOURCE}
	bt_sources | awk -v s="$src" '$1 == s { f = 1 } END { exit !f }' || die "no source $src (have: $(bt_sources | cut -d' ' -f1 | tr '\n' ' '))"
	for f_p in "$@"; do
		case $f_p in / | . | ./) set -- && break ;; esac
	done
	rm -f "$W/failed"
	restore_source "$src" "$TO" "$FORCE" "$@"
	[ -f "$W/failed" ] && exit 1
	log "restored source $src into $TO"
}

cmd_bare_metal() {
	[ "$(id -u)" = 0 ] || die "bare-metal must run as root"
	layout_prepare
	if [ -z "$(records disk)" ] && [ -z "$(records fs)" ]; then
		die "this script holds no layout (set $BT_LAYOUT_SET was written without one): bare-metal cannot rebuild the disks; restore with files, or write the script with: backtory recovery-script --layout-from-here"
	fi
	find_tools
	mkdir -p "$W/state"
	if [ "$YES" != 1 ] && [ ! -f "$W/state/confirmed" ]; then
		printf 'bare-metal recovery of %s DESTROYS everything on:\n' "$BT_HOST" >&2
		records disk | while read -r _ c_disk _; do
			printf '  %s %s\n' "$c_disk" "$(cat "/sys/block/${c_disk##*/}/device/model" 2>/dev/null)" >&2
		done
		printf 'Type YES to continue: ' >&2
		read -r c_answer </dev/tty || c_answer=""
		[ "$c_answer" = YES ] || die "not confirmed: nothing was touched"
	fi
	if [ ! -f "$W/state/wipe.done" ]; then
		records disk | while read -r _ c_disk _; do
			if grep -q "^$c_disk" /proc/mounts; then
				die "$c_disk holds a mounted filesystem: unmount it, or leave the disk alone with --skip ${c_disk#/dev/}"
			fi
		done || exit 1
	fi
	: >"$W/state/confirmed"
	for b_step in $STEPS; do
		step_needed "$b_step" || continue
		if [ -f "$W/state/$b_step.done" ]; then
			log "step $b_step: done before, skipped (--restart to redo)"
			continue
		fi
		log "step $b_step"
		b_t0=$(date +%s)
		rm -f "$W/failed"
		if ! ("step_$b_step") || [ -f "$W/failed" ]; then
			die "step $b_step failed: fix the cause and run the same command again (it resumes here)"
		fi
		: >"$W/state/$b_step.done"
		log "step $b_step: done in $(($(date +%s) - b_t0))s"
	done
}

main() {
	[ $# -gt 0 ] || {
		usage >&2
		exit 2
	}
	CMD=$1
	shift
	case $CMD in
	-h | --help | help)
		usage
		exit 0
		;;
	esac
	AT="" TO="" SOURCE="" MAPS="" SKIPS="" FETCH="" YES=0 FORCE=0 STOCK=0 KEEP=0 NO_BOOT=0 RESTART=0
	URL=$BT_URL USER_NAME=$BT_USER PASSWORD_FILE="" KEY="" PASSFILE="" BT_BIN="" LUKS_KEY="" TLS_CA=""
	W=/tmp/backtory-recover TARGET=/mnt/backtory-target
	while [ $# -gt 0 ]; do
		case $1 in
		--at | --to | --source | --map | --skip | --fetch | --url | --user | --password-file | --key | --passphrase-file | --backtory | --work | --target | --luks-key-file | --tls-ca)
			[ $# -ge 2 ] || die "$1 needs a value"
			o_val=$2
			o_opt=$1
			shift 2
			;;
		--*=*)
			o_opt=${1%%=*}
			o_val=${1#*=}
			shift
			;;
		--yes) YES=1 && shift && continue ;;
		--force) FORCE=1 && shift && continue ;;
		--stock) STOCK=1 && shift && continue ;;
		--keep) KEEP=1 && shift && continue ;;
		--no-bootloader) NO_BOOT=1 && shift && continue ;;
		--restart) RESTART=1 && shift && continue ;;
		-h | --help)
			usage
			exit 0
			;;
		--)
			shift
			break
			;;
		-*) die "unknown option $1 (see recover.sh --help)" ;;
		*) break ;;
		esac
		case $o_opt in
		--at)
			AT=$o_val
			settime "$AT" >/dev/null # dies on a time it cannot read
			;;
		--to) TO=$o_val ;;
		--source) SOURCE=$o_val ;;
		--map)
			o_old=${o_val%%=*}
			o_new=${o_val#*=}
			if [ "$o_old" = "$o_val" ] || [ -z "$o_new" ]; then
				die "--map wants OLD=NEW, e.g. sda=vda"
			fi
			MAPS="$MAPS${MAPS:+ }${o_old#/dev/}=${o_new#/dev/}"
			;;
		--fetch) FETCH="$FETCH${FETCH:+ }$o_val" ;;
		--skip) SKIPS="$SKIPS${SKIPS:+ }${o_val#/dev/}" ;;
		--url) URL=$o_val ;;
		--user) USER_NAME=$o_val ;;
		--password-file) PASSWORD_FILE=$o_val ;;
		--key) KEY=$o_val ;;
		--passphrase-file) PASSFILE=$o_val ;;
		--backtory) BT_BIN=$o_val ;;
		--work) W=$o_val ;;
		--target) TARGET=$o_val ;;
		--luks-key-file) LUKS_KEY=$o_val ;;
		--tls-ca) TLS_CA=$o_val ;;
		*) die "unknown option $o_opt (see recover.sh --help)" ;;
		esac
	done
	for o_p in "$@"; do
		case $o_p in --*) die "options go before the PATHs ($o_p)" ;; esac
	done
	if [ -z "$PASSFILE" ] && [ -n "${BACKTORY_KEY_PASSPHRASE:-}" ]; then
		mkdir -p "$W" && chmod 700 "$W"
		printf '%s\n' "$BACKTORY_KEY_PASSPHRASE" >"$W/passphrase"
		PASSFILE=$W/passphrase
	fi
	for o_f in "$KEY" "$PASSFILE" "$PASSWORD_FILE" "$BT_BIN" "$LUKS_KEY" "$TLS_CA"; do
		[ -z "$o_f" ] || [ -r "$o_f" ] || die "cannot read $o_f"
	done
	case $KEY in "" | /*) ;; *) KEY=$(pwd)/$KEY ;; esac
	case $PASSFILE in "" | /*) ;; *) PASSFILE=$(pwd)/$PASSFILE ;; esac
	case $PASSWORD_FILE in "" | /*) ;; *) PASSWORD_FILE=$(pwd)/$PASSWORD_FILE ;; esac
	case $BT_BIN in "" | /*) ;; *) BT_BIN=$(pwd)/$BT_BIN ;; esac
	case $TLS_CA in "" | /*) ;; *) TLS_CA=$(pwd)/$TLS_CA ;; esac
	L=$W/layout
	ZSTD=$(tool zstd) || ZSTD=zstd
	GPG=$(tool gpg) || GPG=""
	DRY=0
	case $CMD in
	plan)
		DRY=1
		W=$(mktemp -d "${TMPDIR:-/tmp}/backtory-plan.XXXXXX") || die "cannot make a scratch directory"
		L=$W/layout
		cmd_plan
		rm -rf "$W"
		;;
	files)
		mkdir -p "$W" && chmod 700 "$W"
		trap stop_agent EXIT
		cmd_files "$@"
		[ "$KEEP" = 1 ] || cleanup_work
		;;
	bare-metal)
		[ $# -eq 0 ] || die "bare-metal takes no PATHs"
		mkdir -p "$W" && chmod 700 "$W"
		[ "$RESTART" = 1 ] && rm -rf "$W/state"
		trap stop_agent EXIT
		cmd_bare_metal
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

# stop_agent stops the gpg-agent that gpg started for our GnuPG home.
stop_agent() {
	if [ -d "$W/gnupg" ] && c_gc=$(tool gpgconf); then
		"$c_gc" --homedir "$W/gnupg" --kill gpg-agent 2>/dev/null
	fi
	return 0
}

cleanup_work() {
	stop_agent
	rm -rf "${W:?}/sets" "${W:?}/gnupg" "${W:?}/bin" "$W"/state-* "$W"/backtory-*.yaml "$W/passphrase"
}
