//go:build linux && vm

// Tests that need a kernel with ESP. TestInVM (xfrm_launch_test.go) compiles them with
// -tags vm and runs them as root in the test VM (kernel/vmtest); they also run as root
// on any ESP-capable Linux: go test -tags vm -run '^TestVM' ./kernel/xfrm.

package xfrm_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/kerneltest"
	"github.com/cygnet-ipsec/cygnet/kernel/xfrm"
	"github.com/vishvananda/netlink"
)

// TestVMContract holds kernel/xfrm to the whole contract, SAs included, on a kernel
// with ESP.
func TestVMContract(t *testing.T) {
	requireESP(t)
	kerneltest.Run(t, newTarget)
}

// requireESP fails the test at once, with the way out, on a kernel without ESP.
func requireESP(t *testing.T) {
	t.Helper()
	n := newNS(t)
	err := addForeignSA(n.h, kernel.SA{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SPI: 0x100,
		Mode: kernel.ModeTunnel, Reqid: 1, Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20),
	})
	if err != nil {
		t.Fatalf("this kernel cannot install an ESP SA (%v): the -tags vm tests need ESP; on a host without it run them in the test VM: go test -run TestInVM ./kernel/xfrm", err)
	}
}

// tunnelSite is one end of a tunnel: a namespace with its Kernel.
type tunnelSite struct {
	name  string
	ns    *testNS
	k     *xfrm.Kernel
	outer netip.Addr   // on the veth
	inner netip.Addr   // on lo: the protected traffic's address
	net   netip.Prefix // the protected subnet behind this site
}

// twoSites joins two namespaces with a veth pair: A (192.0.2.1, inner 198.51.100.1)
// and B (192.0.2.2, inner 203.0.113.1), each routing the other's inner subnet over the
// veth.
func twoSites(t *testing.T) (a, b *tunnelSite) {
	a = &tunnelSite{name: "A", ns: newNS(t), outer: netip.MustParseAddr("192.0.2.1"), inner: netip.MustParseAddr("198.51.100.1"), net: netip.MustParsePrefix("198.51.100.0/24")}
	b = &tunnelSite{name: "B", ns: newNS(t), outer: netip.MustParseAddr("192.0.2.2"), inner: netip.MustParseAddr("203.0.113.1"), net: netip.MustParsePrefix("203.0.113.0/24")}
	la := netlink.NewLinkAttrs()
	la.Name = "va"
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "vb", PeerNamespace: netlink.NsFd(int(b.ns.ns))}
	if err := a.ns.h.LinkAdd(veth); err != nil {
		t.Fatalf("veth va/vb across namespaces: %v", err)
	}
	for _, s := range []struct {
		site       *tunnelSite
		dev        string
		peerSubnet string
	}{{a, "va", "203.0.113.0/24"}, {b, "vb", "198.51.100.0/24"}} {
		h := s.site.ns.h
		link, err := h.LinkByName(s.dev)
		if err != nil {
			t.Fatalf("%s: link %s: %v", s.site.name, s.dev, err)
		}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(s.site.outer, 24))}); err != nil {
			t.Fatalf("%s: address: %v", s.site.name, err)
		}
		lo, err := h.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(lo, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(s.site.inner, 32))}); err != nil {
			t.Fatalf("%s: inner address: %v", s.site.name, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatalf("%s: %s up: %v", s.site.name, s.dev, err)
		}
		s.site.ns.route(t, s.peerSubnet, link, s.site.inner)
		s.site.k = openKernel(t, s.site.ns)
	}
	return a, b
}

