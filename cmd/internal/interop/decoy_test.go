package interop

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/interop/pcap"
)

// decoySource is a real IKE_SA_INIT request (charon's, proposal
// aes256gcm16-prfsha256-x25519) from the repository's strongSwan vectors.
const decoySource = "../../../wire/testdata/strongswan/S1-x25519-gcm/capture.pcap"

// sendDecoyInit sends a replayed IKE_SA_INIT request from the initiator's
// namespace, from an ephemeral port, to the responder's port 500, and waits until
// the responder has answered it: the responder now holds a half-open IKE SA.
func (e *env) sendDecoyInit(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(decoySource)
	if err != nil {
		t.Fatalf("decoy IKE_SA_INIT: %v", err)
	}
	ds, err := pcap.Read(b)
	if err != nil {
		t.Fatalf("decoy IKE_SA_INIT: %v", err)
	}
	msgs := pcap.IKEMessages(pcap.Classify(ds))
	if len(msgs) == 0 || msgs[0].Header.Exchange != pcap.IKESAInit || msgs[0].Header.Response() {
		t.Fatalf("decoy IKE_SA_INIT: first message of %s is not an IKE_SA_INIT request", decoySource)
	}
	decoy := msgs[0].IKE
	dst := netip.AddrPortFrom(e.R.NS().Outer.Addr(), pcap.PortIKE)
	ps, err := e.cap.Packets()
	if err != nil {
		t.Fatal(err)
	}
	before := len(pcap.IKEMessages(ps))
	err = e.I.NS().Do(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(decoy)
		return err
	})
	if err != nil {
		t.Fatalf("decoy IKE_SA_INIT: %v", err)
	}
	// The decoy and the responder's answer.
	if _, err := e.cap.WaitIKE(e.ctx, before+2); err != nil {
		t.Fatalf("decoy IKE_SA_INIT: no answer: %v", err)
	}
}
