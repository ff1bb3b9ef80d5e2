#!/bin/bash
# Installs what the SFTP backend tests (remote/sftp_test.go, internal/sshtest)
# need on Debian 12: openssh-server (the tests start their own sshd on
# 127.0.0.1 with their own config and host keys; the packaged service is
# stopped and disabled), the stock clients (sftp, scp, ssh-keygen) and curl
# for recover.sh, and the sftp-only test user "bksftp" (no shell, a known
# password; the tests authorize their own keys).
# Idempotent; fast when everything is present.
set -eu

user=bksftp                  # internal/sshtest uses the same
password=bksftp-test-password # and this
pkgs="openssh-server openssh-client openssh-sftp-server curl"
apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=""
for p in $pkgs; do
	installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if ! apt-cache show $missing >/dev/null 2>&1; then
		apt-get $apt_opts update -q
	fi
	# policy-rc.d keeps the package's own sshd from starting on port 22.
	had_policy=0
	[ -e /usr/sbin/policy-rc.d ] && had_policy=1
	if [ "$had_policy" = 0 ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
	fi
fi
# sshd refuses to start without its privilege separation directory.
mkdir -p /run/sshd
chmod 755 /run/sshd

if ! id "$user" >/dev/null 2>&1; then
	useradd --no-create-home --home-dir / --shell /usr/sbin/nologin "$user"
fi
# Set the password only when it differs, so repeated runs do not rewrite /etc/shadow.
if ! python3 -c 'import crypt,spwd,sys; h=spwd.getspnam(sys.argv[1]).sp_pwdp; sys.exit(crypt.crypt(sys.argv[2], h) != h)' "$user" "$password" 2>/dev/null; then
	echo "$user:$password" | chpasswd
fi