// childPair installs a tunnel-mode Child SA between the sites as IKE would: each side
// allocates the SPI of its inbound SA, then both install both SAs (AES-GCM-128, keys
// shared) and in/out/fwd policies between the inner subnets. limitsAB applies to the
// A→B SA on A.
func childPair(t *testing.T, a, b *tunnelSite, family kernel.FamilyID, limitsAB kernel.Limits) (ab, ba kernel.SA) {
	t.Helper()
	ctx := t.Context()
	owner := kernel.Owner{Family: family, Child: 1}
	ra, err := a.k.AllocReqid()
	mustOK(t, err)
	rb, err := b.k.AllocReqid()
	mustOK(t, err)
	spiAtA, err := a.k.AllocSPI(ctx, kernel.SPIRequest{Src: b.outer, Dst: a.outer, Mode: kernel.ModeTunnel, Reqid: ra, Owner: owner})
	mustOK(t, err)
	spiAtB, err := b.k.AllocSPI(ctx, kernel.SPIRequest{Src: a.outer, Dst: b.outer, Mode: kernel.ModeTunnel, Reqid: rb, Owner: owner})
	mustOK(t, err)
	keyAB, keyBA := seqKey(20, 0x10), seqKey(20, 0x80)
	sa := func(src, dst netip.Addr, spi kernel.SPI, r kernel.Reqid, k []byte) kernel.SA {
		return kernel.SA{Src: src, Dst: dst, SPI: spi, Mode: kernel.ModeTunnel, Reqid: r, Owner: owner,
			Encr: kernel.EncrAESGCM16, EncrKey: k, ReplayWindow: 64}
	}
	ab = sa(a.outer, b.outer, spiAtB, ra, keyAB)
	ab.Limits = limitsAB
	ba = sa(b.outer, a.outer, spiAtA, ra, keyBA)
	for _, s := range []kernel.SA{ab, ba} {
		mustOK(t, a.k.AddSA(ctx, s))
	}
	for _, s := range []kernel.SA{sa(a.outer, b.outer, spiAtB, rb, keyAB), sa(b.outer, a.outer, spiAtA, rb, keyBA)} {
		mustOK(t, b.k.AddSA(ctx, s))
	}
	for _, side := range []struct {
		site, peer *tunnelSite
		r          kernel.Reqid
	}{{a, b, ra}, {b, a, rb}} {
		out := kernel.Selector{Src: side.site.net, Dst: side.peer.net}
		in := kernel.Selector{Src: side.peer.net, Dst: side.site.net}
		for _, p := range []kernel.Policy{
			{Dir: kernel.DirOut, Selector: out, Priority: 1000, Owner: owner, Template: kernel.Template{Src: side.site.outer, Dst: side.peer.outer, Mode: kernel.ModeTunnel, Reqid: side.r}},
			{Dir: kernel.DirIn, Selector: in, Priority: 1000, Owner: owner, Template: kernel.Template{Src: side.peer.outer, Dst: side.site.outer, Mode: kernel.ModeTunnel, Reqid: side.r}},
			{Dir: kernel.DirFwd, Selector: in, Priority: 1000, Owner: owner, Template: kernel.Template{Src: side.peer.outer, Dst: side.site.outer, Mode: kernel.ModeTunnel, Reqid: side.r}},
		} {
			mustOK(t, side.site.k.AddPolicy(ctx, p))
		}
	}
	return ab, ba
}

func seqKey(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)*3
	}
	return k
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// exchange sends n datagrams of size bytes from A's inner address to B's and echoes
// each back, and fails unless all arrive intact.
func exchange(t *testing.T, a, b *tunnelSite, n, size int) {
	t.Helper()
	ca := a.ns.udpConn(t, a.inner)
	cb := b.ns.udpConn(t, b.inner)
	// Deadlines only bound a failure; nothing depends on how long the exchange takes.
	deadline := time.Now().Add(20 * time.Second)
	mustOK(t, ca.SetReadDeadline(deadline))
	mustOK(t, cb.SetReadDeadline(deadline))
	to := cb.LocalAddr().(*net.UDPAddr)
	buf := make([]byte, 2048)
	for i := range n {
		msg := bytes.Repeat([]byte{byte(i)}, size)
		if _, err := ca.WriteToUDP(msg, to); err != nil {
			t.Fatalf("datagram %d A→B: %v", i, err)
		}
		got, from, err := cb.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("datagram %d did not reach B through the tunnel: %v", i, err)
		}
		if !bytes.Equal(buf[:got], msg) || from.AddrPort().Addr().Unmap() != a.inner {
			t.Fatalf("datagram %d: B got %d bytes from %v", i, got, from)
		}
		if _, err := cb.WriteToUDP(msg, from); err != nil {
			t.Fatalf("datagram %d B→A: %v", i, err)
		}
		if got, _, err := ca.ReadFromUDP(buf); err != nil || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("echo %d did not reach A through the tunnel: %v", i, err)
		}
	}
}

