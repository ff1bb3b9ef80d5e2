#!/bin/bash
# Installs what the FTP backend tests (remote/ftp_test.go) need on Debian 12:
# vsftpd as a package, the pure-ftpd binary unpacked from its .deb into a cache
# directory (the two packages conflict, so only one can be installed), the
# libraries pure-ftpd links against, and the test user "bkftp" with a login
# shell (vsftpd's PAM stack has pam_shells) and a known password.
# Idempotent; fast when everything is present.
set -eu

cache=/var/cache/backtory-test/pure-ftpd   # remote/ftp_test.go looks here
user=bkftp
password=bkftp-test-password               # remote/ftp_test.go uses the same

pkgs="vsftpd libsodium23 libcap2 libssl3 libpam0g libcrypt1"
apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=""
for p in $pkgs; do
	installed "$p" || missing="$missing $p"
done
need_pure=0
[ -x "$cache/usr/sbin/pure-ftpd" ] || need_pure=1

if [ -n "$missing" ] || [ "$need_pure" = 1 ]; then
	if ! apt-cache show vsftpd pure-ftpd >/dev/null 2>&1; then
		apt-get $apt_opts update -q
	fi
	if [ -n "$missing" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing
	fi
	if [ "$need_pure" = 1 ]; then
		tmp=$(mktemp -d)
		chmod 755 "$tmp"  # apt-get download runs as _apt
		trap 'rm -rf "$tmp"' EXIT
		(cd "$tmp" && apt-get $apt_opts download -q pure-ftpd)
		rm -rf "$cache"
		mkdir -p "$cache"
		dpkg -x "$tmp"/pure-ftpd_*.deb "$cache"
	fi
fi

# The Debian package starts vsftpd on port 21 (all addresses); the tests run
# their own instances on 127.0.0.1, so stop and disable the packaged one.
if [ -n "$missing" ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now vsftpd >/dev/null 2>&1 || true
fi

if ! id "$user" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash "$user"
fi
# Set the password only when it differs, so repeated runs do not rewrite /etc/shadow.
if ! python3 -c 'import crypt,spwd,sys; h=spwd.getspnam(sys.argv[1]).sp_pwdp; sys.exit(crypt.crypt(sys.argv[2], h) != h)' "$user" "$password" 2>/dev/null; then
	echo "$user:$password" | chpasswd
fi
