package ike

import (
	"slices"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// This file compares connection definitions, for a reload: a definition that did not
// change keeps its IKE SAs. reflect.DeepEqual cannot do it, because PSKFor is a function
// (never deeply equal when set) and because WithDefaults marks its result.

// Equal reports whether c and o are the same connection definition: every field but
// PSKFor and the unexported marks is compared, after WithDefaults, so that a raw
// definition equals its defaulted copy and a field left zero equals the same field set
// to strongSwan's default. Children are compared in order. Slices are compared by
// content: nil and empty are equal. PSK is part of the definition; a caller that keeps
// SAs across a change of key alone clears PSK on both sides first. Two nil connections
// are equal; nil never equals a non-nil one.
func (c *Connection) Equal(o *Connection) bool {
	if c == nil || o == nil {
		return c == o
	}
	a, b := c.shared(), o.shared()
	return a.Name == b.Name &&
		a.Version == b.Version &&
		slices.Equal(a.LocalAddrs, b.LocalAddrs) &&
		slices.Equal(a.RemoteAddrs, b.RemoteAddrs) &&
		a.LocalPort == b.LocalPort &&
		a.RemotePort == b.RemotePort &&
		proposalsEqual(a.Proposals, b.Proposals) &&
		a.Local.equal(b.Local) &&
		a.Remote.equal(b.Remote) &&
		string(a.PSK) == string(b.PSK) &&
		slices.EqualFunc(a.Children, b.Children, ChildConfig.Equal) &&
		a.DPDDelay == b.DPDDelay &&
		a.RekeyTime == b.RekeyTime &&
		a.OverTime == b.OverTime &&
		a.RandTime == b.RandTime &&
		a.ReauthTime == b.ReauthTime &&
		a.Fragmentation == b.Fragmentation &&
		a.FragmentSize == b.FragmentSize &&
		a.Encap == b.Encap &&
		a.Childless == b.Childless &&
		a.Retransmit == b.Retransmit &&
		a.InitGrace == b.InitGrace &&
		a.HalfOpenTimeout == b.HalfOpenTimeout
}

// Equal reports whether c and o are the same Child SA definition after WithDefaults
// (see Connection.Equal).
func (c ChildConfig) Equal(o ChildConfig) bool {
	a, b := c.WithDefaults(), o.WithDefaults()
	return a.Name == b.Name &&
		slices.Equal(a.LocalTS, b.LocalTS) &&
		slices.Equal(a.RemoteTS, b.RemoteTS) &&
		proposalsEqual(a.ESPProposals, b.ESPProposals) &&
		a.Mode == b.Mode &&
		a.StartAction == b.StartAction &&
		a.DPDAction == b.DPDAction &&
		a.CloseAction == b.CloseAction &&
		a.RekeyTime == b.RekeyTime &&
		a.LifeTime == b.LifeTime &&
		a.RandTime == b.RandTime &&
		a.RekeyBytes == b.RekeyBytes &&
		a.LifeBytes == b.LifeBytes &&
		a.RandBytes == b.RandBytes &&
		a.RekeyPackets == b.RekeyPackets &&
		a.LifePackets == b.LifePackets &&
		a.RandPackets == b.RandPackets &&
		a.ReplayWindow == b.ReplayWindow
}

func (a AuthConfig) equal(b AuthConfig) bool {
	return a.ID.Equal(b.ID) && a.Auth == b.Auth
}

// proposalsEqual compares proposals in order (RFC 7296 §3.3: the order is the
// preference), transforms in order, SPIs by content.
func proposalsEqual(a, b []wire.Proposal) bool {
	return slices.EqualFunc(a, b, func(p, q wire.Proposal) bool {
		return p.Num == q.Num && p.Protocol == q.Protocol &&
			string(p.SPI) == string(q.SPI) && slices.Equal(p.Transforms, q.Transforms)
	})
}
