// Package telemetry is the seam between the actor tree and the daemon's metrics.
//
// Contract:
//   - Recorder is what the manager, family and child actors (and the kernel writer) call
//     when something countable happens. The daemon passes a Prometheus implementation
//     (cmd/internal/metrics); tests and tools pass Nop or their own fake.
//   - Every method is safe for concurrent use, never blocks on I/O and never fails: a
//     metrics problem must not become a protocol problem.
//   - Label values are bounded. Callers pass the constants below (typed strings) or, for
//     notify types and failure reasons, the protocol's names (wire's String() values such
//     as "TS_UNACCEPTABLE"); the only free-form label is the connection name, which comes
//     from the configuration. Never an SPI, a peer address or an SA identifier.
//   - This package imports nothing outside the standard library, so the pure core
//     (actors/ike) may use the event constants without pulling in Prometheus or zap.
package telemetry

import "time"

// Recorder receives the daemon's countable events. See the package doc for the contract.
type Recorder interface {
	// IKESAEstablished / IKESAClosed move the established-IKE-SA gauge of a connection.
	// A family calls IKESAEstablished once when IKE_AUTH completes (RFC 7296 §1.2) and
	// IKESAClosed exactly once when that established IKE SA goes away, whatever the cause
	// (a rekeyed IKE SA that replaces the old one counts as one close and one establish).
	IKESAEstablished(conn string)
	IKESAClosed(conn string)

	// HalfOpenChanged adds delta (+1 or -1) to the half-open IKE SA gauge: responder
	// IKE SAs that answered IKE_SA_INIT and have not completed IKE_AUTH (RFC 7296 §2.6).
	HalfOpenChanged(delta int)

	// ChildSAInstalled / ChildSARemoved move the installed-Child-SA gauge of a connection.
	// Called by the child actor after its kernel state is installed and after it is gone.
	ChildSAInstalled(conn string)
	ChildSARemoved(conn string)

	// ExchangeDone counts one finished exchange (RFC 7296 §1: IKE_SA_INIT, IKE_AUTH,
	// CREATE_CHILD_SA, INFORMATIONAL) by our role in it and its outcome.
	ExchangeDone(exchange Exchange, role Role, outcome Outcome)

	// NotifySent / NotifyReceived count Notify payloads (RFC 7296 §3.10) by type name as
	// printed by wire (e.g. "TS_UNACCEPTABLE", "COOKIE"). Unknown type numbers should be
	// passed as their wire name; the implementation bounds the number of distinct values.
	NotifySent(notifyType string)
	NotifyReceived(notifyType string)

	// ChildFailed counts a Child SA that could not be created or died, by connection and
	// reason (a notify name, or one of the Reason constants).
	ChildFailed(conn string, reason string)

	// FamilyTeardown counts an IKE family that ended, by reason (a notify name such as
	// "AUTHENTICATION_FAILED", or one of the Reason constants).
	FamilyTeardown(reason string)

	// Retransmitted counts one retransmission of a request we sent (RFC 7296 §2.1).
	Retransmitted(exchange Exchange)

	// PacketDropped counts a datagram or message that was dropped, by reason.
	PacketDropped(reason DropReason)

	// CookieSent counts a COOKIE notify sent in answer to IKE_SA_INIT (RFC 7296 §2.6).
	CookieSent()

	// ActorStopped counts an actor that stopped, by kind and reason.
	ActorStopped(kind ActorKind, reason StopReason)

	// KernelOp counts one kernel operation and records how long it took.
	KernelOp(op KernelOp, result Result, took time.Duration)

	// HandshakeDone records the time from the first IKE_SA_INIT to the end of IKE_AUTH.
	HandshakeDone(role Role, took time.Duration)
}

// Exchange is an IKEv2 exchange type name (RFC 7296 §3.1).
type Exchange string

const (
	ExchangeIKESAInit     Exchange = "IKE_SA_INIT"
	ExchangeIKEAuth       Exchange = "IKE_AUTH"
	ExchangeCreateChildSA Exchange = "CREATE_CHILD_SA"
	ExchangeInformational Exchange = "INFORMATIONAL"
)

func (e Exchange) String() string { return string(e) }

// Role is our role in an exchange (RFC 7296 §2.2: original initiator aside, each
// exchange has an initiator and a responder).
type Role string

const (
	RoleInitiator Role = "initiator"
	RoleResponder Role = "responder"
)

func (r Role) String() string { return string(r) }

// Outcome is how an exchange ended.
type Outcome string

const (
	// OutcomeOK: the exchange did what it was for.
	OutcomeOK Outcome = "ok"
	// OutcomeRejected: the peer (or we) answered with an error notify — a normal result
	// for CREATE_CHILD_SA (TS_UNACCEPTABLE, NO_PROPOSAL_CHOSEN, …).
	OutcomeRejected Outcome = "rejected"
	// OutcomeTimeout: retransmissions exhausted, no answer.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeAborted: given up locally (family stopping, collision lost, …).
	OutcomeAborted Outcome = "aborted"
)

func (o Outcome) String() string { return string(o) }

