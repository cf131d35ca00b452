package interop

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/interop/pcap"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s1Packets reads the strongSwan S1 vector's capture (keys in its keys.md).
func s1Packets(t *testing.T) []pcap.Packet {
	t.Helper()
	b, err := os.ReadFile("../../../wire/testdata/strongswan/S1-x25519-gcm/capture.pcap")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := pcap.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return pcap.Classify(ds)
}

// Known answers from wire/testdata/strongswan/S1-x25519-gcm/keys.md.
const (
	s1SKei      = "61737d132b37ccd6cb7e85beefe8a330174dda98de1a4f44ed3609ddbd78ac10fbab84e5"
	s1SKer      = "859ded08092497bf4ed0a1af90f16fc2ec05a44fa379f152169f6ad1e3bcdf003c2bf952"
	s1Child2AtB = "22b1cbd9e2a2fdc7f7335a7b6736d1e775144ea147cc127b6132db7f4cb0debdb7992645" // SPI 5114d257
	s1Child2BtA = "aea3fbf0ebade05c8114f1e196bf1f93e1326123279ce63d0205cd4fd2262fcae2d4eff2" // SPI f818be1d
)

func TestOpenSKAESGCMVector(t *testing.T) {
	ps := s1Packets(t)
	ike := pcap.IKEMessages(ps)
	req, resp := ike[2].IKE, ike[3].IKE // frames 3 and 4: IKE_AUTH
	inner, err := OpenSKAESGCM(mustHex(t, s1SKei), req)
	if err != nil {
		t.Fatal(err)
	}
	// keys.md: SK{ IDi ... }: the first inner payload is IDi (35), as the SK
	// payload's Next Payload says.
	if req[28] != 35 || len(inner) < 8 {
		t.Errorf("IKE_AUTH request: SK next payload %d, %d inner bytes", req[28], len(inner))
	}
	if _, err := OpenSKAESGCM(mustHex(t, s1SKer), resp); err != nil {
		t.Errorf("IKE_AUTH response: %v", err)
	}
	if _, err := OpenSKAESGCM(mustHex(t, s1SKer), req); err == nil {
		t.Error("request opened with the responder's key")
	}
	if _, err := OpenSKAESGCM(mustHex(t, s1SKei), ike[0].IKE); err == nil {
		t.Error("IKE_SA_INIT (no SK payload) opened")
	}
}

func TestOpenESPAESGCMVector(t *testing.T) {
	keys := map[uint32][]byte{0x5114d257: mustHex(t, s1Child2AtB), 0xf818be1d: mustHex(t, s1Child2BtA)}
	var n int
	for _, p := range s1Packets(t) {
		if p.Kind != pcap.KindESP {
			continue
		}
		inner, next, err := OpenESPAESGCM(keys[p.ESPSPI], p.Payload)
		if err != nil {
			t.Fatalf("frame %d: %v", p.Frame, err)
		}
		src, dst := netip.AddrFrom4([4]byte(inner[12:16])), netip.AddrFrom4([4]byte(inner[16:20]))
		if next != 4 || inner[9] != 1 || int(binary.BigEndian.Uint16(inner[2:4])) != len(inner) {
			t.Errorf("frame %d: next header %d, inner protocol %d, length %d/%d", p.Frame, next, inner[9], binary.BigEndian.Uint16(inner[2:4]), len(inner))
		}
		if !(src.String() == "198.51.100.1" && dst.String() == "203.0.113.1") && !(src.String() == "203.0.113.1" && dst.String() == "198.51.100.1") {
			t.Errorf("frame %d: inner %v -> %v", p.Frame, src, dst)
		}
		// The other direction's key must not open it.
		for spi, k := range keys {
			if spi != p.ESPSPI {
				if _, _, err := OpenESPAESGCM(k, p.Payload); err == nil {
					t.Errorf("frame %d opened with the key of SPI %08x", p.Frame, spi)
				}
			}
		}
		n++
	}
	if n != 6 {
		t.Errorf("%d ESP packets, want 6", n)
	}
	for _, bad := range [][]byte{nil, make([]byte, 20), make([]byte, 100)} {
		if _, _, err := OpenESPAESGCM(keys[0x5114d257], bad); err == nil {
			t.Errorf("%d-byte junk opened", len(bad))
		}
	}
}
