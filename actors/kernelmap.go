package actors

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/wire"
)

// This file turns the core's description of a Child SA (ike.ChildSA) into kernel
// objects: the inbound and outbound ESP SAs (RFC 4303) and the policies that send the
// selected traffic through them (RFC 4301 §4.4.1). It is pure: the child actor carries
// out the plan.

// errUnsupportedChild marks a Child SA the kernel mapping cannot express; the child
// fails alone (ChildInstallFailed).
var errUnsupportedChild = errors.New("child SA not expressible in the kernel")

// childPlan is what one Child SA puts into the kernel.
type childPlan struct {
	in, out  kernel.SA
	policies []kernel.Policy // empty for a rekeyed Child SA: its predecessor's stay
}

// planChild maps sa to kernel objects tagged with reqid and owned by (family, sa.Ref).
// withPolicies is false for a Child SA that replaces one whose policies it inherits.
func planChild(family kernel.FamilyID, sa *ike.ChildSA, reqid kernel.Reqid, withPolicies bool) (childPlan, error) {
	var p childPlan
	mode := kernel.ModeTunnel
	if sa.Mode == ike.ModeTransport {
		mode = kernel.ModeTransport
	}
	local, remote := sa.Local.Unmap(), sa.Remote.Unmap()
	owner := kernel.Owner{Family: family, Child: uint64(sa.Ref)}
	limits := kernel.Limits{
		Soft: kernel.Lifetime{Bytes: sa.Lifetime.SoftBytes, Packets: sa.Lifetime.SoftPackets, Time: wholeSeconds(sa.Lifetime.SoftTime)},
		Hard: kernel.Lifetime{Bytes: sa.Lifetime.HardBytes, Packets: sa.Lifetime.HardPackets, Time: wholeSeconds(sa.Lifetime.HardTime)},
	}
	mk := func(src, dst netip.Addr, k *ike.ESPKeys, srcPort, dstPort uint16) (kernel.SA, error) {
		encr, integ, err := espTransforms(k)
		if err != nil {
			return kernel.SA{}, err
		}
		s := kernel.SA{
			Src: src, Dst: dst, SPI: kernel.SPI(k.SPI), Mode: mode, Reqid: reqid, Owner: owner,
			Encr: encr, EncrKey: k.EncrKey, Integ: integ, IntegKey: k.IntegKey,
			ESN: sa.ESN, ReplayWindow: sa.ReplayWindow, Limits: limits,
		}
		if s.ESN && s.ReplayWindow == 0 {
			s.ReplayWindow = 1
		}
		if sa.Encap {
			s.Encap = &kernel.Encap{SrcPort: srcPort, DstPort: dstPort}
		}
		return s, nil
	}
	var err error
	if p.in, err = mk(remote, local, &sa.Inbound, sa.RemotePort, sa.LocalPort); err != nil {
		return p, fmt.Errorf("inbound SA %08x: %w", sa.Inbound.SPI, err)
	}
	if p.out, err = mk(local, remote, &sa.Outbound, sa.LocalPort, sa.RemotePort); err != nil {
		return p, fmt.Errorf("outbound SA %08x: %w", sa.Outbound.SPI, err)
	}
	if !withPolicies {
		return p, nil
	}
	polOwner := kernel.Owner{Family: family, Child: uint64(sa.Ref)}
	for _, lts := range sa.LocalTS {
		lsels, err := tsSelectors(lts)
		if err != nil {
			return p, fmt.Errorf("local TS %v: %w", lts, err)
		}
		for _, rts := range sa.RemoteTS {
			rsels, err := tsSelectors(rts)
			if err != nil {
				return p, fmt.Errorf("remote TS %v: %w", rts, err)
			}
			for _, l := range lsels {
				for _, r := range rsels {
					if l.prefix.Addr().Is4() != r.prefix.Addr().Is4() {
						continue // a v4 selector never pairs with a v6 one
					}
					if l.proto != r.proto && l.proto != 0 && r.proto != 0 {
						continue
					}
					proto := max(l.proto, r.proto)
					out := kernel.Selector{Src: l.prefix, Dst: r.prefix, Proto: proto, SrcPort: l.port, DstPort: r.port}
					in := kernel.Selector{Src: r.prefix, Dst: l.prefix, Proto: proto, SrcPort: r.port, DstPort: l.port}
					prio := policyPriority(l.prefix, r.prefix, proto, l.port, r.port)
					tmplOut := kernel.Template{Mode: mode, Reqid: reqid}
					tmplIn := kernel.Template{Mode: mode, Reqid: reqid}
					if mode == kernel.ModeTunnel {
						tmplOut.Src, tmplOut.Dst = local, remote
						tmplIn.Src, tmplIn.Dst = remote, local
					}
					p.policies = append(p.policies,
						kernel.Policy{Dir: kernel.DirOut, Selector: out, Priority: prio, Template: tmplOut, Owner: polOwner},
						kernel.Policy{Dir: kernel.DirIn, Selector: in, Priority: prio, Template: tmplIn, Owner: polOwner})
					if mode == kernel.ModeTunnel {
						// Traffic routed through the host to the protected network.
						p.policies = append(p.policies,
							kernel.Policy{Dir: kernel.DirFwd, Selector: in, Priority: prio, Template: tmplIn, Owner: polOwner})
					}
				}
			}
		}
	}
	if len(p.policies) == 0 {
		return p, fmt.Errorf("traffic selectors %v=>%v pair no address family: %w", sa.LocalTS, sa.RemoteTS, errUnsupportedChild)
	}
	return p, nil
}

