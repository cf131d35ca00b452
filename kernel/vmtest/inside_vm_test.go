//go:build cygnet_vm

// These tests run inside the VM (see TestVM in vm_test.go, which builds this package
// with -tags cygnet_vm and boots it). They check the environment Run promises: root,
// CYGNET_VM=1, the mounts, the ESP modules, and that the kernel really installs ESP
// SAs and carries ESP traffic between two network namespaces.

package vmtest

import (
	"bytes"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestInsideEnvironment(t *testing.T) {
	if got := os.Getenv("CYGNET_VM"); got != "1" {
		t.Errorf("CYGNET_VM=%q, want 1", got)
	}
	if uid := os.Geteuid(); uid != 0 {
		t.Errorf("euid %d, want 0 (root)", uid)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatalf("read /proc/mounts: %v", err)
	}
	for _, want := range []string{" /proc proc ", " /sys sysfs ", " /dev devtmpfs ", " /tmp tmpfs ", " /run tmpfs ", " /dev/shm tmpfs "} {
		if !strings.Contains(string(mounts), want) {
			t.Errorf("no mount %q in /proc/mounts:\n%s", want, mounts)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/probe", []byte("x"), 0o600); err != nil {
		t.Errorf("TempDir not writable: %v", err)
	}
	if fi, err := os.Stat("/var/run/netns"); err != nil || !fi.IsDir() {
		t.Errorf("/var/run/netns is not a directory: %v", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatalf("lo: %v", err)
	}
	if lo.Flags&net.FlagUp == 0 {
		t.Errorf("lo is down")
	}
}

func TestInsideESPModulesLoaded(t *testing.T) {
	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatalf("read /proc/modules: %v", err)
	}
	loaded := make(map[string]bool)
	for line := range strings.SplitSeq(string(mods), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			loaded[f[0]] = true
		}
	}
	for _, m := range []string{"xfrm_user", "esp4", "esp6", "veth", "drbg", "gcm", "chacha20poly1305", "authencesn", "xfrm_interface"} {
		if !loaded[m] {
			t.Errorf("module %s not loaded", m)
		}
	}
	// Every module /init was told to load is loaded.
	order, err := os.ReadFile("/lib/modules/cygnet/order")
	if err != nil {
		t.Fatalf("read the module order: %v", err)
	}
	for _, m := range strings.Fields(string(order)) {
		if !loaded[m] {
			t.Errorf("module %s (in /lib/modules/cygnet/order) not loaded", m)
		}
	}
	if _, err := os.Stat("/proc/net/xfrm_stat"); err != nil {
		t.Errorf("/proc/net/xfrm_stat: %v", err)
	}
}

// TestInsideESPStateInstalls installs, reads back and deletes an ESP SA for each
// transform family kernel/xfrm uses (RFC 4106 AES-GCM, RFC 7634 ChaCha20-Poly1305,
// AES-CBC with HMAC-SHA2 per RFC 4868, with and without ESN), in UDP encapsulation
// (RFC 3948) and over IPv6.
func TestInsideESPStateInstalls(t *testing.T) {
	h, err := netlink.NewHandle(unix.NETLINK_XFRM)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	defer h.Close()
	cases := []struct {
		name string
		sa   netlink.XfrmState
		v6   bool
	}{
		{name: "aes-gcm-16", sa: netlink.XfrmState{
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key(36), ICVLen: 128}}},
		{name: "chacha20-poly1305", sa: netlink.XfrmState{
			Aead: &netlink.XfrmStateAlgo{Name: "rfc7539esp(chacha20,poly1305)", Key: key(36), ICVLen: 128}}},
		{name: "aes-cbc-hmac-sha256", sa: netlink.XfrmState{
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: key(16)},
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: key(32), TruncateLen: 128}}},
		{name: "aes-cbc-hmac-sha512-esn", sa: netlink.XfrmState{
			Crypt:        &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: key(32)},
			Auth:         &netlink.XfrmStateAlgo{Name: "hmac(sha512)", Key: key(64), TruncateLen: 256},
			ESN:          true,
			ReplayWindow: 128}},
		// NAT-T (RFC 3948): ESP in UDP port 4500.
		{name: "aes-gcm-16-udp-encap", sa: netlink.XfrmState{
			Aead:  &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key(20), ICVLen: 128},
			Encap: &netlink.XfrmStateEncap{Type: netlink.XFRM_ENCAP_ESPINUDP, SrcPort: 4500, DstPort: 4500, OriginalAddress: net.IPv4zero}}},
		{name: "aes-gcm-16-ipv6", sa: netlink.XfrmState{
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key(20), ICVLen: 128}}, v6: true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sa := c.sa
			sa.Src, sa.Dst = net.ParseIP("198.51.100.1"), net.ParseIP("198.51.100.2")
			if c.v6 {
				sa.Src, sa.Dst = net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
			}
			sa.Proto, sa.Mode = netlink.XFRM_PROTO_ESP, netlink.XFRM_MODE_TUNNEL
			sa.Spi = 0xc0de0000 + i
			sa.Reqid = 7
			if sa.ReplayWindow == 0 {
				sa.ReplayWindow = 32
			}
			if err := h.XfrmStateAdd(&sa); err != nil {
				t.Fatalf("XfrmStateAdd %s spi %#x: %v", c.name, sa.Spi, err)
			}
			got, err := h.XfrmStateGet(&sa)
			if err != nil {
				t.Fatalf("XfrmStateGet spi %#x: %v", sa.Spi, err)
			}
			// vishvananda/netlink v1.3.1 does not parse the ESN flag back (got.ESN is
			// always false), so ESN is proven by the install succeeding: it needs the
			// authencesn template.
			if got.Spi != sa.Spi || got.Proto != netlink.XFRM_PROTO_ESP {
				t.Errorf("read back spi %#x proto %v, want spi %#x ESP", got.Spi, got.Proto, sa.Spi)
			}
			if (got.Encap == nil) != (sa.Encap == nil) || got.Encap != nil && (got.Encap.Type != sa.Encap.Type || got.Encap.DstPort != sa.Encap.DstPort) {
				t.Errorf("read back encapsulation %+v, want %+v", got.Encap, sa.Encap)
			}
			if an, wn := algoName(got.Aead), algoName(sa.Aead); an != wn {
				t.Errorf("read back AEAD %q, want %q", an, wn)
			}
			if an, wn := algoName(got.Crypt), algoName(sa.Crypt); an != wn {
				t.Errorf("read back encryption %q, want %q", an, wn)
			}
			if an, wn := algoName(got.Auth), algoName(sa.Auth); an != wn {
				t.Errorf("read back integrity %q, want %q", an, wn)
			}
			if err := h.XfrmStateDel(&sa); err != nil {
				t.Fatalf("XfrmStateDel spi %#x: %v", sa.Spi, err)
			}
			if _, err := h.XfrmStateGet(&sa); err == nil {
				t.Errorf("spi %#x still present after delete", sa.Spi)
			}
		})
	}
}

