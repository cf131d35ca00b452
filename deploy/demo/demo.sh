#!/usr/bin/env bash
# make demo — cygnet in two network namespaces, and one failure rule shown live.
#
#   1. Two namespaces joined by a veth pair (192.0.2.1 <-> 192.0.2.2, RFC 5737), a
#      cygnetd in each; the kernel backend each one chose is shown.
#   2. A tunnel: one IKE SA with two Child SAs (198.51.100.0/25 <-> 203.0.113.0/25 and
#      198.51.100.128/25 <-> 203.0.113.128/25); `cygnetctl list-sas` on both sides and a
#      few lines of /metrics.
#   3. The failure rule "CREATE_CHILD_SA: new Child SA rejected → that Child SA only":
#      a third child whose subnets the peer does not accept fails with TS_UNACCEPTABLE
#      while the IKE SA and the other two Child SAs stay up.
#   4. Everything is removed on exit (daemons stopped by PID, namespaces deleted), also
#      when the demo fails or is interrupted.
#
# Needs root and iproute2; builds cygnetd and cygnetctl with Go if it is on the PATH
# (make demo builds them first).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$root/bin

bold=$(printf '\033[1m'); dim=$(printf '\033[2m'); red=$(printf '\033[31m'); green=$(printf '\033[32m'); off=$(printf '\033[0m')
if [ ! -t 1 ]; then bold=; dim=; red=; green=; off=; fi
say()  { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
die()  { printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }

# --- prerequisites ------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN (sudo make demo)"
command -v ip >/dev/null 2>&1 || die "iproute2 is missing (the 'ip' command): apt-get install iproute2"
ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here: this iproute2 or kernel lacks network namespaces"
if command -v go >/dev/null 2>&1; then
  (cd "$root" && mkdir -p bin && go build -o bin/ ./cmd/cygnetd ./cmd/cygnetctl) || die "go build failed"
fi
for b in cygnetd cygnetctl; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing and Go is not on the PATH: put /usr/local/go/bin on the PATH and run 'make demo'"
done

# --- set-up and clean-up ------------------------------------------------------------
id=$$
nsa=cygnet-demo-a-$id
nsb=cygnet-demo-b-$id
work=$(mktemp -d /tmp/cygnet-demo.XXXXXX)
pids=()
created=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  say "cleaning up"
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
      wait "$pid" 2>/dev/null || true
      echo "stopped cygnetd (pid $pid)"
    fi
  done
  for ns in "${created[@]}"; do
    ip netns delete "$ns" 2>/dev/null && echo "deleted namespace $ns"
  done
  if [ $status -ne 0 ]; then
    for side in a b; do
      if [ -s "$work/$side.log" ]; then
        printf '%s-- last lines of cygnetd %s log --%s\n' "$dim" "$side" "$off"
        tail -n 20 "$work/$side.log"
      fi
    done
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "two network namespaces joined by a veth pair"
for ns in "$nsa" "$nsb"; do
  ip netns add "$ns"; created+=("$ns")
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip link add name "cgd${id}a" netns "$nsa" type veth peer name "cgd${id}b" netns "$nsb"
ip -n "$nsa" addr add 192.0.2.1/24 dev "cgd${id}a"; ip -n "$nsa" link set "cgd${id}a" up
ip -n "$nsb" addr add 192.0.2.2/24 dev "cgd${id}b"; ip -n "$nsb" link set "cgd${id}b" up
ip -n "$nsa" addr add 198.51.100.1/24 dev lo
ip -n "$nsb" addr add 203.0.113.1/24 dev lo
echo "$nsa: 192.0.2.1 (subnet 198.51.100.0/24)   <->   $nsb: 192.0.2.2 (subnet 203.0.113.0/24)"

# --- configuration ------------------------------------------------------------------
# Side a starts the tunnel (start_action: start) and has a third child, net3, whose
# remote subnet b does not route to it: b has no child for 10.99.0.0/24.
psk=$(head -c 24 /dev/urandom | base64)
config() { # side self peer selfnet peernet selfid peerid
  local side=$1 self=$2 peer=$3 a=$4 b=$5 selfid=$6 peerid=$7 start=$8
  cat <<EOF
daemon:
  listen_addrs: [$self]
  control_socket: $work/$side.sock
  metrics_address: 127.0.0.1:9917
  log: {format: console, level: info}
connections:
  site:
    local_addrs: [$self]
    remote_addrs: [$peer]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {auth: psk, id: $selfid}
    remote: {auth: psk, id: $peerid}
    children:
      net1:
        local_ts: [$a.0/25]
        remote_ts: [$b.0/25]
        esp_proposals: [aes256gcm16]
        start_action: $start
      net2:
        local_ts: [$a.128/25]
        remote_ts: [$b.128/25]
        esp_proposals: [aes256gcm16]
        start_action: $start
EOF
  if [ "$side" = a ]; then
    cat <<EOF
      net3:
        local_ts: [$a.0/24]
        remote_ts: [10.99.0.0/24]
        esp_proposals: [aes256gcm16]
        start_action: none
EOF
  fi
  cat <<EOF
secrets:
  ike-site:
    id-a: gw-a.example
    id-b: gw-b.example
    secret: "$psk"
EOF
}
config a 192.0.2.1 192.0.2.2 198.51.100 203.0.113 gw-a.example gw-b.example start >"$work/a.yaml"
config b 192.0.2.2 192.0.2.1 203.0.113 198.51.100 gw-b.example gw-a.example none >"$work/b.yaml"
chmod 600 "$work"/*.yaml

ctl() { local side=$1; shift; "$bin/cygnetctl" --socket "$work/$side.sock" "$@"; }
metrics() { # side: GET /metrics inside the namespace, with bash's /dev/tcp (no curl needed)
  local ns=$nsa; [ "$1" = b ] && ns=$nsb
  ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9917 && printf "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && cat <&3'
}
wait_for() { # seconds description command...
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out after ${t}s waiting for $what"
}

say "starting a cygnetd in each namespace (b answers, a initiates)"
ip netns exec "$nsb" "$bin/cygnetd" --config "$work/b.yaml" 2>"$work/b.log" &
pids+=($!)
wait_for 10 "cygnetd b's control socket" ctl b stats
ip netns exec "$nsa" "$bin/cygnetd" --config "$work/a.yaml" 2>"$work/a.log" &
pids+=($!)
wait_for 10 "cygnetd a's control socket" ctl a stats
for side in a b; do
  printf '%s: ' "$side"; grep -m1 -o 'kernel backend: .*' "$work/$side.log" | sed 's/\t.*//' || echo "(no kernel backend line in the log)"
done

installed() { # side count: that many Child SAs INSTALLED
  [ "$(ctl "$1" list-sas --json | grep -o '"state":"INSTALLED"' | wc -l)" -ge "$2" ]
}
wait_for 20 "the IKE SA and two Child SAs on a" installed a 2
wait_for 20 "the IKE SA and two Child SAs on b" installed b 2

say "cygnetctl list-sas on a"
ctl a list-sas
say "cygnetctl list-sas on b"
ctl b list-sas
say "a few lines of a's /metrics"
metrics a | grep -E '^cygnet_(ike_sas_established|child_sas_installed|exchanges_total\{exchange="(IKE_SA_INIT|IKE_AUTH|CREATE_CHILD_SA)",outcome="(ok|rejected)",role="initiator"\})' || die "no metrics from a"

say "failure rule live: a asks for a third Child SA, net3 (198.51.100.0/24 <-> 10.99.0.0/24), that b has no policy for"
echo "\$ cygnetctl initiate --child net3"
if ctl a initiate --child net3; then
  die "net3 came up, but b has no child for 10.99.0.0/24: it should have been refused"
fi
printf '%sas expected: b answered TS_UNACCEPTABLE; only net3 failed%s\n' "$green" "$off"

say "cygnetctl list-sas on a, again: the IKE SA and net1, net2 are still up"
ctl a list-sas
say "cygnetctl list-sas on b, again"
ctl b list-sas
installed a 2 || die "a lost a Child SA: the failure was not contained"
installed b 2 || die "b lost a Child SA: the failure was not contained"
say "the failure counters"
metrics a | grep -E '^cygnet_(child_sa_failures_total|ike_sas_established|child_sas_installed)' || true
metrics b | grep -E '^cygnet_notifies_sent_total\{type="TS_UNACCEPTABLE"\}' | sed 's/^/b: /' || true

say "done: the IKE SA survived a rejected Child SA, as the failure table says"
