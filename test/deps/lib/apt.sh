# shellcheck shell=bash
# Sourced by test/deps/*.sh: apt_install PKG... installs the Debian packages
# that are not installed yet (none: returns at once), refreshing the package
# lists first when apt does not know one of them, and once more on failure
# (the lists may be stale).
apt_install() {
	local missing="" p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			missing="$missing $p"
		fi
	done
	[ -n "$missing" ] || return 0
	local apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
	# shellcheck disable=SC2086 # word splitting of the lists is wanted
	if ! apt-cache show $missing >/dev/null 2>&1; then
		apt-get $apt_opts update -q
	fi
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing; then
		apt-get $apt_opts update -q
		DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y -q --no-install-recommends $missing
	fi
}