// DropReason says why a packet was dropped without changing any state (DESIGN.md,
// failure table: "junk changes nothing").
type DropReason string

const (
	DropMalformed      DropReason = "malformed"              // failed to decode before integrity
	DropIntegrity      DropReason = "integrity"              // ICV / integrity check failed
	DropUnknownSPI     DropReason = "unknown_spi"            // no IKE SA with that SPI
	DropMsgIDWindow    DropReason = "msgid_window"           // message ID outside the window (§2.3)
	DropUnauthNotify   DropReason = "unauthenticated_notify" // unprotected error notify (§2.21.1)
	DropHalfOpenLimit  DropReason = "half_open_limit"        // per-peer half-open limit reached
	DropInvalidCookie  DropReason = "invalid_cookie"         // IKE_SA_INIT with a wrong cookie (§2.6)
	DropUnexpected     DropReason = "unexpected"             // well-formed but not expected now
	DropQueueFull      DropReason = "queue_full"             // a mailbox or socket queue overflowed
	DropFamilyStopping DropReason = "family_stopping"        // arrived while the family was stopping
)

func (d DropReason) String() string { return string(d) }

// ActorKind names a level of the actor tree (DESIGN.md, The actor tree).
type ActorKind string

const (
	ActorManager ActorKind = "manager"
	ActorFamily  ActorKind = "family"
	ActorChild   ActorKind = "child"
	ActorSocket  ActorKind = "socket"
	ActorKernel  ActorKind = "kernel"
)

func (k ActorKind) String() string { return string(k) }

// StopReason says why an actor stopped.
type StopReason string

const (
	StopNormal   StopReason = "normal"   // its job ended (SA deleted, expired, rekeyed away)
	StopFailure  StopReason = "failure"  // a protocol or kernel failure ended it
	StopPanic    StopReason = "panic"    // it panicked (supervision is stop-only)
	StopKilled   StopReason = "killed"   // killed from outside (debug-kill, chaos)
	StopParent   StopReason = "parent"   // its parent stopped
	StopShutdown StopReason = "shutdown" // the daemon is shutting down
)

func (s StopReason) String() string { return string(s) }

// KernelOp names an operation on the kernel's IPsec tables.
type KernelOp string

const (
	KernelAllocSPI     KernelOp = "alloc_spi"
	KernelAddSA        KernelOp = "add_sa"
	KernelUpdateSA     KernelOp = "update_sa"
	KernelDeleteSA     KernelOp = "delete_sa"
	KernelAddPolicy    KernelOp = "add_policy"
	KernelDeletePolicy KernelOp = "delete_policy"
	KernelQuerySA      KernelOp = "query_sa"
	KernelFlush        KernelOp = "flush"
)

func (o KernelOp) String() string { return string(o) }

// Result is the result of a kernel operation.
type Result string

const (
	ResultOK    Result = "ok"
	ResultError Result = "error"
)

func (r Result) String() string { return string(r) }

// Reasons for ChildFailed and FamilyTeardown that are not notify names. Notify names
// (RFC 7296 §3.10.1, as printed by wire) are used as they are.
const (
	ReasonKernel     = "kernel"     // the local kernel refused the Child SA
	ReasonPanic      = "panic"      // the actor panicked
	ReasonKilled     = "killed"     // killed from outside (chaos)
	ReasonTimeout    = "timeout"    // peer unreachable: retransmissions exhausted
	ReasonDeleted    = "deleted"    // the peer sent a DELETE
	ReasonTerminated = "terminated" // an operator's terminate / config removal
	ReasonExpired    = "expired"    // hard lifetime reached without a rekey
	ReasonRekeyed    = "rekeyed"    // replaced by its rekeyed successor
	ReasonShutdown   = "shutdown"   // the daemon is shutting down
	ReasonInvalidKE  = "INVALID_KE_PAYLOAD"
	ReasonAuthFailed = "AUTHENTICATION_FAILED"
	ReasonInvalidSyn = "INVALID_SYNTAX"
	ReasonTSUnaccept = "TS_UNACCEPTABLE"
	ReasonNoProposal = "NO_PROPOSAL_CHOSEN"
)

// Nop is a Recorder that records nothing.
type Nop struct{}

var _ Recorder = Nop{}

func (Nop) IKESAEstablished(string)                  {}
func (Nop) IKESAClosed(string)                       {}
func (Nop) HalfOpenChanged(int)                      {}
func (Nop) ChildSAInstalled(string)                  {}
func (Nop) ChildSARemoved(string)                    {}
func (Nop) ExchangeDone(Exchange, Role, Outcome)     {}
func (Nop) NotifySent(string)                        {}
func (Nop) NotifyReceived(string)                    {}
func (Nop) ChildFailed(string, string)               {}
func (Nop) FamilyTeardown(string)                    {}
func (Nop) Retransmitted(Exchange)                   {}
func (Nop) PacketDropped(DropReason)                 {}
func (Nop) CookieSent()                              {}
func (Nop) ActorStopped(ActorKind, StopReason)       {}
func (Nop) KernelOp(KernelOp, Result, time.Duration) {}
func (Nop) HandshakeDone(Role, time.Duration)        {}
