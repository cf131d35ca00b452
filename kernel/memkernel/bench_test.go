package memkernel_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

// BenchmarkAdvance100k measures one clock tick over 100,000 SAs of which none is due:
// the daemon without ESP advances the in-memory kernel every second.
func BenchmarkAdvance100k(b *testing.B) {
	k := memkernel.New(memkernel.Options{Now: t0})
	for i := range 100_000 {
		sa := gcm(kernel.SPI(0x10000+i), kernel.ReqidMin, kernel.Owner{Family: kernel.FamilyID(i)})
		sa.Limits = kernel.Limits{Soft: kernel.Lifetime{Time: 3000 * time.Second}, Hard: kernel.Lifetime{Time: 3600 * time.Second}}
		if err := k.AddSA(context.Background(), sa); err != nil {
			b.Fatal(err)
		}
	}
	now := t0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		k.Advance(now)
	}
}

// BenchmarkChildInstallDelete is BenchmarkVMChildSAInstallDelete's cycle on the
// in-memory kernel with 10,000 Child SAs installed: SPI, SA pair, three policies,
// DeleteOwned.
func BenchmarkChildInstallDelete(b *testing.B) {
	k := memkernel.New(memkernel.Options{Now: t0})
	ctx := context.Background()
	install := func(n int, f kernel.FamilyID) {
		o := kernel.Owner{Family: f}
		spi, err := k.AllocSPI(ctx, kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Owner: o})
		if err != nil {
			b.Fatal(err)
		}
		in := gcm(spi, kernel.ReqidMin, o)
		in.Src, in.Dst = peer, local
		out := gcm(kernel.SPI(0x100000+n), kernel.ReqidMin, o)
		for _, sa := range []kernel.SA{in, out} {
			if err := k.AddSA(ctx, sa); err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range []kernel.Dir{kernel.DirOut, kernel.DirIn, kernel.DirFwd} {
			p := kernel.Policy{Dir: d, Owner: o, Priority: 1,
				Selector: kernel.Selector{Src: kernel.AnyPrefix(local), Dst: hostPrefix(n)},
				Template: kernel.Template{Src: local, Dst: peer, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin}}
			if err := k.AddPolicy(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	for n := range 10_000 {
		install(n, 1)
	}
	for i := 0; b.Loop(); i++ {
		install(20_000+i%1000, 2)
		if err := k.DeleteOwned(ctx, 2); err != nil {
			b.Fatal(err)
		}
	}
}

func hostPrefix(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), 32)
}