// policyPriority orders policies like strongSwan's: more specific selectors get lower
// (winning) values. Base 0x40000 leaves room above for trap policies.
func policyPriority(src, dst netip.Prefix, proto uint8, sport, dport uint16) uint32 {
	prio := uint32(0x40000)
	prio -= uint32(src.Bits()+dst.Bits()) * 512
	if proto != 0 {
		prio -= 256
	}
	if sport != 0 {
		prio -= 64
	}
	if dport != 0 {
		prio -= 64
	}
	return prio
}

func wholeSeconds(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	s := d.Truncate(time.Second)
	if s == 0 {
		s = time.Second
	}
	return s
}

// espTransforms maps the negotiated ESP transforms (RFC 7296 §3.3.2) to the kernel's.
func espTransforms(k *ike.ESPKeys) (kernel.Encr, kernel.Integ, error) {
	var encr kernel.Encr
	switch k.Encr {
	case wire.EncrAESGCM16:
		encr = kernel.EncrAESGCM16
	case wire.EncrChaCha20Poly1305:
		encr = kernel.EncrChaCha20Poly1305
	case wire.EncrAESCBC:
		encr = kernel.EncrAESCBC
	default:
		return 0, 0, fmt.Errorf("encryption transform %d: %w", k.Encr, errUnsupportedChild)
	}
	integ := kernel.IntegNone
	switch k.Integ {
	case wire.IntegNone:
	case wire.IntegHMACSHA2_256_128:
		integ = kernel.IntegHMACSHA256128
	case wire.IntegHMACSHA2_384_192:
		integ = kernel.IntegHMACSHA384192
	case wire.IntegHMACSHA2_512_256:
		integ = kernel.IntegHMACSHA512256
	default:
		return 0, 0, fmt.Errorf("integrity transform %d: %w", k.Integ, errUnsupportedChild)
	}
	return encr, integ, nil
}

// tsSel is one kernel-expressible piece of a traffic selector.
type tsSel struct {
	prefix netip.Prefix
	proto  uint8
	port   uint16 // 0 = any
}

// tsSelectors expresses a traffic selector (RFC 7296 §3.13.1) as kernel selectors: the
// address range becomes the prefixes that cover it exactly; a port range must be all
// ports or a single port (XFRM selectors carry one port and a mask).
func tsSelectors(ts ike.TrafficSelector) ([]tsSel, error) {
	var port uint16
	switch {
	case ts.StartPort == 0 && ts.EndPort == 0xffff:
	case ts.StartPort == ts.EndPort:
		port = ts.StartPort
	default:
		return nil, fmt.Errorf("port range %d-%d: %w", ts.StartPort, ts.EndPort, errUnsupportedChild)
	}
	if port != 0 && ts.Protocol == 0 {
		return nil, fmt.Errorf("a port without a protocol: %w", errUnsupportedChild)
	}
	prefixes, err := rangePrefixes(ts.Start.Unmap(), ts.End.Unmap())
	if err != nil {
		return nil, err
	}
	out := make([]tsSel, len(prefixes))
	for i, p := range prefixes {
		out[i] = tsSel{prefix: p, proto: ts.Protocol, port: port}
	}
	return out, nil
}

// maxRangePrefixes bounds the decomposition of an address range.
const maxRangePrefixes = 64

// rangePrefixes returns the smallest list of prefixes whose union is [start, end].
func rangePrefixes(start, end netip.Addr) ([]netip.Prefix, error) {
	if !start.IsValid() || !end.IsValid() || start.BitLen() != end.BitLen() || end.Less(start) {
		return nil, fmt.Errorf("address range %v..%v: %w", start, end, errUnsupportedChild)
	}
	if p, ok := (ike.TrafficSelector{Start: start, End: end}).Prefix(); ok {
		return []netip.Prefix{p}, nil
	}
	bits := start.BitLen()
	toInt := func(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }
	fromInt := func(n *big.Int) netip.Addr {
		b := make([]byte, bits/8)
		n.FillBytes(b)
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	lo, hi := toInt(start), toInt(end)
	one := big.NewInt(1)
	var out []netip.Prefix
	for lo.Cmp(hi) <= 0 {
		// The largest block aligned at lo that does not pass hi.
		size := 0
		for size < bits {
			blk := new(big.Int).Lsh(one, uint(size+1))
			if new(big.Int).Mod(lo, blk).Sign() != 0 {
				break
			}
			last := new(big.Int).Add(lo, new(big.Int).Sub(blk, one))
			if last.Cmp(hi) > 0 {
				break
			}
			size++
		}
		out = append(out, netip.PrefixFrom(fromInt(lo), bits-size))
		if len(out) > maxRangePrefixes {
			return nil, fmt.Errorf("address range %v..%v needs more than %d prefixes: %w", start, end, maxRangePrefixes, errUnsupportedChild)
		}
		lo.Add(lo, new(big.Int).Lsh(one, uint(size)))
	}
	return out, nil
}