// TestVMTunnelTraffic installs a tunnel-mode Child SA pair and its policies between two
// namespaces, sends traffic through it both ways, watches the counters rise (GetSA and
// ListSACounters, with the kernel's use times) and a soft
// expiry arrive after a byte limit, then removes everything and sees the tables empty.
func TestVMTunnelTraffic(t *testing.T) {
	requireESP(t)
	a, b := twoSites(t)
	ctx := t.Context()
	sub := a.k.Subscribe(16)
	defer sub.Close()
	const family = 11
	ab, ba := childPair(t, a, b, family, kernel.Limits{Soft: kernel.Lifetime{Bytes: 6000}, Hard: kernel.Lifetime{Bytes: 1 << 30}})

	const n, size = 20, 100
	exchange(t, a, b, n, size)
	for _, c := range []struct {
		site *tunnelSite
		id   kernel.SAID
		what string
	}{{a, ab.ID(), "A's outbound"}, {b, ab.ID(), "B's inbound"}, {b, ba.ID(), "B's outbound"}, {a, ba.ID(), "A's inbound"}} {
		_, cnt, err := c.site.k.GetSA(ctx, c.id)
		mustOK(t, err)
		if cnt.Packets != n || cnt.Bytes < n*size {
			t.Errorf("%s SA %s counted %+v, want %d packets and at least %d bytes", c.what, c.id, cnt, n, n*size)
		}
		t.Logf("%s SA %s: %d packets, %d bytes", c.what, c.id, cnt.Packets, cnt.Bytes)
	}
	// The counters dump reads the same counters, and the kernel's use times, for the
	// outbound and the inbound SA alike.
	for _, s := range []*tunnelSite{a, b} {
		cs, err := s.k.ListSACounters(ctx)
		mustOK(t, err)
		if len(cs) != 2 {
			t.Fatalf("%s: ListSACounters lists %d SAs, want 2: %+v", s.name, len(cs), cs)
		}
		for _, c := range cs {
			_, cnt, err := s.k.GetSA(ctx, c.ID)
			mustOK(t, err)
			if c.Counters != cnt || c.Reqid != ab.Reqid {
				t.Errorf("%s: ListSACounters %s: reqid %s %+v; GetSA: reqid %s %+v", s.name, c.ID, c.Reqid, c.Counters, ab.Reqid, cnt)
			}
			// Linux 6.1 does not set an SA's last use for ESP traffic: LastUsed may be zero.
			if c.Added.IsZero() || c.Used.IsZero() || c.Used.Before(c.Added) || (!c.LastUsed.IsZero() && c.LastUsed.Before(c.Used)) {
				t.Errorf("%s: %s after traffic: added %v, first used %v, last used %v", s.name, c.ID, c.Added, c.Used, c.LastUsed)
			}
		}
	}

	// 20 datagrams of 128 bytes (with IP and UDP headers) are below the soft limit of
	// 6000 bytes; 40 more are above it.
	select {
	case ev := <-sub.C:
		t.Fatalf("event before the soft limit: %v", ev)
	default:
	}
	exchange(t, a, b, 40, size)
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case ev := <-sub.C:
		if ev.Kind != kernel.EventSoftExpire || ev.SA != ab.ID() || ev.Owner != ab.Owner || ev.Reqid != ab.Reqid {
			t.Fatalf("got %v (owner %v), want soft expiry of %s owned by %v", ev, ev.Owner, ab.ID(), ab.Owner)
		}
	case <-timer.C:
		t.Fatal("no soft expiry after the byte limit")
	}
	_, cnt, err := a.k.GetSA(ctx, ab.ID())
	mustOK(t, err)
	if cnt.Bytes < 6000 {
		t.Errorf("soft expiry with %d bytes counted, limit 6000", cnt.Bytes)
	}

	for _, s := range []*tunnelSite{a, b} {
		mustOK(t, s.k.DeleteOwned(ctx, family))
		tb, err := s.k.Snapshot(ctx)
		mustOK(t, err)
		if len(tb.SAs)+len(tb.Policies) != 0 {
			t.Errorf("%s: tables not empty after DeleteOwned:\n%s", s.name, tb)
		}
		raw, err := s.ns.h.XfrmStateList(netlink.FAMILY_ALL)
		mustOK(t, err)
		pols, err := s.ns.h.XfrmPolicyList(netlink.FAMILY_ALL)
		mustOK(t, err)
		if len(raw)+len(pols) != 0 {
			t.Errorf("%s: netlink lists %d SAs and %d policies after DeleteOwned", s.name, len(raw), len(pols))
		}
	}
}

