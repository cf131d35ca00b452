package ike

import (
	"net/netip"
	"testing"
)

// A responder with a whole-host child and a child for one UDP port of the same hosts
// picks the port child for a request with exactly its selectors, whatever the order
// of the definitions (strongSwan ranks an exact match first; the interop scenario
// 2-pfs-create-child found the whole-host child taken instead), and the whole-host
// child for anything else inside it.
func TestSelectChildConfigPrefersExactSelectors(t *testing.T) {
	us, peer := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	host := func(a netip.Addr) TrafficSelector { return TSFromPrefix(netip.PrefixFrom(a, 32)) }
	udp := func(a netip.Addr, port uint16) TrafficSelector {
		return TrafficSelector{Protocol: 17, Start: a, End: a, StartPort: port, EndPort: port}
	}
	net := ChildConfig{Name: "net", LocalTS: []TrafficSelector{host(us)}, RemoteTS: []TrafficSelector{host(peer)}}
	pfs := ChildConfig{Name: "pfs", LocalTS: []TrafficSelector{udp(us, 5000)}, RemoteTS: []TrafficSelector{udp(peer, 5000)}}
	ikeSA := &ikeSA{local: netip.MustParseAddrPort("192.0.2.1:4500"), remote: netip.MustParseAddrPort("192.0.2.2:4500")}
	for _, order := range [][]ChildConfig{{net, pfs}, {pfs, net}} {
		f := &Family{cfg: &Connection{Children: order}}
		for _, c := range []struct {
			tsi, tsr []TrafficSelector
			want     string
		}{
			{[]TrafficSelector{udp(peer, 5000)}, []TrafficSelector{udp(us, 5000)}, "pfs"},
			{[]TrafficSelector{host(peer)}, []TrafficSelector{host(us)}, "net"},
			{[]TrafficSelector{udp(peer, 53)}, []TrafficSelector{udp(us, 53)}, "net"},
		} {
			cc, local, remote := f.selectChildConfig(ikeSA, c.tsi, c.tsr)
			if cc == nil || cc.Name != c.want {
				t.Errorf("definitions %s,%s: request %v=>%v chose %v, want %s", order[0].Name, order[1].Name, c.tsi, c.tsr, cc, c.want)
				continue
			}
			if len(local) != 1 || local[0] != c.tsr[0] || len(remote) != 1 || remote[0] != c.tsi[0] {
				t.Errorf("request %v=>%v: selectors %v=>%v, want them as proposed", c.tsi, c.tsr, remote, local)
			}
		}
	}
}
