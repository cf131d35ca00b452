package ike

import (
	"errors"
	"time"
)

// Options are daemon-wide settings of a family (strongSwan keeps them in charon.*).
type Options struct {
	// NATTPort is the local port IKE moves to when a NAT is detected (RFC 7296 §2.23;
	// charon.port_nat_t). Default 4500. The remote side moves to its NAT-T port, which
	// is 4500 unless the connection's RemotePort is not 500 (then it stays).
	NATTPort uint16
}

// Family is one IKE family: an IKE SA, the IKE SAs that replace it by rekeying, and all
// their Child SAs. See the package documentation for the contract.
type Family struct {
	cfg  *Connection
	env  Env
	opts Options
	done bool
	out  []Effect
}

// NewInitiator creates a family that will initiate an IKE SA for cfg when it receives
// Initiate, InitiateChild or Acquire. It emits nothing until then.
func NewInitiator(cfg *Connection, env Env, opts Options) (*Family, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.WithDefaults()
	return &Family{cfg: &c, env: env, opts: opts.withDefaults()}, nil
}

// NewResponder creates a responder family from the first IKE_SA_INIT request it must
// answer (the manager has checked, via Peek, that first is one, and any COOKIE policy).
// candidates are the connections that may accept this peer, in preference order: the
// IKE_SA_INIT proposal is chosen among them and IKE_AUTH picks the one matching the
// peer's identity. The returned effects are those of processing first. An error means
// first is not an acceptable IKE_SA_INIT (nothing was created; count it as dropped).
func NewResponder(now time.Time, candidates []*Connection, env Env, opts Options, first PacketReceived) (*Family, []Effect, error) {
	return nil, nil, errors.New("ike: responder not implemented yet")
}

func (o Options) withDefaults() Options {
	if o.NATTPort == 0 {
		o.NATTPort = DefaultNATTPort
	}
	return o
}

// Step feeds one event into the family and returns the effects the caller must carry
// out, in order. The returned slice (and the Data of SendDatagram effects, which is
// shared with the retransmission cache) is valid until the next call of Step; copy what
// must outlive it. After FamilyDone, Step returns nothing.
func (f *Family) Step(now time.Time, ev Event) []Effect {
	f.out = f.out[:0]
	if f.done {
		return nil
	}
	return f.out
}

// Done reports whether the family has ended (it emitted FamilyDone).
func (f *Family) Done() bool { return f.done }

// Snapshot is a copy of a family's state for listings, the simulator and invariant
// checks.
type Snapshot struct {
	// IKE lists the family's IKE SAs, current first.
	IKE      []IKEInfo
	Children []ChildInfo
	Done     bool
}

// Snapshot returns the family's current state.
func (f *Family) Snapshot() Snapshot {
	return Snapshot{Done: f.done}
}
