package ike

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// Effect is an output of Family.Step: something the caller must do. Effects are plain
// data and must be carried out in the order returned.
type Effect interface {
	fmt.Stringer
	isEffect()
}

// SendDatagram: send Data from Local to Remote over UDP. Data is the IKE message; when
// Local is the NAT-T socket the socket layer prepends the non-ESP marker (RFC 3948).
// Data is shared with the family's retransmission cache: do not modify it. A family
// retransmits by emitting the same bytes again.
type SendDatagram struct {
	Local, Remote netip.AddrPort
	Data          []byte
	// Summary describes the message for logs and the simulator, e.g.
	// "CREATE_CHILD_SA request 3 [ N(REKEY_SA) SA No TSi TSr ]" (fragments add
	// " frag 2/3"; retransmissions are the same value).
	Summary string
}

// InstallChild: put the Child SA into the kernel (both SAs and, unless SA.Replaces is
// set, its policies), then report ChildInstalled or ChildInstallFailed.
type InstallChild struct{ SA ChildSA }

// RemoveChild: remove the Child SA's kernel state (idempotent), or, for a Child SA that
// never got installed, release the SPI that Env.AllocSPI reserved for it. Emitted once
// per Child SA that had an SPI. When the Child SA was replaced by a rekey, its successor
// keeps the shared policies.
type RemoveChild struct {
	Ref    ChildRef
	Reason string // a telemetry Reason constant or a notify name
}

// ArmTimer: (re)arm the family's single timer to fire TimerFired{Gen} at At. A zero At
// cancels it. Only the latest ArmTimer counts.
type ArmTimer struct {
	At  time.Time
	Gen uint64
}

// Work: CPU-heavy work (key-exchange math). Run it off the family's turn — Run touches
// only values it captured — and feed WorkDone{Token, Run()} back. Running it inline is
// also correct.
type Work struct {
	Token uint64
	Run   func() any
}

// RouteSPI: datagrams for this local IKE SPI belong to this family from now on.
type RouteSPI struct{ SPI SPI }

// UnrouteSPI: this local IKE SPI no longer belongs to the family (an old IKE SA was
// deleted after a rekey). Datagrams for it are unknown-SPI junk.
type UnrouteSPI struct{ SPI SPI }

// Established: an IKE SA completed IKE_AUTH, or a rekeyed IKE SA replaced the previous
// one (Rekeyed, with the previous SPIs in Old).
type Established struct {
	IKE     IKEInfo
	Rekeyed bool
	Old     [2]SPI
}

// IKEClosed: an established IKE SA of the family went away (deleted, rekeyed away,
// failed). Pairs one to one with Established.
type IKEClosed struct {
	SPIi, SPIr SPI
	Reason     string
}

// ChildUp: a Child SA is installed and negotiated on both ends.
type ChildUp struct{ Child ChildInfo }

// ChildDown: a Child SA that was up is gone (deleted, rekeyed away, expired, died).
type ChildDown struct {
	Ref    ChildRef
	Name   string
	Reason string
}

// ChildFailed: a Child SA could not be created or rekeyed, or died; Reason is a notify
// name or a telemetry Reason constant. The IKE SA and the other Child SAs are untouched.
type ChildFailed struct {
	Name   string
	Reason string
}

// ExchangeDone: one exchange finished (for metrics).
type ExchangeDone struct {
	Exchange telemetry.Exchange
	Role     telemetry.Role
	Outcome  telemetry.Outcome
}

// Dropped: a message was dropped without changing any state.
type Dropped struct {
	Reason telemetry.DropReason
	Detail string
}

