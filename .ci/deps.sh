#!/usr/bin/env bash
# Installs, idempotently, every system package the test suite needs on a fresh Debian
# machine. Called by `make test` (and so by .ci/run). Safe to run again: it only calls
# apt-get when a package is missing.
set -euo pipefail

pkgs=(
  # network namespaces, veth, ip xfrm for the end-to-end tests
  iproute2 iputils-ping procps psmisc tcpdump
  # a real ESP-capable kernel under qemu (kernel/vmtest)
  qemu-system-x86 busybox-static kmod cpio xz-utils gzip zstd
  # strongSwan as the reference peer (interop suite)
  strongswan-charon charon-systemd strongswan-swanctl libcharon-extra-plugins
  libstrongswan-extra-plugins libstrongswan-standard-plugins
  # a real Prometheus: promtool checks and an end-to-end scrape
  prometheus
  # perf for the concentrator benchmark's profile step (cmd/cygnet-load/bench)
  linux-perf
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Services from these packages must not start on the host (charon, prometheus): the
  # tests start their own instances inside network namespaces.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
else
  echo "deps: all system packages present"
fi
