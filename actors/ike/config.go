package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// This file holds connection definitions: plain Go values, built by the daemon from its
// swanctl-style YAML (reading files is not the core's job). Field names and defaults follow
// strongSwan's swanctl.conf so that a configuration means the same thing to both.

// Never, as the RekeyTime of a Connection or a ChildConfig, disables rekeying (swanctl
// rekey_time = 0): any negative RekeyTime means the same. A zero RekeyTime is "unset"
// and takes strongSwan's default.
const Never time.Duration = -1

// Defaults, as strongSwan 5.9 (swanctl.conf(5), strongswan.conf(5)).
const (
	DefaultIKERekeyTime   = 4 * time.Hour
	DefaultChildRekeyTime = time.Hour
	DefaultIKEPort        = 500  // RFC 7296 §2
	DefaultNATTPort       = 4500 // RFC 3948, RFC 7296 §2.23
	// DefaultFragmentSize is strongSwan's charon.fragment_size: the largest IKE datagram
	// (IP header included) sent unfragmented when both ends support RFC 7383.
	DefaultFragmentSize = 1280
	// DefaultReplayWindow is strongSwan's charon.replay_window.
	DefaultReplayWindow = 32
)

// Retransmission defaults (strongSwan charon.retransmit_*): the n-th retransmission of a
// request is sent after Timeout * Base^n, at most Tries times; after the last one the
// family waits Timeout * Base^(Tries+1) once more and then gives up (RFC 7296 §2.1, §2.4).
const (
	DefaultRetransmitTimeout = 4 * time.Second
	DefaultRetransmitBase    = 1.8
	DefaultRetransmitTries   = 5
	// DefaultRetransmitJitter is the percentage by which each retransmission delay is
	// randomly shortened (strongSwan's retransmit_jitter; cygnet turns it on by default so
	// that many families that lost the same peer do not retransmit in lock-step).
	DefaultRetransmitJitter = 10
	// DefaultInitGrace is how long an IKE_SA_INIT initiator keeps listening for a valid
	// response after it received an unprotected error notify (RFC 7296 §2.21.1).
	DefaultInitGrace = 5 * time.Second
	// DefaultHalfOpenTimeout bounds how long a responder family waits for IKE_AUTH after
	// answering IKE_SA_INIT (strongSwan's charon.half_open_timeout).
	DefaultHalfOpenTimeout = 30 * time.Second
)