// InitialContact: the peer's authenticated IKE_AUTH message carried INITIAL_CONTACT
// (RFC 7296 §2.4): the IKE SA SPIi/SPIr, just established, is the only one the peer
// holds between LocalID and RemoteID (it restarted, say). It follows the Established
// of that IKE SA.
//
// What the manager does: end every OTHER IKE family whose current IKE SA has the same
// LocalID and RemoteID (IKEInfo.LocalID, IKEInfo.RemoteID of their Established) —
// never this one — as it ends a killed family: stop it and remove its kernel state,
// without a DELETE exchange (the peer no longer knows those IKE SAs; a DELETE would be
// retransmitted into the void for the whole schedule). Remote is the peer's address as
// this IKE SA sees it, for logs and for a manager that also requires the same address.
// A responder family with a %any remote identity gets the peer's authenticated ID.
type InitialContact struct {
	SPIi, SPIr        SPI
	LocalID, RemoteID Identity
	Remote            netip.AddrPort
}

// NotifySeen: a Notify payload was sent (Sent) or received: every error notify, and a
// COOKIE challenge received by an initiator in answer to IKE_SA_INIT (RFC 7296 §2.6;
// Type "COOKIE"), whether it is followed or dropped as a duplicate.
type NotifySeen struct {
	Type string
	Sent bool
}

// Retransmitted: a request was sent again (RFC 7296 §2.1).
type Retransmitted struct {
	Exchange telemetry.Exchange
	Try      int
}

// Log is a structured log line. It never contains key material.
type Log struct {
	Level  LogLevel
	Msg    string
	Fields []Field
}

// LogLevel of a Log effect.
type LogLevel uint8

const (
	LevelDebug LogLevel = iota
	LevelInfo
	LevelWarn
)

func (l LogLevel) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	}
	return fmt.Sprintf("LogLevel(%d)", uint8(l))
}

// Field is one key/value of a Log effect.
type Field struct{ Key, Value string }

// FamilyDone: the family is over. The shell removes every Child SA still installed,
// drops the family's SPI routes and stops. No effect follows it.
type FamilyDone struct {
	Reason string // a telemetry Reason constant or a notify name
	Err    error
}

func (SendDatagram) isEffect()   {}
func (InstallChild) isEffect()   {}
func (RemoveChild) isEffect()    {}
func (ArmTimer) isEffect()       {}
func (Work) isEffect()           {}
func (RouteSPI) isEffect()       {}
func (UnrouteSPI) isEffect()     {}
func (Established) isEffect()    {}
func (IKEClosed) isEffect()      {}
func (ChildUp) isEffect()        {}
func (ChildDown) isEffect()      {}
func (ChildFailed) isEffect()    {}
func (ExchangeDone) isEffect()   {}
func (Dropped) isEffect()        {}
func (NotifySeen) isEffect()     {}
func (InitialContact) isEffect() {}
func (Retransmitted) isEffect()  {}
func (Log) isEffect()            {}
func (FamilyDone) isEffect()     {}

