package ike

import (
	"fmt"
	"io"
	"net/netip"
)

// SPI is an IKE SA SPI (RFC 7296 §3.1: 8 octets) read as a big-endian number.
type SPI uint64

func (s SPI) String() string { return fmt.Sprintf("%016x", uint64(s)) }

// ChildRef names one Child SA inside a family. Refs are handed out in increasing order
// and never reused within a family; 0 means "none". A rekeyed Child SA gets a new ref.
type ChildRef uint64

func (r ChildRef) String() string { return fmt.Sprintf("c%d", uint64(r)) }

// Env is everything non-deterministic a family needs, injected so that the simulator can
// make it deterministic. Both methods are called only from inside Step.
type Env interface {
	// Rand supplies nonces, IKE SPIs, key-exchange seeds, IVs and jitter. It must not
	// fail (crypto/rand.Reader in the daemon, a seeded stream in the simulator): a
	// failing source panics rather than let predictable values out.
	Rand() io.Reader
	// AllocSPI returns a fresh inbound ESP SPI for child (the shell uses the kernel's
	// XFRM_MSG_ALLOCSPI). An error fails that Child SA only.
	AllocSPI(child ChildRef) (uint32, error)
}

// Event is an input to Family.Step. The concrete types are listed below; each prints
// itself for the simulator's scripts.
type Event interface {
	fmt.Stringer
	isEvent()
}

// PacketReceived is an IKE message that arrived on Local from Remote. Data is the IKE
// message from its header on: the socket layer has already stripped the 4-octet non-ESP
// marker of port 4500 (RFC 3948 §2.2). The family does not keep Data after Step returns.
type PacketReceived struct {
	Local, Remote netip.AddrPort
	Data          []byte
}

// TimerFired reports that the timer armed by ArmTimer{Gen} expired. A Gen other than the
// latest one armed is ignored, so a shell need not cancel old timers reliably.
type TimerFired struct{ Gen uint64 }

// Initiate brings up the IKE SA (as initiator) with every child whose StartAction is
// ActionStart; the first of them rides in IKE_AUTH (RFC 7296 §1.2), the others follow
// with CREATE_CHILD_SA. Without such children the IKE SA is set up childless when the
// peer supports RFC 6023, otherwise with the first child.
type Initiate struct{}

// InitiateChild creates a Child SA of the child definition Name: through CREATE_CHILD_SA
// when the IKE SA is up, in IKE_AUTH when the family has not started yet.
type InitiateChild struct{ Name string }

// RekeyChild rekeys one Child SA now (RFC 7296 §2.8, §1.3.3).
type RekeyChild struct{ Ref ChildRef }

// RekeyIKE rekeys the IKE SA now (RFC 7296 §2.8, §1.3.2).
type RekeyIKE struct{}

// DeleteChild deletes one Child SA with an INFORMATIONAL exchange (RFC 7296 §1.4.1).
type DeleteChild struct{ Ref ChildRef }

// Terminate deletes the IKE SA and with it every Child SA (RFC 7296 §1.4.1), then ends
// the family.
type Terminate struct{}

// ChildInstalled: the Child SA of an InstallChild effect is in the kernel.
type ChildInstalled struct{ Ref ChildRef }

// ChildInstallFailed: the kernel refused the Child SA of an InstallChild effect. That
// Child SA fails alone (responder: a Child-level error notify; initiator: a DELETE).
type ChildInstallFailed struct {
	Ref ChildRef
	Err error
}

// ChildExpired: a kernel lifetime of the Child SA ran out (soft: rekey it; hard: it is
// gone from the kernel, delete it with the peer). Duplicates are harmless.
type ChildExpired struct {
	Ref  ChildRef
	Hard bool
}

// ChildDied: the actor that owned the Child SA's kernel state panicked or was killed.
// The Child SA is removed and a DELETE for its SPIs sent; nothing else changes.
type ChildDied struct{ Ref ChildRef }

// Acquire: a trap policy of child definition Name was hit (the kernel wants a Child SA).
// Ignored when a Child SA of that definition exists or is being created.
type Acquire struct{ Name string }

// NotFirstContact: the shell now holds another IKE family for this family's connection
// and peer (one came up while this one was being set up: both ends initiated at once,
// say). If this family's IKE_AUTH is not sent yet it carries no INITIAL_CONTACT (RFC
// 7296 §2.4), as with Options.NoInitialContact: the other IKE SA must survive.
type NotFirstContact struct{}

// WorkDone carries the result of a Work effect's Run back into the family.
type WorkDone struct {
	Token  uint64
	Result any
}

func (PacketReceived) isEvent()     {}
func (TimerFired) isEvent()         {}
func (Initiate) isEvent()           {}
func (InitiateChild) isEvent()      {}
func (RekeyChild) isEvent()         {}
func (RekeyIKE) isEvent()           {}
func (DeleteChild) isEvent()        {}
func (Terminate) isEvent()          {}
func (ChildInstalled) isEvent()     {}
func (ChildInstallFailed) isEvent() {}
func (ChildExpired) isEvent()       {}
func (ChildDied) isEvent()          {}
func (Acquire) isEvent()            {}
func (WorkDone) isEvent()           {}
func (NotFirstContact) isEvent()    {}

func (e PacketReceived) String() string {
	return fmt.Sprintf("PacketReceived %v→%v %dB", e.Remote, e.Local, len(e.Data))
}
func (e TimerFired) String() string    { return fmt.Sprintf("TimerFired gen=%d", e.Gen) }
func (Initiate) String() string        { return "Initiate" }
func (e InitiateChild) String() string { return "InitiateChild " + e.Name }
func (e RekeyChild) String() string    { return "RekeyChild " + e.Ref.String() }
func (RekeyIKE) String() string        { return "RekeyIKE" }
func (e DeleteChild) String() string   { return "DeleteChild " + e.Ref.String() }
func (Terminate) String() string       { return "Terminate" }
func (e ChildInstalled) String() string {
	return "ChildInstalled " + e.Ref.String()
}
func (e ChildInstallFailed) String() string {
	return fmt.Sprintf("ChildInstallFailed %v: %v", e.Ref, e.Err)
}
func (e ChildExpired) String() string {
	if e.Hard {
		return "ChildExpired " + e.Ref.String() + " hard"
	}
	return "ChildExpired " + e.Ref.String() + " soft"
}
func (e ChildDied) String() string     { return "ChildDied " + e.Ref.String() }
func (e Acquire) String() string       { return "Acquire " + e.Name }
func (e WorkDone) String() string      { return fmt.Sprintf("WorkDone token=%d", e.Token) }
func (NotFirstContact) String() string { return "NotFirstContact" }
