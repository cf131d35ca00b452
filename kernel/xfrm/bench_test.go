//go:build linux

package xfrm_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/xfrm"
)

// benchVariants are the selector shapes the install benchmarks compare: /32 hosts
// (hashed by Linux), /24 subnets (inexact), and /24 subnets with the SPD hash
// thresholds lowered to 24 so that they are hashed too.
var benchVariants = []struct {
	name       string
	subnet     bool
	thresholds *xfrm.HashThresholds
	vmMax      int // largest table size for the (slow, emulated) VM benchmark
}{
	{"hosts", false, nil, 10000},
	// Inexact policies at 10,000 take tens of minutes to populate under emulation; the
	// host benchmark measures them to 10,000 at native speed.
	{"subnets", true, nil, 1000},
	{"subnets-hthresh24", true, &xfrm.HashThresholds{IPv4Local: 24, IPv4Remote: 24, IPv6Local: 128, IPv6Remote: 128}, 10000},
}

// BenchmarkAllocSPI measures XFRM_MSG_ALLOCSPI on the host's own kernel (no ESP needed
// for larval SAs); the SPIs are released again.
func BenchmarkAllocSPI(b *testing.B) {
	n := contractNS(b)
	k := openKernel(b, n)
	r, err := k.AllocReqid()
	if err != nil {
		b.Fatal(err)
	}
	req := kernel.SPIRequest{Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("192.0.2.1"), Mode: kernel.ModeTunnel, Reqid: r, Owner: kernel.Owner{Family: 1}}
	for b.Loop() {
		spi, err := k.AllocSPI(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		if err := k.DeleteSA(b.Context(), kernel.SAID{Dst: req.Dst, SPI: spi}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPolicyInstallDelete measures installing and deleting the in/out/fwd policies
// of one Child SA while 100, 1,000 and 10,000 Child SAs' policies are installed, on the
// host's own kernel (the policy half of BenchmarkVMChildSAInstallDelete, at native speed).
func BenchmarkPolicyInstallDelete(b *testing.B) {
	for _, v := range benchVariants {
		kind, subnet := v.name, v.subnet
		b.Run(kind, func(b *testing.B) {
			n := contractNS(b)
			k := openKernelWith(b, n, xfrm.Options{PolicyHashThresholds: v.thresholds})
			installed := 0
			for _, size := range []int{100, 1000, 10000} {
				for ; installed < size; installed++ {
					for _, p := range childPolicies(installed, kernel.ReqidMin, kernel.Owner{Family: 1}, subnet) {
						if err := k.AddPolicy(b.Context(), p); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.Run(fmt.Sprintf("installed=%d", size), func(b *testing.B) {
					for i := 0; b.Loop(); i++ {
						pols := childPolicies(20000+i%1000, kernel.ReqidMin+1, kernel.Owner{Family: 2}, subnet)
						for _, p := range pols {
							if err := k.AddPolicy(b.Context(), p); err != nil {
								b.Fatal(err)
							}
						}
						for _, p := range pols {
							if err := k.DeletePolicy(b.Context(), p.ID()); err != nil {
								b.Fatal(err)
							}
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "childpolicies/s")
				})
			}
		})
	}
}

// childPolicies returns the out, in and fwd policies of Child SA n.
func childPolicies(n int, r kernel.Reqid, owner kernel.Owner, subnet bool) []kernel.Policy {
	local, peer := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	mine := netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
	theirs := netip.AddrFrom4([4]byte{100, 64 | byte(n>>16), byte(n >> 8), byte(n)})
	bits := 32
	if subnet {
		mine = netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 0})
		theirs = netip.AddrFrom4([4]byte{100, 64 + byte(n>>8), byte(n), 0})
		bits = 24
	}
	out := kernel.Selector{Src: netip.PrefixFrom(mine, bits), Dst: netip.PrefixFrom(theirs, bits)}
	in := kernel.Selector{Src: out.Dst, Dst: out.Src}
	return []kernel.Policy{
		{Dir: kernel.DirOut, Selector: out, Priority: 1000, Owner: owner, Template: kernel.Template{Src: local, Dst: peer, Mode: kernel.ModeTunnel, Reqid: r}},
		{Dir: kernel.DirIn, Selector: in, Priority: 1000, Owner: owner, Template: kernel.Template{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: r}},
		{Dir: kernel.DirFwd, Selector: in, Priority: 1000, Owner: owner, Template: kernel.Template{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: r}},
	}
}