// Connection is one IKE connection definition, usable as initiator and as responder
// (swanctl.conf "connections.<name>"). Zero values mean "strongSwan's default": call
// WithDefaults (the constructors do) to get the effective values.
type Connection struct {
	Name    string
	Version int // IKE major version: 0 or 2 (only IKEv2 is implemented)

	// LocalAddrs and RemoteAddrs are the outer addresses (swanctl local_addrs,
	// remote_addrs). The initiator uses the first of each; a responder accepts any of them.
	// Empty means %any.
	LocalAddrs  []netip.Addr
	RemoteAddrs []netip.Addr
	LocalPort   uint16 // default 500
	RemotePort  uint16 // default 500

	// Proposals are the IKE proposals in preference order (swanctl proposals, parsed with
	// package wire/proposal). The initiator's first KE transform is its first guess.
	Proposals []wire.Proposal

	Local  AuthConfig // how we authenticate (swanctl local{})
	Remote AuthConfig // what we require of the peer (swanctl remote{})
	// PSK is the pre-shared key for Local.ID/Remote.ID (swanctl secrets.ike-*).
	PSK Secret
	// PSKFor, when set, looks the pre-shared key up by the identities of the IKE SA
	// instead of using PSK (swanctl secrets: one ike-* section per peer), so that a
	// connection with remote id %any serves many peers with a key each. The responder
	// calls it at IKE_AUTH with the peer's IDi (RFC 7296 §2.15); the initiator with
	// Remote.ID for its own AUTH and with the peer's IDr to verify the answer. ok false
	// means no key for that pair: the IKE SA fails with AUTHENTICATION_FAILED. It must
	// be safe to call from the family's goroutine (cmd/cygnetd: config.Config.PSK).
	PSKFor func(local, remote Identity) (key Secret, ok bool)

	Children []ChildConfig

	// DPDDelay is the idle time after which a liveness check (an empty INFORMATIONAL
	// request, RFC 7296 §2.4) is sent; 0 disables liveness checks (swanctl dpd_delay).
	DPDDelay time.Duration

	// RekeyTime is when the IKE SA is rekeyed (§2.8), minus a random part of RandTime.
	// OverTime is how long after RekeyTime the IKE SA may live before it is closed hard.
	// RandTime defaults to OverTime. ReauthTime is accepted for compatibility; cygnet
	// never re-authenticates and rekeys instead: when RekeyTime is 0 and ReauthTime is
	// set, the IKE SA is rekeyed at ReauthTime. RekeyTime Never: the IKE SA is never
	// rekeyed and has no over time (it lives until deleted).
	RekeyTime  time.Duration
	OverTime   time.Duration
	RandTime   time.Duration
	ReauthTime time.Duration

	// Fragmentation offers and uses IKEv2 fragmentation (RFC 7383; swanctl fragmentation
	// = yes, the default). FragmentSize is the largest datagram sent whole.
	Fragmentation FragmentationPolicy
	FragmentSize  int

	// Encap forces UDP encapsulation of ESP by faking NAT detection (swanctl encap).
	Encap bool

	// Childless is RFC 6023's policy (swanctl childless).
	Childless ChildlessPolicy

	// Retransmit are the request retransmission parameters (charon.retransmit_*).
	Retransmit Retransmit

	// InitGrace: see DefaultInitGrace. HalfOpenTimeout: see DefaultHalfOpenTimeout.
	InitGrace       time.Duration
	HalfOpenTimeout time.Duration

	// defaulted: this value came from WithDefaults, so families may share it as is.
	defaulted bool
}

// AuthConfig is one side's identity and authentication method (swanctl local{}/remote{}).
type AuthConfig struct {
	ID   Identity
	Auth AuthMethod
}

// ChildConfig is one Child SA definition (swanctl "children.<name>").
type ChildConfig struct {
	Name string

	// LocalTS and RemoteTS are the traffic selectors we propose and accept (§2.9).
	// Empty means "dynamic": the outer address of that side as a single host.
	LocalTS  []TrafficSelector
	RemoteTS []TrafficSelector

	// ESPProposals in preference order. A KE transform means PFS: it is used in
	// CREATE_CHILD_SA and stripped in IKE_AUTH (as strongSwan does).
	ESPProposals []wire.Proposal

	Mode        Mode
	StartAction Action // none, start or trap
	DPDAction   Action // what the shell should do when the peer is found dead
	CloseAction Action // what the shell should do when the peer closes the Child SA

	// RekeyTime: the Child SA is rekeyed at RekeyTime minus a random part of RandTime.
	// LifeTime: hard expiry (default RekeyTime*1.1). RandTime default LifeTime-RekeyTime.
	// RekeyTime Never: never rekeyed; it expires at LifeTime if set, else never.
	// The byte and packet limits work alike (0 = no limit) and are enforced by the kernel,
	// which reports them as ChildExpired events.
	RekeyTime    time.Duration
	LifeTime     time.Duration
	RandTime     time.Duration
	RekeyBytes   uint64
	LifeBytes    uint64
	RandBytes    uint64
	RekeyPackets uint64
	LifePackets  uint64
	RandPackets  uint64

	ReplayWindow uint32 // default 32
}

// Mode is the IPsec mode of a Child SA (RFC 7296 §1.3.1, USE_TRANSPORT_MODE).
type Mode uint8

const (
	ModeTunnel Mode = iota
	ModeTransport
)

func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "tunnel"
	case ModeTransport:
		return "transport"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Action is a swanctl start/dpd/close action.