func (e SendDatagram) String() string {
	return fmt.Sprintf("SendDatagram %v→%v %dB", e.Local, e.Remote, len(e.Data))
}
func (e InstallChild) String() string { return "InstallChild " + e.SA.String() }
func (e RemoveChild) String() string  { return fmt.Sprintf("RemoveChild %v (%s)", e.Ref, e.Reason) }
func (e ArmTimer) String() string {
	if e.At.IsZero() {
		return fmt.Sprintf("ArmTimer off gen=%d", e.Gen)
	}
	return fmt.Sprintf("ArmTimer %s gen=%d", e.At.Format(time.RFC3339Nano), e.Gen)
}
func (e Work) String() string       { return fmt.Sprintf("Work token=%d", e.Token) }
func (e RouteSPI) String() string   { return "RouteSPI " + e.SPI.String() }
func (e UnrouteSPI) String() string { return "UnrouteSPI " + e.SPI.String() }
func (e Established) String() string {
	if e.Rekeyed {
		return fmt.Sprintf("Established %v (rekeyed %v_i %v_r)", e.IKE, e.Old[0], e.Old[1])
	}
	return "Established " + e.IKE.String()
}
func (e IKEClosed) String() string {
	return fmt.Sprintf("IKEClosed %v_i %v_r (%s)", e.SPIi, e.SPIr, e.Reason)
}
func (e ChildUp) String() string { return "ChildUp " + e.Child.String() }
func (e ChildDown) String() string {
	return fmt.Sprintf("ChildDown %v %s (%s)", e.Ref, e.Name, e.Reason)
}
func (e ChildFailed) String() string { return fmt.Sprintf("ChildFailed %s (%s)", e.Name, e.Reason) }
func (e ExchangeDone) String() string {
	return fmt.Sprintf("ExchangeDone %s %s %s", e.Exchange, e.Role, e.Outcome)
}
func (e Dropped) String() string {
	if e.Detail == "" {
		return "Dropped " + string(e.Reason)
	}
	return fmt.Sprintf("Dropped %s: %s", e.Reason, e.Detail)
}
func (e NotifySeen) String() string {
	if e.Sent {
		return "NotifySent " + e.Type
	}
	return "NotifyReceived " + e.Type
}
func (e InitialContact) String() string {
	return fmt.Sprintf("InitialContact %v_i %v_r %v - %v from %v", e.SPIi, e.SPIr, e.LocalID, e.RemoteID, e.Remote)
}
func (e Retransmitted) String() string {
	return fmt.Sprintf("Retransmitted %s try %d", e.Exchange, e.Try)
}
func (e Log) String() string {
	var b strings.Builder
	b.WriteString("Log ")
	b.WriteString(e.Level.String())
	b.WriteString(" ")
	b.WriteString(e.Msg)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, " %s=%s", f.Key, f.Value)
	}
	return b.String()
}
func (e FamilyDone) String() string {
	if e.Err != nil {
		return fmt.Sprintf("FamilyDone (%s): %v", e.Reason, e.Err)
	}
	return fmt.Sprintf("FamilyDone (%s)", e.Reason)
}

// ChildSA is everything the kernel needs to carry one Child SA: its two ESP SAs and,
// through the traffic selectors and mode, its policies.
type ChildSA struct {
	Ref  ChildRef
	Name string // the ChildConfig's name
	// Replaces is the Child SA this one rekeys (0 for a new one). The two share
	// selectors; a shell that keys policies by child name keeps them.
	Replaces ChildRef
	Mode     Mode
	// Local and Remote are the outer addresses (tunnel endpoints / transport peers).
	Local, Remote netip.Addr
	// Encap: ESP is UDP-encapsulated (RFC 3948) between LocalPort and RemotePort.
	Encap                 bool
	LocalPort, RemotePort uint16
	// Inbound is the SA the peer sends on (our SPI); Outbound the one we send on.
	Inbound, Outbound ESPKeys
	ESN               bool
	LocalTS, RemoteTS []TrafficSelector
	Lifetime          Lifetime
	ReplayWindow      uint32
}

// ESPKeys is one direction of a Child SA. EncrKey includes the salt for AEAD
// algorithms (RFC 4106 §8.1: key ‖ 4-octet salt). EncrKeyLen is in bits, without salt.
type ESPKeys struct {
	SPI        uint32
	Encr       wire.TransformID
	EncrKeyLen int
	EncrKey    []byte
	Integ      wire.TransformID
	IntegKey   []byte
}

// Lifetime holds kernel lifetimes: soft limits ask for a rekey, hard limits end the SA.
// Zero means no limit.
type Lifetime struct {
	SoftTime, HardTime       time.Duration
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
}

// String prints the Child SA without key material.
func (c ChildSA) String() string {
	s := fmt.Sprintf("%v %s %s in=%08x out=%08x %v=>%v", c.Ref, c.Name, c.Mode,
		c.Inbound.SPI, c.Outbound.SPI, c.LocalTS, c.RemoteTS)
	if c.Replaces != 0 {
		s += " replaces " + c.Replaces.String()
	}
	if c.Encap {
		s += fmt.Sprintf(" encap %d→%d", c.LocalPort, c.RemotePort)
	}
	return s
}

// String prints the SPI and algorithms, never the keys.
func (k ESPKeys) String() string {
	return fmt.Sprintf("spi=%08x encr=%d/%d integ=%d", k.SPI, k.Encr, k.EncrKeyLen, k.Integ)
}

