package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
	"github.com/cygnet-ipsec/cygnet/kernel/xfrm"
)

// backend is the kernel the daemon programs, and why it was chosen.
type backend struct {
	k    kernel.Kernel
	name string // "xfrm" or "memory", as stats and the log line say
	// why explains an automatic choice (the probe's result).
	why string
	// mem is set for the in-memory kernel: its clock must be advanced.
	mem *memkernel.Kernel
}

// probeTimeout bounds the ESP probe.
const probeTimeout = 5 * time.Second

// openBackend opens the kernel backend choice asks for. KernelAuto probes for ESP
// (probeESP) and falls back to the in-memory kernel when the kernel cannot install an
// ESP state; KernelXFRM and KernelMemory are taken as given (XFRM without ESP still
// installs policies: trap connections work, Child SAs fail at install).
func openBackend(choice config.KernelBackend, log *zap.Logger) (*backend, error) {
	switch choice {
	case config.KernelMemory:
		return memoryBackend("chosen by configuration or flag"), nil
	case config.KernelXFRM:
		k, err := xfrm.Open(netns.None(), xfrm.Options{})
		if err != nil {
			return nil, fmt.Errorf("kernel backend xfrm: %w", err)
		}
		b := &backend{k: k, name: "xfrm", why: "chosen by configuration or flag"}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		if err := probeESP(ctx); err != nil {
			log.Warn("kernel backend xfrm was asked for, but this kernel cannot install ESP states: Child SAs will fail to install (trap policies still work)", zap.Error(err))
		}
		return b, nil
	case config.KernelAuto:
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		if err := probeESP(ctx); err != nil {
			return memoryBackend(fmt.Sprintf("this kernel cannot install ESP states: %v", err)), nil
		}
		k, err := xfrm.Open(netns.None(), xfrm.Options{})
		if err != nil {
			return memoryBackend(fmt.Sprintf("XFRM netlink unavailable: %v", err)), nil
		}
		return &backend{k: k, name: "xfrm", why: "this kernel installs ESP states"}, nil
	}
	return nil, fmt.Errorf("unknown kernel backend %v", choice)
}

func memoryBackend(why string) *backend {
	// A random first SPI, so that two daemons with in-memory kernels do not show the same
	// SPIs (Linux picks SPIs at random too).
	var b [4]byte
	_, _ = rand.Read(b[:])
	first := kernel.SPI(binary.BigEndian.Uint32(b[:])>>1 | 0x10000000)
	mk := memkernel.New(memkernel.Options{Now: time.Now(), FirstSPI: first})
	return &backend{k: mk, name: "memory", why: why, mem: mk}
}

// run keeps the in-memory kernel's clock on the wall clock, so that Child SA lifetimes
// expire as they would in Linux. It returns when ctx ends. For XFRM it does nothing.
func (b *backend) run(ctx context.Context) {
	if b.mem == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.mem.Advance(now)
		}
	}
}

// probeESP answers "can this kernel install an ESP state?" by doing it where nothing can
// notice: in a throw-away network namespace that exists only for the probe, it allocates
// an SPI, installs a tunnel-mode AES-GCM ESP SA between two documentation addresses
// (RFC 5737) and deletes it. The namespace goes away when the probe ends. Creating a
// namespace needs CAP_SYS_ADMIN; without it the probe runs in the daemon's own
// namespace, where the SA is equally inert: no policy refers to it, its SPI was just
// allocated by the kernel, and it is deleted at once.
//
// The answer is nil (ESP works) or the kernel's refusal, wrapping kernel.ErrUnsupported
// when Linux lacks ESP or its AEAD (on the development machines: "function not
// implemented: Requested AEAD algorithm not found").
func probeESP(ctx context.Context) error {
	ns, err := throwAwayNetns()
	if err != nil {
		ns = netns.None()
	} else {
		defer ns.Close()
	}
	return probeESPIn(ctx, ns)
}

// probeESPIn is probeESP in the namespace ns (netns.None() is the daemon's own). It
// leaves nothing behind in ns, whatever the answer.
func probeESPIn(ctx context.Context, ns netns.NsHandle) error {
	k, err := xfrm.Open(ns, xfrm.Options{Timeout: probeTimeout})
	if err != nil {
		return fmt.Errorf("open XFRM netlink: %w", err)
	}
	defer k.Close()
	reqid, err := k.AllocReqid()
	if err != nil {
		return err
	}
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	spi, err := k.AllocSPI(ctx, kernel.SPIRequest{Src: src, Dst: dst, Mode: kernel.ModeTunnel, Reqid: reqid})
	if err != nil {
		return fmt.Errorf("allocate an SPI: %w", err)
	}
	key := make([]byte, 20) // AES-128 key and 4-octet salt (RFC 4106 §8.1)
	_, _ = rand.Read(key)
	sa := kernel.SA{Src: src, Dst: dst, SPI: spi, Mode: kernel.ModeTunnel, Reqid: reqid,
		Encr: kernel.EncrAESGCM16, EncrKey: key, ReplayWindow: 32}
	if err := k.AddSA(ctx, sa); err != nil {
		_ = k.DeleteSA(ctx, sa.ID()) // the larval SA of AllocSPI
		return fmt.Errorf("install an ESP state: %w", err)
	}
	if err := k.DeleteSA(ctx, sa.ID()); err != nil && !errors.Is(err, kernel.ErrNotFound) {
		return fmt.Errorf("remove the probe's ESP state: %w", err)
	}
	return nil
}

// throwAwayNetns creates a new network namespace and returns a handle to it without
// moving any thread into it for longer than the call: the calling thread enters it
// (unshare) and goes back at once. If it cannot go back, the thread stays locked and
// the runtime discards it when the goroutine ends.
func throwAwayNetns() (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		defer orig.Close()
		h, err := netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			c <- result{h: h}
			return
		}
		runtime.UnlockOSThread()
		c <- result{h: h}
	}()
	r := <-c
	return r.h, r.err
}
