//go:build linux

package xfrm_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/kerneltest"
	"github.com/cygnet-ipsec/cygnet/kernel/xfrm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNS is a network namespace a test created; it disappears when its handle closes.
type testNS struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

// newNS creates an anonymous network namespace with lo up. It needs root (CAP_SYS_ADMIN
// and CAP_NET_ADMIN): without it the test fails, never skips.
func newNS(t testing.TB) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("kernel/xfrm tests create network namespaces and need root (euid %d); run them as root or in the test VM", os.Geteuid())
	}
	ns, err := inNewNS()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	h, err := xfrm.NewHandle(ns)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle in namespace: %v", err)
	}
	n := &testNS{ns: ns, h: h}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return n
}

// inNewNS creates a namespace without leaving the calling thread in it.
func inNewNS() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), err
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), err
	}
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the new namespace: leave it locked so that Go
		// discards it when this goroutine ends.
		ns.Close()
		return netns.None(), fmt.Errorf("return to the original namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ns, nil
}

// do runs f on a thread inside the namespace.
func (n *testNS) do(f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("return to the original namespace: %w", err) // thread stays locked
	}
	runtime.UnlockOSThread()
	return ferr
}

// addLink adds an up interface with the given addresses: one end of a veth pair whose
// other end stays down in the same namespace (this host's kernel has no dummy
// interfaces), so that whatever is routed through it is sent and dropped.
func (n *testNS) addLink(t testing.TB, name string, addrs ...string) netlink.Link {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	link := &netlink.Veth{LinkAttrs: la, PeerName: name + "p"}
	if err := n.h.LinkAdd(link); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.h.AddrAdd(link, addr); err != nil {
			t.Fatalf("address %s on %s: %v", a, name, err)
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		t.Fatalf("%s up: %v", name, err)
	}
	return link
}

// route adds a route to dst through link.
func (n *testNS) route(t testing.TB, dst string, link netlink.Link, src netip.Addr) {
	t.Helper()
	_, ipnet, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{Dst: ipnet, LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK}
	if src.IsValid() {
		r.Src = src.AsSlice()
	}
	if err := n.h.RouteAdd(r); err != nil {
		t.Fatalf("route %s: %v", dst, err)
	}
}

// udpConn opens a UDP socket inside the namespace bound to src.
func (n *testNS) udpConn(t testing.TB, src netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := n.do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		return err
	})
	if err != nil {
		t.Fatalf("UDP socket on %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendUDP sends count datagrams; errors are ignored (a trap policy or an expired SA
// refuses packets): the tests look at what the kernel counted and reported.
func (n *testNS) sendUDP(t *testing.T, src, dst netip.Addr, port uint16, payload, count int) {
	c := n.udpConn(t, src)
	buf := make([]byte, payload)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, port))
	for range count {
		_, _ = c.WriteToUDP(buf, to)
	}
}

// contractNS prepares a namespace for kerneltest: 192.0.2.1/24 on an interface (the
// local end point), 198.51.100.1 as a local inner address, and a route to
// 203.0.113.0/24 through it, so outbound traffic meets the SPD.
func contractNS(t testing.TB) *testNS {
	n := newNS(t)
	d := n.addLink(t, "out0", "192.0.2.1/24", "198.51.100.1/32")
	n.route(t, "203.0.113.0/24", d, netip.MustParseAddr("198.51.100.1"))
	return n
}

func openKernel(t testing.TB, n *testNS) *xfrm.Kernel {
	t.Helper()
	return openKernelWith(t, n, xfrm.Options{})
}

func openKernelWith(t testing.TB, n *testNS, opts xfrm.Options) *xfrm.Kernel {
	t.Helper()
	k, err := xfrm.Open(n.ns, opts)
	if err != nil {
		t.Fatalf("xfrm.Open: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// newTarget is a kerneltest.Target over the real XFRM tables of a fresh namespace.
func newTarget(t *testing.T) *kerneltest.Target {
	n := contractNS(t)
	k := openKernel(t, n)
	return &kerneltest.Target{
		Kernel: k,
		Restart: func(t *testing.T) kernel.Kernel {
			// The old process died: its sockets are gone, its index with it.
			k.Close()
			return openKernel(t, n)
		},
		AddForeignSA:     func(t *testing.T, sa kernel.SA) error { return addForeignSA(n.h, sa) },
		AddForeignPolicy: func(t *testing.T, p kernel.Policy) error { return addForeignPolicy(n.h, p) },
		Elapse:           func(t *testing.T, d time.Duration) {}, // the kernel's clock runs by itself
		SendUDP:          n.sendUDP,
		EventTimeout:     15 * time.Second,
	}
}

// addForeignSA installs an SA with vishvananda/netlink's own encoder, the way another
// daemon would (and a cross-check of this package's decoder). Only AES-GCM is needed.
func addForeignSA(h *netlink.Handle, sa kernel.SA) error {
	st := &netlink.XfrmState{
		Src: sa.Src.AsSlice(), Dst: sa.Dst.AsSlice(), Proto: netlink.XFRM_PROTO_ESP,
		Mode: netlink.XFRM_MODE_TUNNEL, Spi: int(sa.SPI), Reqid: int(sa.Reqid),
		ReplayWindow: int(sa.ReplayWindow),
		Aead:         &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: sa.EncrKey, ICVLen: 128},
	}
	if sa.Encr != kernel.EncrAESGCM16 || sa.Mode != kernel.ModeTunnel {
		return fmt.Errorf("foreign SA: only tunnel-mode AES-GCM is supported here")
	}
	return h.XfrmStateAdd(st)
}

func addForeignPolicy(h *netlink.Handle, p kernel.Policy) error {
	dir := map[kernel.Dir]netlink.Dir{kernel.DirIn: netlink.XFRM_DIR_IN, kernel.DirOut: netlink.XFRM_DIR_OUT, kernel.DirFwd: netlink.XFRM_DIR_FWD}[p.Dir]
	mode := netlink.XFRM_MODE_TUNNEL
	if p.Template.Mode == kernel.ModeTransport {
		mode = netlink.XFRM_MODE_TRANSPORT
	}
	pol := &netlink.XfrmPolicy{
		Src: prefixNet(p.Selector.Src), Dst: prefixNet(p.Selector.Dst), Proto: netlink.Proto(p.Selector.Proto),
		SrcPort: int(p.Selector.SrcPort), DstPort: int(p.Selector.DstPort),
		Dir: dir, Priority: int(p.Priority),
		Tmpls: []netlink.XfrmPolicyTmpl{{
			Src: p.Template.Src.AsSlice(), Dst: p.Template.Dst.AsSlice(), Proto: netlink.XFRM_PROTO_ESP,
			Mode: mode, Reqid: int(p.Template.Reqid),
		}},
	}
	return h.XfrmPolicyAdd(pol)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