type Action uint8

const (
	ActionNone Action = iota
	ActionStart
	ActionTrap
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionStart:
		return "start"
	case ActionTrap:
		return "trap"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ChildlessPolicy is RFC 6023's setting (swanctl childless).
type ChildlessPolicy uint8

const (
	// ChildlessAllow: create the first Child SA in IKE_AUTH, accept a childless
	// initiation from a peer that signals support (the default).
	ChildlessAllow ChildlessPolicy = iota
	// ChildlessForce: as initiator, never create a Child SA in IKE_AUTH.
	ChildlessForce
	// ChildlessNever: as responder, reject childless initiations.
	ChildlessNever
)

func (c ChildlessPolicy) String() string {
	switch c {
	case ChildlessAllow:
		return "allow"
	case ChildlessForce:
		return "force"
	case ChildlessNever:
		return "never"
	}
	return fmt.Sprintf("ChildlessPolicy(%d)", uint8(c))
}

// FragmentationPolicy is RFC 7383's setting (swanctl fragmentation).
type FragmentationPolicy uint8

const (
	FragmentationYes FragmentationPolicy = iota // offer; fragment when the peer supports it
	FragmentationNo                             // never offer nor send fragments
)

func (f FragmentationPolicy) String() string {
	switch f {
	case FragmentationYes:
		return "yes"
	case FragmentationNo:
		return "no"
	}
	return fmt.Sprintf("FragmentationPolicy(%d)", uint8(f))
}

// AuthMethod is how one side authenticates (RFC 7296 §3.8).
type AuthMethod uint8

const (
	AuthPSK AuthMethod = iota // Shared Key Message Integrity Code (§2.15); the default
)

func (a AuthMethod) String() string {
	switch a {
	case AuthPSK:
		return "psk"
	}
	return fmt.Sprintf("AuthMethod(%d)", uint8(a))
}

// Retransmit holds request retransmission parameters. See DefaultRetransmitTimeout.
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
	Jitter  int // percent, 0..100; negative means none
}

// Secret is key material in configuration. It never prints.
type Secret []byte

func (Secret) String() string { return "<redacted>" }

// GoString keeps %#v from printing the key too.
func (Secret) GoString() string { return "<redacted>" }

// IDType is the type of an IKE identity (RFC 7296 §3.5).
type IDType uint8

const (
	IDIPv4   IDType = 1
	IDFQDN   IDType = 2
	IDRFC822 IDType = 3
	IDIPv6   IDType = 5
	IDKeyID  IDType = 11
	IDAny    IDType = 0 // only in configuration: "%any", matches every peer identity
)

func (t IDType) String() string {
	switch t {
	case IDAny:
		return "ANY"
	case IDIPv4:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822:
		return "ID_RFC822_ADDR"
	case IDIPv6:
		return "ID_IPV6_ADDR"
	case IDKeyID:
		return "ID_KEY_ID"
	}
	return fmt.Sprintf("IDType(%d)", uint8(t))
}

// Identity is an IKE identity: the type and the Identification Data as sent in IDi/IDr.
type Identity struct {
	Type IDType
	Data []byte
}

