package telemetry

import (
	"sync"
	"testing"
	"time"
)

func TestTallyRendersEveryEvent(t *testing.T) {
	var r Tally
	r.IKESAEstablished("ab")
	r.IKESAEstablished("ab")
	r.IKESAClosed("ab")
	r.HalfOpenChanged(1)
	r.HalfOpenChanged(-1) // back to zero: not rendered
	r.ChildSAInstalled("ab")
	r.ExchangeDone(ExchangeCreateChildSA, RoleInitiator, OutcomeRejected)
	r.NotifyReceived("TS_UNACCEPTABLE")
	r.NotifySent("COOKIE")
	r.ChildFailed("ab", ReasonTSUnaccept)
	r.FamilyTeardown(ReasonTimeout)
	r.Retransmitted(ExchangeIKEAuth)
	r.PacketDropped(DropIntegrity)
	r.CookieSent()
	r.ActorStopped(ActorChild, StopPanic)
	r.KernelOp(KernelAddSA, ResultError, time.Millisecond)
	r.HandshakeDone(RoleResponder, time.Second)

	want := `actor_stopped child panic = 1
child_failed ab TS_UNACCEPTABLE = 1
child_sas_installed ab = 1
cookie_sent = 1
dropped integrity = 1
exchange CREATE_CHILD_SA initiator rejected = 1
family_teardown timeout = 1
handshake responder = 1
ike_sas_established ab = 1
kernel_op add_sa error = 1
notify_received TS_UNACCEPTABLE = 1
notify_sent COOKIE = 1
retransmission IKE_AUTH = 1
`
	if got := r.String(); got != want {
		t.Errorf("tally:\n%s\nwant:\n%s", got, want)
	}
	if got := r.Get("ike_sas_established ab"); got != 1 {
		t.Errorf("Get(ike_sas_established ab) = %d, want 1", got)
	}
}

func TestTallyConcurrent(t *testing.T) {
	var r Tally
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				r.PacketDropped(DropUnknownSPI)
			}
		}()
	}
	wg.Wait()
	if got := r.Get("dropped unknown_spi"); got != 8000 {
		t.Errorf("dropped unknown_spi = %d, want 8000", got)
	}
}

// The Nop recorder must satisfy the interface and do nothing observable; this also
// keeps the method set of Nop and Tally in step with Recorder at compile time.
var _ Recorder = Nop{}
