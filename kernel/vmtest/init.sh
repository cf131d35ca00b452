#!/bin/sh
# /init of cygnet's test VM (package kernel/vmtest). PID 1 in Debian's kernel under qemu.
#
# Contract with run.go:
#  * the console (ttyS0, qemu's first serial port) carries kernel messages and this
#    script's own messages: diagnostics only;
#  * the second serial port (ttyS1, qemu's stdout) carries only marker lines and the
#    test binaries' output: "@@CYGNET-<token> READY", then for each binary
#    "@@CYGNET-<token> BEGIN <i>", its output, "\n@@CYGNET-<token> END <i> <exit status>",
#    and finally "@@CYGNET-<token> DONE";
#  * the per-run archive provides /cygnet/run.sh, which sets CYGNET_TOKEN and calls
#    cygnet_run for each binary.
# When this script ends the VM powers off; if it dies the kernel panics, and panic=-1
# with qemu's -no-reboot ends qemu as well.

export PATH=/bin:/sbin HOME=/root TMPDIR=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns
# Make the root mount shared so that bind mounts (named network namespaces under
# /run/netns) propagate like on a systemd host.
mount --make-rshared / 2>/dev/null
hostname cygnet-vm

# Load the modules in the order prepared on the host. A failure is reported and the run
# goes on: jitterentropy-style failures under emulation are harmless, and a missing ESP
# shows up as a test failure with this message on the console.
while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/cygnet/$mod.ko" || echo "vmtest: insmod $mod failed" >&2
done </lib/modules/cygnet/order

ip link set lo up

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1

cygnet_mark() { printf '@@CYGNET-%s %s\n' "$CYGNET_TOKEN" "$*" >&3; }

# cygnet_run INDEX PATH ARGS...: runs one binary with stdout and stderr on ttyS1.
cygnet_run() {
	idx=$1
	shift
	cygnet_mark BEGIN "$idx"
	(cd /tmp && exec env CYGNET_VM=1 "$@") </dev/null >&3 2>&3
	rc=$?
	printf '\n' >&3
	cygnet_mark END "$idx" "$rc"
}

if [ -f /cygnet/run.sh ]; then
	. /cygnet/run.sh
else
	echo "vmtest: no /cygnet/run.sh in the initramfs" >&2
fi
sync
poweroff -f