// TestInsideXfrmInterface creates an XFRM interface (route-based tunnels).
func TestInsideXfrmInterface(t *testing.T) {
	ns := newNamedNetns(t, "cygvm-xfrmi")
	h := handleAt(t, ns)
	if err := h.LinkAdd(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "xfrmi7"}, Ifid: 7}); err != nil {
		t.Fatalf("add xfrm interface: %v", err)
	}
	l, err := h.LinkByName("xfrmi7")
	if err != nil {
		t.Fatalf("xfrm interface not found after add: %v", err)
	}
	if x, ok := l.(*netlink.Xfrmi); !ok || x.Ifid != 7 {
		t.Errorf("link xfrmi7 is %T %+v, want an Xfrmi with if_id 7", l, l)
	}
}

// TestInsideESPTraffic sends a UDP datagram from one network namespace to another
// through a transport-mode ESP SA (AES-GCM) and checks it arrives and that both SAs
// counted it: the data path, not only the tables, works in the VM.
func TestInsideESPTraffic(t *testing.T) {
	nsA := newNamedNetns(t, "cygvm-a")
	nsB := newNamedNetns(t, "cygvm-b")
	hA := handleAt(t, nsA)
	hB := handleAt(t, nsB)

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "va", Namespace: netlink.NsFd(nsA)}, PeerName: "vb", PeerNamespace: netlink.NsFd(nsB)}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth pair va/vb across namespaces: %v", err)
	}
	ipA, ipB := net.ParseIP("192.0.2.1").To4(), net.ParseIP("192.0.2.2").To4()
	linkUp(t, hA, "va", ipA)
	linkUp(t, hB, "vb", ipB)

	aead := &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key(20), ICVLen: 128}
	sa := netlink.XfrmState{
		Src: ipA, Dst: ipB, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
		Spi: 0x1000, Reqid: 1, ReplayWindow: 32, Aead: aead,
	}
	for _, h := range []*netlink.Handle{hA, hB} {
		s := sa
		if err := h.XfrmStateAdd(&s); err != nil {
			t.Fatalf("XfrmStateAdd spi %#x: %v", sa.Spi, err)
		}
	}
	tmpl := []netlink.XfrmPolicyTmpl{{Src: ipA, Dst: ipB, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT, Reqid: 1}}
	hostA, hostB := &net.IPNet{IP: ipA, Mask: net.CIDRMask(32, 32)}, &net.IPNet{IP: ipB, Mask: net.CIDRMask(32, 32)}
	if err := hA.XfrmPolicyAdd(&netlink.XfrmPolicy{Src: hostA, Dst: hostB, Proto: unix.IPPROTO_UDP, Dir: netlink.XFRM_DIR_OUT, Tmpls: tmpl}); err != nil {
		t.Fatalf("XfrmPolicyAdd out: %v", err)
	}
	if err := hB.XfrmPolicyAdd(&netlink.XfrmPolicy{Src: hostA, Dst: hostB, Proto: unix.IPPROTO_UDP, Dir: netlink.XFRM_DIR_IN, Tmpls: tmpl}); err != nil {
		t.Fatalf("XfrmPolicyAdd in: %v", err)
	}

	rx := udpIn(t, nsB, &net.UDPAddr{IP: ipB, Port: 4242})
	tx := udpIn(t, nsA, &net.UDPAddr{IP: ipA})
	payload := []byte("cygnet esp smoke test")
	// The deadline only bounds a failure; nothing here depends on how long it takes.
	if err := rx.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.WriteTo(payload, &net.UDPAddr{IP: ipB, Port: 4242}); err != nil {
		t.Fatalf("send through ESP: %v", err)
	}
	buf := make([]byte, 256)
	n, from, err := rx.ReadFrom(buf)
	if err != nil {
		t.Fatalf("receive through ESP: %v (XfrmInNoStates etc. in /proc/net/xfrm_stat)", err)
	}
	if !bytes.Equal(buf[:n], payload) || !from.(*net.UDPAddr).IP.Equal(ipA) {
		t.Errorf("received %q from %v, want %q from %v", buf[:n], from, payload, ipA)
	}
	for name, h := range map[string]*netlink.Handle{"sender": hA, "receiver": hB} {
		got, err := h.XfrmStateGet(&sa)
		if err != nil {
			t.Fatalf("%s: XfrmStateGet: %v", name, err)
		}
		if got.Statistics.Packets < 1 || got.Statistics.Bytes < uint64(len(payload)) {
			t.Errorf("%s SA counted %d packets, %d bytes; want ≥1 packet, ≥%d bytes", name, got.Statistics.Packets, got.Statistics.Bytes, len(payload))
		}
	}
}