// TestVMCrashCleanup: a daemon installs Child SAs and dies; the next one removes what
// it left, and never an SA or policy that another daemon installed.
func TestVMCrashCleanup(t *testing.T) {
	requireESP(t)
	n := contractNS(t)
	ctx := t.Context()
	first := openKernel(t, n)
	peer := netip.MustParseAddr("192.0.2.2")
	local := netip.MustParseAddr("192.0.2.1")
	for i := range 5 {
		mustOK(t, installChild(t, first, i, kernel.Owner{Family: kernel.FamilyID(i + 1)}, false))
	}
	r, err := first.AllocReqid()
	mustOK(t, err)
	_, err = first.AllocSPI(ctx, kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: r, Owner: kernel.Owner{Family: 9}})
	mustOK(t, err)

	// Another daemon's SA and policy, installed with vishvananda/netlink directly.
	foreignKey := seqKey(20, 0x42)
	foreign := &netlink.XfrmState{
		Src: peer.AsSlice(), Dst: local.AsSlice(), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
		Spi: 0x7777, Reqid: 7, ReplayWindow: 32,
		Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: foreignKey, ICVLen: 128},
	}
	mustOK(t, n.h.XfrmStateAdd(foreign))
	foreignPol := kernel.Policy{
		Dir: kernel.DirOut, Priority: 5,
		Selector: kernel.Selector{Src: netip.MustParsePrefix("10.99.0.0/16"), Dst: netip.MustParsePrefix("10.98.0.0/16")},
		Template: kernel.Template{Src: local, Dst: peer, Mode: kernel.ModeTunnel, Reqid: 7},
	}
	mustOK(t, addForeignPolicy(n.h, foreignPol))

	// The daemon dies: its sockets close, its memory is gone.
	mustOK(t, first.Close())

	second := openKernel(t, n)
	c, err := second.CleanupStale(ctx)
	mustOK(t, err)
	if want := (kernel.Cleanup{SAs: 5*2 + 1, Policies: 5 * 3}); c != want {
		t.Errorf("CleanupStale removed %+v, want %+v", c, want)
	}
	tb, err := second.Snapshot(ctx)
	mustOK(t, err)
	if len(tb.SAs) != 1 || tb.SAs[0].SA.SPI != 0x7777 || len(tb.Policies) != 1 || tb.Policies[0].Template.Reqid != 7 {
		t.Fatalf("after CleanupStale, want only the foreign SA and policy:\n%s", tb)
	}
	got, err := n.h.XfrmStateGet(&netlink.XfrmState{Dst: local.AsSlice(), Spi: 0x7777, Proto: netlink.XFRM_PROTO_ESP})
	mustOK(t, err)
	if got.Aead == nil || !bytes.Equal(got.Aead.Key, foreignKey) || got.Reqid != 7 {
		t.Errorf("foreign SA changed: reqid %d, aead %v", got.Reqid, got.Aead != nil)
	}
}

