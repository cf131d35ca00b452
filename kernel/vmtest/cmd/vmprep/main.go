// Command vmprep prepares, once, the cached assets kernel/vmtest boots: Debian's kernel
// package behind linux-image-amd64 (apt-get download), its ELF vmlinux and modules,
// busybox-static and the base initramfs. It is idempotent; `make test` runs it before
// `go test` so that the first VM test does not pay for the download.
//
//	go run ./kernel/vmtest/cmd/vmprep [-boot]
//
// With -boot it also boots the VM once, running the host's static busybox as `true`,
// and prints the boot time: a check that qemu works on this machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel/vmtest"
)

func main() {
	boot := flag.Bool("boot", false, "also boot the VM once and report the boot time")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *boot); err != nil {
		fmt.Fprintln(os.Stderr, "vmprep:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, boot bool) error {
	start := time.Now()
	a, err := vmtest.Prepare(ctx, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf("vmprep: %s (%d modules) ready in %v\n  vmlinux: %s\n  initrd:  %s\n",
		a.KernelPackage, len(a.Modules), time.Since(start).Round(time.Millisecond), a.Vmlinux, a.BaseInitrd)
	if !boot {
		return nil
	}
	res, err := vmtest.Run(ctx, vmtest.Config{Binaries: []vmtest.Binary{{Name: "busybox", Path: "/bin/busybox", Args: []string{"true"}}}})
	if err != nil {
		return err
	}
	fmt.Printf("vmprep: boot %v, total %v, exit %d\n", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.Runs[0].ExitCode)
	return nil
}