// IKEInfo describes an IKE SA for listings and notifications.
type IKEInfo struct {
	Name               string // connection name
	SPIi, SPIr         SPI
	Initiator          bool // we are the original initiator of this IKE SA
	Local, Remote      netip.AddrPort
	LocalID, RemoteID  Identity
	NATLocal, NATPeer  bool // a NAT was detected in front of us / the peer (§2.23)
	State              IKEState
	EstablishedAt      time.Time
	RekeyAt, ExpiresAt time.Time
	// NextMsgIDOut is the message ID of our next request, NextMsgIDIn the one we
	// expect of the peer's next request (RFC 7296 §2.3). Neither ever goes backwards.
	NextMsgIDOut, NextMsgIDIn uint32
	// Outstanding: one of our requests on this IKE SA awaits its response (or our
	// key-exchange work for one is running).
	Outstanding bool
	// Suite is the negotiated proposal (RFC 7296 §3.3), zero before IKE_SA_INIT ends.
	Suite ikecrypto.IKESuite
}

func (i IKEInfo) String() string {
	role := "R"
	if i.Initiator {
		role = "I"
	}
	return fmt.Sprintf("%s %v_i %v_r %s %v %v→%v", i.Name, i.SPIi, i.SPIr, role, i.State, i.Local, i.Remote)
}

// ChildInfo describes a Child SA for listings and notifications.
type ChildInfo struct {
	Ref               ChildRef
	Name              string
	SPIIn, SPIOut     uint32
	Mode              Mode
	LocalTS, RemoteTS []TrafficSelector
	State             ChildState
	InstalledAt       time.Time
	RekeyAt, ExpireAt time.Time
	// Suite is the negotiated ESP proposal (RFC 7296 §3.3); Encap: ESP is
	// UDP-encapsulated (RFC 3948).
	Suite ikecrypto.ESPSuite
	Encap bool
}

func (c ChildInfo) String() string {
	return fmt.Sprintf("%v %s %v in=%08x out=%08x %v=>%v", c.Ref, c.Name, c.State, c.SPIIn, c.SPIOut, c.LocalTS, c.RemoteTS)
}

// IKEState is the life stage of an IKE SA.
type IKEState uint8

const (
	IKEStateConnecting IKEState = iota // IKE_SA_INIT / IKE_AUTH in progress
	IKEStateEstablished
	IKEStateRekeying // a CREATE_CHILD_SA for its replacement is in flight
	IKEStateRekeyed  // replaced; waiting for its deletion
	IKEStateDeleting
	IKEStateDead
)

func (s IKEState) String() string {
	switch s {
	case IKEStateConnecting:
		return "CONNECTING"
	case IKEStateEstablished:
		return "ESTABLISHED"
	case IKEStateRekeying:
		return "REKEYING"
	case IKEStateRekeyed:
		return "REKEYED"
	case IKEStateDeleting:
		return "DELETING"
	case IKEStateDead:
		return "DEAD"
	}
	return fmt.Sprintf("IKEState(%d)", uint8(s))
}

// ChildState is the life stage of a Child SA.
type ChildState uint8

const (
	ChildStateCreating   ChildState = iota // negotiating
	ChildStateInstalling                   // negotiated, waiting for the kernel
	ChildStateUp                           // installed and up
	ChildStateRekeying                     // up, a rekey is in flight
	ChildStateRekeyed                      // replaced by its successor, waiting for its DELETE
	ChildStateDeleting                     // DELETE in flight
	ChildStateGone
)

func (s ChildState) String() string {
	switch s {
	case ChildStateCreating:
		return "CREATING"
	case ChildStateInstalling:
		return "INSTALLING"
	case ChildStateUp:
		return "INSTALLED"
	case ChildStateRekeying:
		return "REKEYING"
	case ChildStateRekeyed:
		return "REKEYED"
	case ChildStateDeleting:
		return "DELETING"
	case ChildStateGone:
		return "GONE"
	}
	return fmt.Sprintf("ChildState(%d)", uint8(s))
}
