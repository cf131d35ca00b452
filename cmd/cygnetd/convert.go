package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// connections converts every connection of cfg into the core's definitions
// (actors/ike.Connection). Each looks its pre-shared key up in keys by the IKE SA's
// identities (ike.Connection.PSKFor, RFC 7296 §2.15); a connection for which cfg holds
// no key at all is an error here. Errors name the file and the key path, as the
// configuration loader's do. Warnings say where the core approximates the configuration
// (never silently); today there are none.
func connections(cfg *config.Config, keys *keyring) ([]*ike.Connection, []string, error) {
	var errs []error
	var warns []string
	out := make([]*ike.Connection, 0, len(cfg.Connections))
	for _, c := range cfg.Connections {
		ic, err := connection(cfg, c, keys)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: connections.%s%w", cfg.File, c.Name, err))
			continue
		}
		out = append(out, ic)
	}
	if len(errs) > 0 {
		return nil, warns, errors.Join(errs...)
	}
	return out, warns, nil
}

// pathError is a conversion problem at a key below a connection; it prints as
// ".key.path: message" so that the caller can prefix the connection's path.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string {
	if e.path == "" {
		return ": " + e.err.Error()
	}
	return "." + e.path + ": " + e.err.Error()
}
func (e *pathError) Unwrap() error { return e.err }

func at(path string, err error) error { return &pathError{path: path, err: err} }

// connection converts one connection (swanctl.conf connections.<name>, RFC 7296 terms:
// the IKE SA's proposals §3.3, identities §3.5, traffic selectors §3.13).
//
// rekey_time 0 (swanctl: never rekey) becomes ike.Never for the IKE SA — unless
// reauth_time is set, which the core honours by rekeying at it — and for each child.
func connection(cfg *config.Config, c *config.Connection, keys *keyring) (*ike.Connection, error) {
	ic := &ike.Connection{
		Name:        c.Name,
		Version:     c.Version,
		LocalAddrs:  append([]netip.Addr(nil), c.LocalAddrs...),
		RemoteAddrs: append([]netip.Addr(nil), c.RemoteAddrs...),
		LocalPort:   c.LocalPort,
		RemotePort:  c.RemotePort,
		DPDDelay:    c.DPDDelay,
		RekeyTime:   c.RekeyTime,
		OverTime:    c.OverTime,
		RandTime:    c.RandTime,
		ReauthTime:  c.ReauthTime,
		Encap:       c.Encap,
		// Daemon-wide in strongSwan (charon.*), per IKE SA in the core.
		FragmentSize: cfg.Daemon.FragmentSize,
		Retransmit: ike.Retransmit{Timeout: cfg.Daemon.Retransmit.Timeout,
			Base: cfg.Daemon.Retransmit.Base, Tries: cfg.Daemon.Retransmit.Tries},
	}
	var err error
	if ic.Proposals, err = proposals(wire.ProtoIKE, c.Proposals); err != nil {
		return nil, at("proposals", err)
	}
	if c.Local.Method != config.AuthPSK || c.Remote.Method != config.AuthPSK {
		return nil, at("local.auth", errors.New("only psk is implemented"))
	}
	ic.Local = ike.AuthConfig{ID: identity(c.Local.ID), Auth: ike.AuthPSK}
	ic.Remote = ike.AuthConfig{ID: identity(c.Remote.ID), Auth: ike.AuthPSK}
	if _, ok := cfg.PSK(c.Local.ID, c.Remote.ID); !ok {
		return nil, at("remote.id", fmt.Errorf("no pre-shared key in secrets: for local id %s and remote id %s", c.Local.ID, c.Remote.ID))
	}
	ic.PSKFor = keys.psk
	if c.RekeyTime == 0 && c.ReauthTime == 0 {
		ic.RekeyTime = ike.Never
	}
	if !c.Fragmentation {
		ic.Fragmentation = ike.FragmentationNo
	}
	switch c.Childless {
	case config.ChildlessAllow:
		ic.Childless = ike.ChildlessAllow
	case config.ChildlessForce:
		ic.Childless = ike.ChildlessForce
	case config.ChildlessNever:
		ic.Childless = ike.ChildlessNever
	default:
		return nil, at("childless", fmt.Errorf("unknown value %v", c.Childless))
	}
	for _, ch := range c.Children {
		cc, err := child(c, ch)
		if err != nil {
			return nil, err
		}
		ic.Children = append(ic.Children, cc)
	}
	if err := ic.Validate(); err != nil {
		return nil, at("", err)
	}
	return ic, nil
}

