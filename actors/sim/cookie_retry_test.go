package sim

import (
	"bytes"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// TestCookieRetryKeepsPayloads: the IKE_SA_INIT retried with a COOKIE carries the
// COOKIE notify first and every other payload unchanged (RFC 7296 §2.6), also with
// encap=yes, whose NAT_DETECTION_SOURCE_IP hash is deliberately random. A second,
// different first message gave the responder another RealMessage1 and ended in
// AUTHENTICATION_FAILED (randomized runs, seed 12642).
func TestCookieRetryKeepsPayloads(t *testing.T) {
	for _, encap := range []string{"no", "yes"} {
		w := New(3)
		for _, cmd := range []string{"pair", "conn A encap=" + encap, "cookies B on", "initiate A net"} {
			if _, err := w.Exec(cmd); err != nil {
				t.Fatal(err)
			}
		}
		first := w.Net.InFlight[0].Data
		w.Deliver(1) // B challenges
		w.Deliver(1) // A retries
		if len(w.Net.InFlight) != 1 {
			t.Fatalf("encap=%s: %d datagrams in flight, want the retried request", encap, len(w.Net.InFlight))
		}
		retry := w.Net.InFlight[0].Data
		m1, err := wire.DecodeMessage(first)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := wire.DecodeMessage(retry)
		if err != nil {
			t.Fatal(err)
		}
		if len(m2.Payloads) != len(m1.Payloads)+1 {
			t.Fatalf("encap=%s: %d payloads after the retry, want %d", encap, len(m2.Payloads), len(m1.Payloads)+1)
		}
		if n, ok := m2.Payloads[0].(*wire.NotifyPayload); !ok || n.NotifyType != wire.NotifyCookie {
			t.Fatalf("encap=%s: first payload %T, want N(COOKIE)", encap, m2.Payloads[0])
		}
		for i, p := range m1.Payloads {
			q := m2.Payloads[i+1]
			pb, err1 := p.AppendBody(nil)
			qb, err2 := q.AppendBody(nil)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if p.Type() != q.Type() || !bytes.Equal(pb, qb) {
				t.Errorf("encap=%s: payload %d (%v) changed in the COOKIE retry", encap, i, p.Type())
			}
		}
	}
}
