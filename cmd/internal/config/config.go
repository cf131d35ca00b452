// Package config reads cygnetd's configuration: one YAML file whose vocabulary is
// strongSwan's swanctl.conf(5) — connections, their children, secrets — plus cygnet's
// own daemon: section.
//
// Contract:
//   - Load(path, opts) / Parse(name, data, opts) return a *Config of plain values with
//     every default applied (what you read is what runs), or an error listing every
//     problem found, each as "file:line: key.path: what was expected, what was found"
//     (type *Error, collected in Errors). Unknown keys are errors. Secrets never appear
//     in an error message.
//   - Syntax (YAML, key names, value shapes) and meaning (a PSK for every connection,
//     unique child names, addresses and traffic selectors that parse, lifetimes that make
//     sense) are both checked at load time, so a file that loads will be accepted by the
//     core. A bad file at reload therefore leaves the running configuration in place: the
//     caller simply keeps the old *Config.
//   - Diff(old, new) says which connections were added, removed, changed or unchanged,
//     by deep equality of their definitions, so reload touches only what changed.
//   - Load reads the file and the secret files it names; nothing else (no DNS, no
//     network, no global state).
package config

import (
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
)

// Config is a loaded configuration file.
type Config struct {
	// File is the path the configuration was read from.
	File string
	// Daemon is cygnet's own section.
	Daemon Daemon
	// Connections in file order.
	Connections []*Connection
	// Secrets in file order.
	Secrets []*Secret
	// Warnings are things accepted but worth telling the operator (an ignored key).
	Warnings []string
}

// Connection returns the connection named name.
func (c *Config) Connection(name string) (*Connection, bool) {
	for _, conn := range c.Connections {
		if conn.Name == name {
			return conn, true
		}
	}
	return nil, false
}

// Child returns the child named name and its connection. Child names are unique in a
// file (the control API addresses children by name alone, like swanctl --child).
func (c *Config) Child(name string) (*Connection, *Child, bool) {
	for _, conn := range c.Connections {
		for _, ch := range conn.Children {
			if ch.Name == name {
				return conn, ch, true
			}
		}
	}
	return nil, nil, false
}

// Daemon is the daemon: section: sockets, endpoints, logging and limits.
type Daemon struct {
	// ListenAddrs are the addresses the IKE sockets bind to; empty means all (0.0.0.0
	// and ::).
	ListenAddrs []netip.Addr
	// Port and PortNATT are the IKE and NAT-T ports (strongSwan charon.port,
	// charon.port_nat_t): 500 and 4500 by default (RFC 7296 §2, RFC 3948).
	Port     uint16
	PortNATT uint16
	// MetricsAddress is where /metrics is served (host:port); empty disables it.
	MetricsAddress string
	// ControlSocket is the control socket's path.
	ControlSocket string
	// Log is the logging configuration.
	Log Log
	// CookieThreshold is the number of half-open IKE SAs from which on the responder
	// demands a COOKIE (RFC 7296 §2.6; strongSwan charon.cookie_threshold); 0 means
	// always (strongSwan's 0 disables cookies instead).
	CookieThreshold int
	// Retransmit is the request retransmission schedule of every IKE SA (RFC 7296
	// §2.1; strongSwan charon.retransmit_timeout, _base, _tries): the n-th
	// retransmission waits Timeout·Base^n, and the IKE SA is given up after Tries
	// retransmissions. Zero fields take the core's defaults (4 s, 1.8, 5).
	Retransmit Retransmit
	// FragmentSize is the largest IKE datagram sent whole when RFC 7383 fragmentation
	// is in use (strongSwan charon.fragment_size); 0 takes the core's default (1280).
	FragmentSize int
	// BlockThreshold is the most half-open IKE SAs one peer address may hold (strongSwan
	// charon.block_threshold); more IKE_SA_INIT requests from it are dropped.
	BlockThreshold int
	// Kernel selects the kernel backend.
	Kernel KernelBackend
	// Chaos enables the control API's debug-kill command (chaos testing).
	Chaos bool

	// DebugAddress is where Go's profiler (net/http/pprof, under /debug/pprof/) is
	// served (host:port); empty, the default, disables it. It shows the daemon's
	// goroutines, heap and command line to whoever can connect: bind it to loopback.
	DebugAddress string
	// GCPercent is the garbage collector's target (runtime/debug.SetGCPercent, as
	// GOGC): 0 leaves Go's setting (GOGC, else 100), GCPercentOff turns the collector
	// off unless MemoryLimit is near.
	GCPercent int
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (runtime/debug.SetMemoryLimit, as GOMEMLIMIT); 0 leaves Go's setting (GOMEMLIMIT,
	// else none).
	MemoryLimit int64
}

// GCPercentOff is gc_percent: off.
const GCPercentOff = -1

// Defaults for the daemon section.
const (
	DefaultPort            = 500
	DefaultPortNATT        = 4500
	DefaultMetricsAddress  = "127.0.0.1:9917"
	DefaultControlSocket   = "/run/cygnet/cygnet.sock"
	DefaultCookieThreshold = 30
	DefaultBlockThreshold  = 5
)

// Retransmit is the daemon.retransmit section.
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
}

// Log is the daemon.log section.
type Log struct {
	Format logging.Format
	Level  zapcore.Level
	// Subsystems overrides Level per subsystem.
	Subsystems map[logging.Subsystem]zapcore.Level
}

// Options returns logging.Options for this section (the caller sets Output).
func (l Log) Options() logging.Options {
	return logging.Options{Format: l.Format, Level: l.Level, Levels: l.Subsystems}
}

// KernelBackend selects how Child SAs reach the kernel.
type KernelBackend uint8

