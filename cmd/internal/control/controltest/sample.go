package controltest

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
)

// SampleSA fills sa with the i-th of a concentrator's IKE SAs: a realistic record with
// two Child SAs, as the daemon would list it. It reuses sa's slices.
func SampleSA(i int, sa *control.IKESA) {
	peer := netip.AddrFrom4([4]byte{198, 51, byte(100 + i>>16), byte(i >> 8)}).Next()
	children := sa.Children[:0]
	if cap(children) < 2 {
		children = make([]control.ChildSA, 0, 2)
	}
	*sa = control.IKESA{
		Conn: "peers", UniqueID: uint64(i + 1), State: "ESTABLISHED", Initiator: false,
		SPIi: control.SPI64(0x1000000000000000 + uint64(i)*7919), SPIr: control.SPI64(0x2000000000000000 + uint64(i)*104729),
		LocalHost: "192.0.2.1", LocalPort: 4500, LocalID: "gw.example.net",
		RemoteHost: peer.String(), RemotePort: 4500, RemoteID: fmt.Sprintf("peer-%d@example.net", i),
		NATRemote: i%3 == 0, Proposal: "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519",
		Established: 1700000000 + int64(i%3600), RekeyAt: 1700014400 + int64(i%3600),
	}
	for c, name := range []string{"lan", "voice"} {
		children = append(children, control.ChildSA{
			Name: name, UniqueID: uint64(2*i + c + 1), ReqID: uint32(2*i + c + 1), State: "INSTALLED", Mode: "TUNNEL",
			Protocol: "ESP", Encap: true, SPIIn: control.SPI32(0xc0000000 + uint32(2*i+c)), SPIOut: control.SPI32(0xd0000000 + uint32(2*i+c)),
			Proposal: "AES_GCM_16_256", BytesIn: uint64(i) * 1500, PacketsIn: uint64(i), BytesOut: uint64(i) * 900, PacketsOut: uint64(i),
			Installed: 1700000000 + int64(i%3600), RekeyAt: 1700003300 + int64(i%3600), ExpireAt: 1700003960 + int64(i%3600),
			LocalTS: []string{"10.0.0.0/16"}, RemoteTS: []string{fmt.Sprintf("10.%d.%d.0/24", 1+i>>8&0xff, i&0xff)},
		})
	}
	sa.Children = children
}

// SocketPath returns a short socket path in a fresh directory removed at cleanup
// (socket paths are limited to 107 bytes, so t.TempDir's long names do not fit).
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cyg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "c.sock")
}