// ParseIdentity reads an identity the way swanctl does: an IPv4 or IPv6 address, "%any",
// "@fqdn" or a bare host name (ID_FQDN), "user@domain" (ID_RFC822_ADDR), "keyid:hex" or
// "@#hex" (ID_KEY_ID), or an explicit "fqdn:", "email:", "ipv4:", "ipv6:" prefix.
func ParseIdentity(s string) (Identity, error) {
	if s == "" {
		return Identity{}, errors.New("empty identity")
	}
	if s == "%any" {
		return Identity{Type: IDAny}, nil
	}
	switch prefix, rest, ok := strings.Cut(s, ":"); {
	case ok && prefix == "fqdn":
		return Identity{Type: IDFQDN, Data: []byte(rest)}, nil
	case ok && (prefix == "email" || prefix == "rfc822"):
		return Identity{Type: IDRFC822, Data: []byte(rest)}, nil
	case ok && prefix == "keyid":
		return parseKeyID(rest)
	case ok && (prefix == "ipv4" || prefix == "ipv6"):
		a, err := netip.ParseAddr(rest)
		if err != nil || (prefix == "ipv4") != a.Is4() {
			return Identity{}, fmt.Errorf("identity %q: not an %s address", s, prefix)
		}
		return IdentityFromAddr(a), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return IdentityFromAddr(a), nil
	}
	if rest, ok := strings.CutPrefix(s, "@#"); ok {
		return parseKeyID(rest)
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		return Identity{Type: IDFQDN, Data: []byte(rest)}, nil
	}
	if strings.Contains(s, "@") {
		return Identity{Type: IDRFC822, Data: []byte(s)}, nil
	}
	return Identity{Type: IDFQDN, Data: []byte(s)}, nil
}

func parseKeyID(h string) (Identity, error) {
	h = strings.TrimPrefix(h, "0x")
	if len(h) == 0 || len(h)%2 != 0 {
		return Identity{}, fmt.Errorf("key id %q: want an even number of hex digits", h)
	}
	b := make([]byte, len(h)/2)
	for i := range b {
		hi, lo := unhex(h[2*i]), unhex(h[2*i+1])
		if hi < 0 || lo < 0 {
			return Identity{}, fmt.Errorf("key id %q: not hex", h)
		}
		b[i] = byte(hi<<4 | lo)
	}
	return Identity{Type: IDKeyID, Data: b}, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// IdentityFromAddr is the ID_IPV4_ADDR or ID_IPV6_ADDR identity of a.
func IdentityFromAddr(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return Identity{Type: IDIPv4, Data: b[:]}
	}
	b := a.As16()
	return Identity{Type: IDIPv6, Data: b[:]}
}

// Matches reports whether the received identity got satisfies the configured identity
// id (IDAny matches everything).
func (id Identity) Matches(got Identity) bool {
	if id.Type == IDAny {
		return true
	}
	return id.Type == got.Type && string(id.Data) == string(got.Data)
}

// Equal reports whether id and other are the same identity (type and data; %any
// equals only %any). The manager compares identities with it for InitialContact.
func (id Identity) Equal(other Identity) bool {
	return id.Type == other.Type && string(id.Data) == string(other.Data)
}

// String prints the identity the way ParseIdentity reads it.
func (id Identity) String() string {
	switch id.Type {
	case IDAny:
		return "%any"
	case IDIPv4, IDIPv6:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case IDFQDN:
		return string(id.Data)
	case IDRFC822:
		return string(id.Data)
	case IDKeyID:
		return fmt.Sprintf("keyid:%x", id.Data)
	}
	return fmt.Sprintf("%v:%x", id.Type, id.Data)
}

// TrafficSelector is one traffic selector (RFC 7296 §3.13.1): an address range, an IP
// protocol (0 = any) and a port range (0..65535 = any).
type TrafficSelector struct {
	Protocol  uint8
	Start     netip.Addr
	End       netip.Addr
	StartPort uint16
	EndPort   uint16
}

// TSFromPrefix is the selector covering p, any protocol, any port.
func TSFromPrefix(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	return TrafficSelector{Start: p.Addr(), End: lastAddr(p), EndPort: 0xffff}
}

// lastAddr is the highest address inside p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// String prints the selector as swanctl does: 10.0.0.0/24, or a range, with [proto/port].
func (ts TrafficSelector) String() string {
	var s string
	if p, ok := ts.Prefix(); ok {
		s = p.String()
	} else {
		s = ts.Start.String() + ".." + ts.End.String()
	}
	if ts.Protocol == 0 && ts.StartPort == 0 && ts.EndPort == 0xffff {
		return s
	}
	port := ""
	switch {
	case ts.StartPort == 0 && ts.EndPort == 0xffff:
	case ts.StartPort == ts.EndPort:
		port = fmt.Sprintf("%d", ts.StartPort)
	default:
		port = fmt.Sprintf("%d-%d", ts.StartPort, ts.EndPort)
	}
	return fmt.Sprintf("%s[%d/%s]", s, ts.Protocol, port)
}