// installChild installs Child SA number n the way a child actor does: reqid, SPI for
// the inbound SA, both SAs, in/out/fwd policies. Selectors are /32 hosts, or /24
// subnets with subnet set.
func installChild(t testing.TB, k kernel.Kernel, n int, owner kernel.Owner, subnet bool) error {
	ctx := t.Context()
	local, peer := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	r, err := k.AllocReqid()
	if err != nil {
		return err
	}
	spiIn, err := k.AllocSPI(ctx, kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: r, Owner: owner})
	if err != nil {
		return err
	}
	sa := kernel.SA{Src: peer, Dst: local, SPI: spiIn, Mode: kernel.ModeTunnel, Reqid: r, Owner: owner,
		Encr: kernel.EncrAESGCM16, EncrKey: seqKey(20, byte(n)), ReplayWindow: 64}
	if err := k.AddSA(ctx, sa); err != nil {
		return err
	}
	sa.Src, sa.Dst, sa.SPI, sa.ReplayWindow = local, peer, kernel.SPI(0x01000000+n), 0
	if err := k.AddSA(ctx, sa); err != nil {
		return err
	}
	for _, p := range childPolicies(n, r, owner, subnet) {
		if err := k.AddPolicy(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkVMChildSAInstallDelete measures installing and deleting one Child SA (reqid,
// SPI, SA pair, in/out/fwd policies; then DeleteOwned) while 100, 1,000 and 10,000
// other Child SAs are installed, with /32 host selectors, with /24 subnet selectors
// (which Linux keeps outside its policy hash table), and with /24 subnets hashed by
// lowering the SPD hash thresholds. In the VM, absolute figures are those of software
// emulation (TCG): compare sizes and variants, not with native numbers.
func BenchmarkVMChildSAInstallDelete(b *testing.B) {
	for _, v := range benchVariants {
		kind, subnet := v.name, v.subnet
		b.Run(kind, func(b *testing.B) {
			n := contractNS(b)
			k := openKernelWith(b, n, xfrm.Options{PolicyHashThresholds: v.thresholds})
			installed := 0
			for _, size := range []int{100, 1000, 10000} {
				if size > v.vmMax {
					b.Logf("%s: %d Child SAs not measured in the VM (see BenchmarkPolicyInstallDelete)", kind, size)
					break
				}
				start := time.Now()
				for ; installed < size; installed++ {
					if err := installChild(b, k, installed, kernel.Owner{Family: 1}, subnet); err != nil {
						b.Fatalf("populate child %d: %v", installed, err)
					}
				}
				b.Logf("%s: populated to %d Child SAs in %v", kind, size, time.Since(start).Round(time.Millisecond))
				b.Run(fmt.Sprintf("installed=%d", size), func(b *testing.B) {
					for i := 0; b.Loop(); i++ {
						family := kernel.FamilyID(1000 + i)
						if err := installChild(b, k, 20000+i%1000, kernel.Owner{Family: family}, subnet); err != nil {
							b.Fatal(err)
						}
						if err := k.DeleteOwned(b.Context(), family); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "childsa/s")
				})
			}
		})
	}
}

// BenchmarkVMListSACounters compares the counters dump (ListSACounters: one GETSA dump,
// keys not copied) with Snapshot (GETSA and GETPOLICY dumps, everything decoded) with
// 5,000 Child SAs installed (10,000 SAs, 15,000 policies), as list-sas reads them. Under
// emulation (TCG): compare the two, not with native numbers.
func BenchmarkVMListSACounters(b *testing.B) {
	const children = 5000
	n := contractNS(b)
	k := openKernel(b, n)
	start := time.Now()
	for i := range children {
		if err := installChild(b, k, i, kernel.Owner{Family: kernel.FamilyID(i + 1)}, false); err != nil {
			b.Fatalf("Child SA %d: %v", i, err)
		}
	}
	b.Logf("%d Child SAs installed in %v", children, time.Since(start).Round(time.Millisecond))
	ctx := b.Context()
	b.Run("counters", func(b *testing.B) {
		for b.Loop() {
			cs, err := k.ListSACounters(ctx)
			if err != nil || len(cs) != 2*children {
				b.Fatalf("ListSACounters: %d SAs, %v", len(cs), err)
			}
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			tb, err := k.Snapshot(ctx)
			if err != nil || len(tb.SAs) != 2*children {
				b.Fatalf("Snapshot: %d SAs, %v", len(tb.SAs), err)
			}
		}
	})
}
