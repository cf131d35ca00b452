// Package vmtest boots Debian's kernel under qemu and runs Go test binaries in it, as
// root, so that tests of kernel/xfrm meet a real ESP-capable kernel on machines whose
// own kernel has XFRM policies but no ESP (see notes/kernel-vm.md).
//
// Contract:
//
//   - Prepare fetches (apt-get download) and caches, per kernel version, the kernel
//     package behind linux-image-amd64, its uncompressed ELF vmlinux, the ESP, crypto and
//     virtual-link modules, and a base initramfs (busybox-static, the modules, /init).
//     It is idempotent and safe across processes. `go run ./kernel/vmtest/cmd/vmprep`
//     runs it ahead of the tests; Run also calls it lazily.
//   - Run boots the kernel with qemu (software emulation unless KVM really works), with
//     the given statically linked binaries appended to the initramfs as an uncompressed
//     cpio archive, runs each binary in turn, and returns its output and exit status.
//     Inside: /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /tmp and /run (tmpfs,
//     /var/run → /run, /run/netns exists) are mounted, lo is up, the modules are loaded
//     (xfrm_user, esp4, esp6, veth, dummy, tun, xfrm_interface and the AES-GCM,
//     ChaCha20-Poly1305 and AES-CBC/HMAC-SHA2 crypto), busybox provides the usual
//     applets, and the environment has CYGNET_VM=1. There is no network to the host.
//   - Kernel messages go to the console (Result.Console); each binary's stdout and
//     stderr go, framed by markers carrying a random per-run token, over a second
//     serial port, so kernel messages never interleave with test output.
//   - Missing prerequisites (qemu, apt, the kernel package, busybox-static, xz) are
//     errors naming the Debian package to install; callers must turn them into test
//     failures, never skips.
//   - BuildTestBinary compiles a package's tests into a static binary for the VM;
//     ParseGoTestOutput turns its -test.v output into per-test results.
//
// Cost, measured under TCG on the shared 2-core development machine when it was quiet:
// boot (qemu start to the first binary, modules loaded) 3.9–4.6 s; a Run of this
// package's in-VM tests 5–6 s in all. When the machine is loaded (load average ~18)
// the same boot took 12–45 s, so callers should not set tight timeouts. A first
// Prepare downloads 70 MB and takes 7–40 s. BenchmarkBoot measures it.
package vmtest