// Prefix returns the prefix equal to the selector's address range, if there is one.
func (ts TrafficSelector) Prefix() (netip.Prefix, bool) {
	if !ts.Start.IsValid() || ts.Start.BitLen() != ts.End.BitLen() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= ts.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(ts.Start, bits)
		if p.Masked().Addr() == ts.Start && lastAddr(p) == ts.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// WithDefaults returns a copy of c with every zero field set to strongSwan's default,
// including its children's. NewInitiator and NewResponder keep a pointer to a
// connection that came from WithDefaults instead of copying it: a shell that defaults
// each definition once saves a copy per family (the caller must then not modify it
// while families use it).
func (c Connection) WithDefaults() Connection {
	if c.Version == 0 {
		c.Version = 2
	}
	if c.LocalPort == 0 {
		c.LocalPort = DefaultIKEPort
	}
	if c.RemotePort == 0 {
		c.RemotePort = DefaultIKEPort
	}
	switch {
	case c.RekeyTime < 0:
		c.RekeyTime = Never
	case c.RekeyTime == 0 && c.ReauthTime == 0:
		c.RekeyTime = DefaultIKERekeyTime
	case c.RekeyTime == 0:
		c.RekeyTime = c.ReauthTime
	}
	if c.OverTime == 0 && c.RekeyTime > 0 {
		c.OverTime = c.RekeyTime / 10
	}
	if c.RandTime == 0 && c.RekeyTime > 0 {
		c.RandTime = c.OverTime
	}
	if c.FragmentSize == 0 {
		c.FragmentSize = DefaultFragmentSize
	}
	if c.Retransmit.Timeout == 0 {
		c.Retransmit.Timeout = DefaultRetransmitTimeout
	}
	if c.Retransmit.Base == 0 {
		c.Retransmit.Base = DefaultRetransmitBase
	}
	if c.Retransmit.Tries == 0 {
		c.Retransmit.Tries = DefaultRetransmitTries
	}
	if c.Retransmit.Jitter == 0 {
		c.Retransmit.Jitter = DefaultRetransmitJitter
	}
	if c.InitGrace == 0 {
		c.InitGrace = DefaultInitGrace
	}
	if c.HalfOpenTimeout == 0 {
		c.HalfOpenTimeout = DefaultHalfOpenTimeout
	}
	if len(c.Children) > 0 {
		ch := make([]ChildConfig, len(c.Children))
		for i, cc := range c.Children {
			ch[i] = cc.WithDefaults()
		}
		c.Children = ch
	}
	c.defaulted = true
	return c
}

// shared returns the defaulted connection a family keeps: c itself when it came from
// WithDefaults (a concentrator's families then share one copy per definition), else a
// defaulted copy of its own.
func (c *Connection) shared() *Connection {
	if c.defaulted {
		return c
	}
	d := c.WithDefaults()
	return &d
}

// WithDefaults returns a copy of c with every zero field set to strongSwan's default.
func (c ChildConfig) WithDefaults() ChildConfig {
	switch {
	case c.RekeyTime < 0:
		c.RekeyTime = Never
	case c.RekeyTime == 0:
		c.RekeyTime = DefaultChildRekeyTime
	}
	if c.LifeTime == 0 && c.RekeyTime > 0 {
		c.LifeTime = c.RekeyTime + c.RekeyTime/10
	}
	if c.RandTime == 0 && c.RekeyTime > 0 && c.LifeTime > c.RekeyTime {
		c.RandTime = c.LifeTime - c.RekeyTime
	}
	if c.LifeBytes == 0 && c.RekeyBytes != 0 {
		c.LifeBytes = c.RekeyBytes + c.RekeyBytes/10
	}
	if c.RandBytes == 0 && c.LifeBytes > c.RekeyBytes && c.RekeyBytes != 0 {
		c.RandBytes = c.LifeBytes - c.RekeyBytes
	}
	if c.LifePackets == 0 && c.RekeyPackets != 0 {
		c.LifePackets = c.RekeyPackets + c.RekeyPackets/10
	}
	if c.RandPackets == 0 && c.LifePackets > c.RekeyPackets && c.RekeyPackets != 0 {
		c.RandPackets = c.LifePackets - c.RekeyPackets
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	return c
}

// Validate reports the first thing that makes c unusable by the core. The daemon's
// configuration loader reports file positions; this is the core's own last check.
func (c *Connection) Validate() error {
	if c.Name == "" {
		return errors.New("connection without a name")
	}
	if c.Version != 0 && c.Version != 2 {
		return fmt.Errorf("connection %s: IKE version %d not supported", c.Name, c.Version)
	}
	if len(c.Proposals) == 0 {
		return fmt.Errorf("connection %s: no IKE proposals", c.Name)
	}
	for i, p := range c.Proposals {
		if p.Protocol != wire.ProtoIKE {
			return fmt.Errorf("connection %s: IKE proposal %d has protocol %d", c.Name, i+1, p.Protocol)
		}
	}
	if c.Local.Auth != AuthPSK || c.Remote.Auth != AuthPSK {
		return fmt.Errorf("connection %s: only psk authentication is implemented", c.Name)
	}
	if len(c.PSK) == 0 && c.PSKFor == nil {
		return fmt.Errorf("connection %s: psk authentication without a secret", c.Name)
	}
	if c.Local.ID.Type == IDAny {
		return fmt.Errorf("connection %s: local identity cannot be %%any", c.Name)
	}
	if c.Retransmit.Jitter > 100 {
		return fmt.Errorf("connection %s: retransmit jitter %d%% above 100%%", c.Name, c.Retransmit.Jitter)
	}
	seen := make(map[string]bool, len(c.Children))
	for _, ch := range c.Children {
		if ch.Name == "" {
			return fmt.Errorf("connection %s: child without a name", c.Name)
		}
		if seen[ch.Name] {
			return fmt.Errorf("connection %s: two children named %s", c.Name, ch.Name)
		}
		seen[ch.Name] = true
		if len(ch.ESPProposals) == 0 {
			return fmt.Errorf("connection %s: child %s: no ESP proposals", c.Name, ch.Name)
		}
		for i, p := range ch.ESPProposals {
			if p.Protocol != wire.ProtoESP {
				return fmt.Errorf("connection %s: child %s: ESP proposal %d has protocol %d", c.Name, ch.Name, i+1, p.Protocol)
			}
		}
		for _, ts := range append(append([]TrafficSelector(nil), ch.LocalTS...), ch.RemoteTS...) {
			if !ts.Start.IsValid() || !ts.End.IsValid() || ts.Start.BitLen() != ts.End.BitLen() || ts.End.Less(ts.Start) || ts.EndPort < ts.StartPort {
				return fmt.Errorf("connection %s: child %s: bad traffic selector %v", c.Name, ch.Name, ts)
			}
		}
	}
	return nil
}

// Child returns the child definition named name.
func (c *Connection) Child(name string) (*ChildConfig, bool) {
	for i := range c.Children {
		if c.Children[i].Name == name {
			return &c.Children[i], true
		}
	}
	return nil, false
}

// SecretFor returns the pre-shared key of an IKE SA between local and remote: PSKFor's
// answer when it is set, otherwise PSK (RFC 7296 §2.15).
func (c *Connection) SecretFor(local, remote Identity) (Secret, bool) {
	if c.PSKFor != nil {
		return c.PSKFor(local, remote)
	}
	return c.PSK, len(c.PSK) > 0
}