const (
	// KernelAuto uses XFRM when the kernel can do ESP and the in-memory kernel
	// otherwise, with a log line saying which.
	KernelAuto KernelBackend = iota
	KernelXFRM
	KernelMemory
)

func (k KernelBackend) String() string {
	switch k {
	case KernelAuto:
		return "auto"
	case KernelXFRM:
		return "xfrm"
	case KernelMemory:
		return "memory"
	}
	return fmt.Sprintf("KernelBackend(%d)", uint8(k))
}

// Connection is one connections.<name> section (swanctl.conf(5)).
type Connection struct {
	Name    string
	Version int // 0 (any) or 2; cygnet speaks IKEv2 only

	// LocalAddrs and RemoteAddrs are the outer addresses; empty means %any. The
	// initiator uses the first of each.
	LocalAddrs  []netip.Addr
	RemoteAddrs []netip.Addr
	LocalPort   uint16
	RemotePort  uint16

	// Proposals are IKE proposals in strongSwan syntax (aes256gcm16-prfsha256-x25519),
	// lowercased, in preference order; "default" is strongSwan's default set.
	Proposals []string

	Local  Auth
	Remote Auth

	// Children in file order.
	Children []*Child

	DPDDelay   time.Duration
	RekeyTime  time.Duration // 0: never rekey
	OverTime   time.Duration
	RandTime   time.Duration
	ReauthTime time.Duration // accepted for compatibility: cygnet rekeys instead

	Fragmentation bool // RFC 7383
	Encap         bool // force UDP encapsulation (RFC 3948)
	Childless     Childless
}

// Auth is a local{} or remote{} section.
type Auth struct {
	// Method is "psk", the only method implemented.
	Method AuthMethod
	// ID is the identity; remote.id defaults to %any (any peer), local.id to the first
	// local address.
	ID Identity
}

// AuthMethod is how one side authenticates (RFC 7296 §2.15).
type AuthMethod uint8

const (
	AuthPSK AuthMethod = iota
)

func (a AuthMethod) String() string {
	if a == AuthPSK {
		return "psk"
	}
	return fmt.Sprintf("AuthMethod(%d)", uint8(a))
}

// Childless is RFC 6023's policy (swanctl childless).
type Childless uint8

const (
	ChildlessAllow Childless = iota
	ChildlessForce
	ChildlessNever
)

func (c Childless) String() string {
	switch c {
	case ChildlessAllow:
		return "allow"
	case ChildlessForce:
		return "force"
	case ChildlessNever:
		return "never"
	}
	return fmt.Sprintf("Childless(%d)", uint8(c))
}

// Child is one children.<name> section.
type Child struct {
	Name string

	// LocalTS and RemoteTS are the traffic selectors (RFC 7296 §2.9); "dynamic" (the
	// default) is that side's outer address.
	LocalTS  []TrafficSelector
	RemoteTS []TrafficSelector

	// ESPProposals in strongSwan syntax, lowercased.
	ESPProposals []string

	Mode        Mode
	StartAction Action
	DPDAction   Action
	CloseAction Action

	RekeyTime    time.Duration
	LifeTime     time.Duration
	RandTime     time.Duration
	RekeyBytes   uint64
	LifeBytes    uint64
	RandBytes    uint64
	RekeyPackets uint64
	LifePackets  uint64
	RandPackets  uint64
	ReplayWindow uint32
}

// Mode is the IPsec mode.
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

// Action is a start_action, dpd_action or close_action. swanctl's dpd/close values
// clear and restart are read as ActionNone and ActionStart.
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

// Secret is one secrets.ike<suffix> section: a PSK and the identities it is for.
type Secret struct {
	// Name is the section name (ike-ab).
	Name string
	// IDs the key is shared between; empty means any identity (swanctl semantics).
	IDs []Identity
	// PSK is the key. It never prints.
	PSK logging.Secret
	// File is the secret_file it was read from, if any.
	File string
}

// Matches reports whether the secret may be used between local and remote. The rules
// follow swanctl's, made strict enough that a key naming one peer is never used for
// another:
//   - a secret without IDs is for any pair;
//   - a secret naming remote (or listing %any) is for it — this covers both
//     {id-a: gw, id-b: carol} and the gateway's usual {id: carol};
//   - a secret naming only local is a group key for every peer of local.
//
// A remote of %any (a responder's configuration before IKE_AUTH) is satisfied by any
// secret that could match some peer.
func (s *Secret) Matches(local, remote Identity) bool {
	_, ok := s.match(local, remote)
	return ok
}

// match also scores the match: each side named exactly counts 2, a listed %any 1, a
// secret without IDs 0, so the most specific secret wins.
func (s *Secret) match(local, remote Identity) (int, bool) {
	if len(s.IDs) == 0 {
		return 0, true
	}
	var hasLocal, hasRemote, hasAny, hasOther bool
	for _, x := range s.IDs {
		switch {
		case x.Type == IDAny:
			hasAny = true
		case x == local:
			hasLocal = true
		default:
			hasOther = true
			if x == remote {
				hasRemote = true
			}
		}
	}
	if remote.Type == IDAny {
		hasRemote = hasOther
	}
	ok := hasRemote || hasAny || (hasLocal && !hasOther)
	score := 0
	if hasLocal {
		score += 2
	}
	if hasRemote && remote.Type != IDAny {
		score += 2
	}
	if hasAny {
		score++
	}
	return score, ok
}

// PSK returns the key for the identities (local, remote): the matching secret with the
// best score (see match), the first in the file on a tie. remote may be a concrete
// identity learnt in IKE_AUTH.
func (c *Config) PSK(local, remote Identity) (*Secret, bool) {
	var best *Secret
	bestScore := -1
	for _, s := range c.Secrets {
		score, ok := s.match(local, remote)
		if ok && score > bestScore {
			best, bestScore = s, score
		}
	}
	return best, best != nil
}