func child(c *config.Connection, ch *config.Child) (ike.ChildConfig, error) {
	p := "children." + ch.Name + "."
	cc := ike.ChildConfig{
		Name:         ch.Name,
		RekeyTime:    rekeyTime(ch.RekeyTime),
		LifeTime:     ch.LifeTime,
		RandTime:     ch.RandTime,
		RekeyBytes:   ch.RekeyBytes,
		LifeBytes:    ch.LifeBytes,
		RandBytes:    ch.RandBytes,
		RekeyPackets: ch.RekeyPackets,
		LifePackets:  ch.LifePackets,
		RandPackets:  ch.RandPackets,
		ReplayWindow: ch.ReplayWindow,
		StartAction:  action(ch.StartAction),
		DPDAction:    action(ch.DPDAction),
		CloseAction:  action(ch.CloseAction),
	}
	if ch.Mode == config.ModeTransport {
		cc.Mode = ike.ModeTransport
	}
	var err error
	if cc.ESPProposals, err = proposals(wire.ProtoESP, ch.ESPProposals); err != nil {
		return cc, at(p+"esp_proposals", err)
	}
	if cc.LocalTS, err = selectors(ch.LocalTS, c.LocalAddrs); err != nil {
		return cc, at(p+"local_ts", err)
	}
	if cc.RemoteTS, err = selectors(ch.RemoteTS, c.RemoteAddrs); err != nil {
		return cc, at(p+"remote_ts", err)
	}
	return cc, nil
}

// rekeyTime maps a child's rekey_time: 0 is "never rekey" in the configuration
// (swanctl.conf) and ike.Never in the core, where 0 means "the default".
func rekeyTime(d time.Duration) time.Duration {
	if d == 0 {
		return ike.Never
	}
	return d
}

func action(a config.Action) ike.Action {
	switch a {
	case config.ActionStart:
		return ike.ActionStart
	case config.ActionTrap:
		return ike.ActionTrap
	}
	return ike.ActionNone
}

// proposals parses the configuration's proposal strings (already checked for shape by
// the loader) with wire/proposal, the parser the core negotiates with (RFC 7296 §3.3).
func proposals(proto wire.ProtocolID, list []string) ([]wire.Proposal, error) {
	if len(list) == 0 {
		list = []string{"default"}
	}
	props, err := proposal.Parse(proto, strings.Join(list, ","))
	if err != nil {
		return nil, err
	}
	return props, nil
}

// identity converts a configured identity to the core's (RFC 7296 §3.5): the
// Identification Data as sent in IDi/IDr.
func identity(id config.Identity) ike.Identity {
	switch id.Type {
	case config.IDAny:
		return ike.Identity{Type: ike.IDAny}
	case config.IDIPv4, config.IDIPv6:
		if a, err := netip.ParseAddr(id.Value); err == nil {
			return ike.IdentityFromAddr(a)
		}
	case config.IDKeyID:
		if b, err := hex.DecodeString(id.Value); err == nil {
			return ike.Identity{Type: ike.IDKeyID, Data: b}
		}
	case config.IDFQDN:
		return ike.Identity{Type: ike.IDFQDN, Data: []byte(id.Value)}
	case config.IDRFC822:
		return ike.Identity{Type: ike.IDRFC822, Data: []byte(id.Value)}
	}
	// The loader canonicalises identities, so this is a value it never produces.
	return ike.Identity{Type: ike.IDType(id.Type), Data: []byte(id.Value)}
}

// selectors converts traffic selectors (RFC 7296 §3.13.1). The core writes swanctl's
// "dynamic" as an empty list (the outer address of that side, learnt when the IKE SA
// comes up); a dynamic selector narrowed to a protocol or port, or mixed with others, is
// resolved here when the side has exactly one configured address.
func selectors(ts []config.TrafficSelector, addrs []netip.Addr) ([]ike.TrafficSelector, error) {
	if len(ts) == 1 && ts[0].Dynamic && ts[0].Protocol == 0 && ts[0].StartPort == 0 && ts[0].EndPort == 0xffff {
		return nil, nil
	}
	out := make([]ike.TrafficSelector, 0, len(ts))
	for _, t := range ts {
		start, end := t.Start, t.End
		if t.Dynamic {
			if len(addrs) != 1 {
				return nil, fmt.Errorf("%s: a dynamic selector with a protocol or port, or next to other selectors, needs exactly one address on that side (local_addrs/remote_addrs)", t)
			}
			start, end = addrs[0].Unmap(), addrs[0].Unmap()
		}
		out = append(out, ike.TrafficSelector{Protocol: t.Protocol, Start: start, End: end, StartPort: t.StartPort, EndPort: t.EndPort})
	}
	return out, nil
}