func algoName(a *netlink.XfrmStateAlgo) string {
	if a == nil {
		return ""
	}
	return a.Name
}

func key(n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(i*7 + 1)
	}
	return k
}

// newNamedNetns creates a named network namespace (bind-mounted under /run/netns, as
// `ip netns add` would) without leaving the calling thread in it.
func newNamedNetns(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// Leave the thread locked: it ends with this goroutine instead of serving
		// other goroutines from the wrong namespace.
		t.Fatalf("return to the original netns: %v", serr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("netns.NewNamed(%s): %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	if _, err := os.Stat("/run/netns/" + name); err != nil {
		t.Fatalf("netns %s not bind-mounted: %v", name, err)
	}
	return ns
}

func handleAt(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
	if err != nil {
		t.Fatalf("netlink handle in netns: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func linkUp(t *testing.T, h *netlink.Handle, name string, ip net.IP) {
	t.Helper()
	for _, n := range []string{"lo", name} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatalf("link %s: %v", n, err)
		}
		if n == name {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}}
			if err := h.AddrAdd(l, addr); err != nil {
				t.Fatalf("add %v to %s: %v", ip, n, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
}

// udpIn opens a UDP socket bound to addr inside ns. A socket belongs to the namespace
// its creating thread was in, so the thread switches in and back out around it.
func udpIn(t *testing.T, ns netns.NsHandle, addr *net.UDPAddr) *net.UDPConn {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter netns: %v", err)
	}
	c, lerr := net.ListenUDP("udp4", addr)
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked (see newNamedNetns).
		t.Fatalf("return to the original netns: %v", err)
	}
	runtime.UnlockOSThread()
	if lerr != nil {
		t.Fatalf("listen %v in netns: %v", addr, lerr)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
