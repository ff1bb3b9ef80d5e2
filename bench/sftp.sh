#!/bin/bash
# sftp.sh measures backtory over SFTP in one run, against a local sshd it starts
# (its own config, host key and chrooted sftp-only user, as internal/sshtest
# does), and prints ratios (docs/benchmarks.md):
#
#   1. upload throughput of backtory's SFTP backend against OpenSSH's sftp and
#      scp on the same files (go test -bench BenchmarkSFTPUpload ./remote/)
#   2. backtory against restic (its sftp: backend, through ssh) on the peer
#      benchmark's dataset: a full backup, then a second one after the 1%
#      mutation: wall time, CPU of the client, bytes on the server
#
# Needs root (sshd chroots). Environment (optional):
#   BENCH_SIZE=small|full   the dataset of bench/peers/dataset.sh (default small)
#   BENCH_WORK=DIR          scratch space (default: a new directory in /var/tmp)
#   BENCH_SEED=N            the mutation's seed (default 20261123)
# shellcheck disable=SC2154 # measure sets the *_wall and *_cpu variables by name
set -eu
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
size=${BENCH_SIZE:-small}
seed=${BENCH_SEED:-20261123}
say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bash "$root/test/deps/sftp.sh"
if ! command -v restic >/dev/null || [ ! -x /usr/bin/time ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends restic time >&2
fi

work=${BENCH_WORK:-$(mktemp -d /var/tmp/backtory-bench-sftp.XXXXXX)}
mkdir -p "$work"
srv=""
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	[ -z "$srv" ] || rm -rf "$srv"
	rm -rf "$work"
}
trap cleanup EXIT

say "throughput: go test -bench BenchmarkSFTPUpload"
bench=$(cd "$root" && go test -run '^$' -bench '^BenchmarkSFTPUpload$' -benchtime 3x ./remote/ | grep '^BenchmarkSFTPUpload')
metric() { awk -v m="$1" '{ for (i = 3; i < NF; i++) if ($(i + 1) == m) print $i }' <<<"$bench"; }

say "building backtory and the dataset ($size)"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/backtory" ./cmd/backtory)
bt=$work/backtory
"$here/peers/dataset.sh" "$work/data" "$size" >&2
data=$work/data
"$here/peers/mutate.sh" plan "$data" "$seed" >"$work/plan.tsv"

# The server: every component of ChrootDirectory must be root's and 0755.
mkdir -p /var/cache/backtory-test/sshd
srv=$(mktemp -d /var/cache/backtory-test/sshd/bench-XXXXXX)
chmod 755 "$srv"
mkdir -p "$srv/chroot/data" "$srv/keys" /run/sshd
chown bksftp: "$srv/chroot/data"
ssh-keygen -q -t ed25519 -N '' -f "$srv/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$srv/client_key"
cp "$srv/client_key.pub" "$srv/keys/bksftp"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$srv/host_key.pub")" >"$srv/known_hosts"
cat >"$srv/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $srv/host_key
PidFile none
AuthorizedKeysFile $srv/keys/%u
StrictModes no
UsePAM no
PasswordAuthentication no
AllowUsers bksftp
Subsystem sftp internal-sftp
Match User bksftp
	ChrootDirectory $srv/chroot
	ForceCommand internal-sftp
EOF
/usr/sbin/sshd -D -e -f "$srv/sshd_config" 2>"$srv/sshd.log" &
pid=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

ssh_opts="-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$srv/known_hosts -o IdentitiesOnly=yes -i $srv/client_key"
export HOME=$work/home RESTIC_PASSWORD=backtory-bench RESTIC_CACHE_DIR=$work/cache/restic
mkdir -p "$HOME"
restic_repo=sftp:bksftp@127.0.0.1:/data/restic
restic_opts=(-o "sftp.command=ssh $ssh_opts -p $port bksftp@127.0.0.1 -s sftp")
restic -r "$restic_repo" "${restic_opts[@]}" init >"$work/restic-init.log" 2>&1

"$bt" key generate --name bench --public "$work/host.pub.asc" --secret "$work/host.sec.asc" >/dev/null
cat >"$work/backtory.yaml" <<EOF
host: bench
state_dir: $work/cache/backtory
sources:
  - name: data
    path: $data
    snapshot: none
remote:
  url: sftp://bksftp@127.0.0.1:$port/data/backtory
  ssh_key: $srv/client_key
  known_hosts: $srv/known_hosts
compression: zstd:3
volume_size: 256MiB
encryption:
  signing_key: $work/host.sec.asc
  recipients: [$work/host.pub.asc]
EOF

# measure NAME CMD...: wall and user+sys seconds of the client, into $NAME_wall, $NAME_cpu.
measure() {
	local name=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >"$work/$name.log" 2>&1 ||
		{ say "$name failed: $(tail -n 3 "$work/$name.log")"; exit 1; }
	read -r w u s <"$work/time"
	printf -v "${name}_wall" '%s' "$w"
	printf -v "${name}_cpu" '%s' "$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')"
	say "$name: ${w}s wall, $(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')s CPU"
}
bytes() { du -sb "$srv/chroot/data/$1" | cut -f1; }

measure bt_full "$bt" backup --full --config "$work/backtory.yaml"
bt_full_bytes=$(bytes backtory)
measure restic_full restic -r "$restic_repo" "${restic_opts[@]}" backup "$data"
restic_full_bytes=$(bytes restic)
say "mutated: $("$here/peers/mutate.sh" apply "$data" "$work/plan.tsv")"
measure bt_second "$bt" backup --diff --config "$work/backtory.yaml"
bt_second_bytes=$(($(bytes backtory) - bt_full_bytes))
measure restic_second restic -r "$restic_repo" "${restic_opts[@]}" backup "$data"
restic_second_bytes=$(($(bytes restic) - restic_full_bytes))

r() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
cat <<EOF
## backtory over SFTP ($(date -u +%Y-%m-%d), $(nproc) cores, dataset $size, one run)

Upload throughput on loopback, 8 files of 16 MiB (MB/s; ratios in the same run):

| backtory, 2 connections | backtory, 1 connection | OpenSSH sftp | OpenSSH scp | backtory(2)/sftp | backtory(2)/scp |
| --- | --- | --- | --- | --- | --- |
| $(metric backtory-2conns-MB/s) | $(metric backtory-1conn-MB/s) | $(metric sftp-MB/s) | $(metric scp-MB/s) | $(metric backtory2/sftp) | $(metric backtory2/scp) |

backtory / restic over SFTP (below 1: backtory needs less):

| backup | wall | client CPU | bytes on the server |
| --- | --- | --- | --- |
| full | $(r "$bt_full_wall" "$restic_full_wall") ($bt_full_wall s / $restic_full_wall s) | $(r "$bt_full_cpu" "$restic_full_cpu") | $(r "$bt_full_bytes" "$restic_full_bytes") ($bt_full_bytes / $restic_full_bytes) |
| second (after the 1% mutation) | $(r "$bt_second_wall" "$restic_second_wall") ($bt_second_wall s / $restic_second_wall s) | $(r "$bt_second_cpu" "$restic_second_cpu") | $(r "$bt_second_bytes" "$restic_second_bytes") ($bt_second_bytes / $restic_second_bytes) |
EOF
