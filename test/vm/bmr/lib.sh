# Helpers of the VM drill's guest scripts (guest.sh, boot-guest.sh), which
# source this file from the share after setting TAG (their log prefix).
# shellcheck shell=sh
fails=0
log() { echo "$TAG: $*"; }

# check WHAT COMMAND...: runs COMMAND, records "BMR-CHECK ok|FAIL WHAT".
check() {
	what=$1
	shift
	if "$@"; then
		echo "BMR-CHECK ok   $what" | tee -a /host/result.txt
	else
		echo "BMR-CHECK FAIL $what" | tee -a /host/result.txt
		fails=$((fails + 1))
	fi
}

# must COMMAND...: a setup step; its failure ends the drill.
must() {
	"$@" || {
		echo "$TAG: FAILED: $*"
		echo "BMR-CHECK FAIL setup: $*" >>/host/result.txt
		exit 100
	}
}

# waitdev DEV: waits up to 10 s for a block device node (no udev here).
waitdev() {
	n=0
	while [ ! -b "$1" ] && [ "$n" -lt 50 ]; do
		sleep 0.2
		n=$((n + 1))
	done
	[ -b "$1" ]
}
: >/host/result.txt
