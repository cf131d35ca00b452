// Package ikeconf turns a loaded configuration (cmd/internal/config) into what the actor
// tree runs: the core's connection definitions (actors/ike) and the actor tree's daemon
// settings (actors.Config).
//
// Contract: the conversion is total for every file config.Load accepts, except for the
// few settings the core cannot express yet; those are errors (a setting that would change
// meaning) or warnings (a setting that is approximated), never silent. Every returned
// ike.Connection passes ike.(*Connection).Validate.
package ikeconf

import (
	"fmt"
	"strings"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// Connections converts every connection of cfg, in file order. Warnings say where the
// core approximates the configuration.
func Connections(cfg *config.Config) ([]*ike.Connection, []string, error) {
	var out []*ike.Connection
	var warns []string
	var errs []string
	for _, c := range cfg.Connections {
		ic, w, err := Connection(cfg, c)
		warns = append(warns, w...)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, ic)
	}
	if len(errs) > 0 {
		return nil, warns, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, warns, nil
}

// Connection converts one connection of cfg (its PSK is looked up in cfg's secrets).
func Connection(cfg *config.Config, c *config.Connection) (*ike.Connection, []string, error) {
	var warns []string
	fail := func(format string, args ...any) (*ike.Connection, []string, error) {
		return nil, warns, fmt.Errorf("%s: connection %s: %s", cfg.File, c.Name, fmt.Sprintf(format, args...))
	}
	warn := func(format string, args ...any) {
		warns = append(warns, fmt.Sprintf("%s: connection %s: %s", cfg.File, c.Name, fmt.Sprintf(format, args...)))
	}
	props, err := proposal.Parse(wire.ProtoIKE, strings.Join(c.Proposals, ","))
	if err != nil {
		return fail("proposals: %v", err)
	}
	local, err := identity(c.Local.ID)
	if err != nil {
		return fail("local.id: %v", err)
	}
	remote, err := identity(c.Remote.ID)
	if err != nil {
		return fail("remote.id: %v", err)
	}
	secret, ok := cfg.PSK(c.Local.ID, c.Remote.ID)
	if !ok {
		return fail("no pre-shared key for local.id %s and remote.id %s", c.Local.ID, c.Remote.ID)
	}
	if c.Remote.ID.Type == config.IDAny {
		if n := distinctKeys(cfg, c); n > 1 {
			warn("remote.id is %%any and %d different pre-shared keys match; the core holds one key per connection, so every peer must use the key of secrets.%s", n, secret.Name)
		}
	}
	ic := &ike.Connection{
		Name:        c.Name,
		Version:     c.Version,
		LocalAddrs:  c.LocalAddrs,
		RemoteAddrs: c.RemoteAddrs,
		LocalPort:   c.LocalPort,
		RemotePort:  c.RemotePort,
		Proposals:   props,
		Local:       ike.AuthConfig{ID: local, Auth: ike.AuthPSK},
		Remote:      ike.AuthConfig{ID: remote, Auth: ike.AuthPSK},
		PSK:         ike.Secret(append([]byte(nil), secret.PSK.Bytes()...)),
		DPDDelay:    c.DPDDelay,
		RekeyTime:   c.RekeyTime,
		OverTime:    c.OverTime,
		RandTime:    c.RandTime,
		ReauthTime:  c.ReauthTime,
		Encap:       c.Encap,
	}
	if c.RekeyTime == 0 {
		warn("rekey_time 0 (never rekey) is not supported by the core, which rekeys the IKE SA after %v", ike.DefaultIKERekeyTime)
	}
	if !c.Fragmentation {
		ic.Fragmentation = ike.FragmentationNo
	}
	switch c.Childless {
	case config.ChildlessForce:
		ic.Childless = ike.ChildlessForce
	case config.ChildlessNever:
		ic.Childless = ike.ChildlessNever
	}
	for _, ch := range c.Children {
		cc, err := child(ch)
		if err != nil {
			return fail("child %s: %v", ch.Name, err)
		}
		if ch.RekeyTime == 0 {
			warn("child %s: rekey_time 0 (never rekey) is not supported by the core, which rekeys after %v", ch.Name, ike.DefaultChildRekeyTime)
		}
		ic.Children = append(ic.Children, cc)
	}
	if err := ic.Validate(); err != nil {
		return fail("%v", err)
	}
	return ic, warns, nil
}

// distinctKeys counts the different PSKs a responder could pick for c's peers.
func distinctKeys(cfg *config.Config, c *config.Connection) int {
	var keys []string
	for _, s := range cfg.Secrets {
		if !s.Matches(c.Local.ID, c.Remote.ID) {
			continue
		}
		k := string(s.PSK.Bytes())
		dup := false
		for _, x := range keys {
			dup = dup || x == k
		}
		if !dup {
			keys = append(keys, k)
		}
	}
	return len(keys)
}

func identity(id config.Identity) (ike.Identity, error) {
	out, err := ike.ParseIdentity(id.String())
	if err != nil {
		return ike.Identity{}, err
	}
	if uint8(out.Type) != uint8(id.Type) {
		return ike.Identity{}, fmt.Errorf("%s reads as %v in the core but %v in the configuration", id, out.Type, id.Type)
	}
	return out, nil
}

func child(ch *config.Child) (ike.ChildConfig, error) {
	esp, err := proposal.Parse(wire.ProtoESP, strings.Join(ch.ESPProposals, ","))
	if err != nil {
		return ike.ChildConfig{}, fmt.Errorf("esp_proposals: %v", err)
	}
	lts, err := selectors(ch.LocalTS)
	if err != nil {
		return ike.ChildConfig{}, fmt.Errorf("local_ts: %v", err)
	}
	rts, err := selectors(ch.RemoteTS)
	if err != nil {
		return ike.ChildConfig{}, fmt.Errorf("remote_ts: %v", err)
	}
	cc := ike.ChildConfig{
		Name:         ch.Name,
		LocalTS:      lts,
		RemoteTS:     rts,
		ESPProposals: esp,
		StartAction:  action(ch.StartAction),
		DPDAction:    action(ch.DPDAction),
		CloseAction:  action(ch.CloseAction),
		RekeyTime:    ch.RekeyTime,
		LifeTime:     ch.LifeTime,
		RandTime:     ch.RandTime,
		RekeyBytes:   ch.RekeyBytes,
		LifeBytes:    ch.LifeBytes,
		RandBytes:    ch.RandBytes,
		RekeyPackets: ch.RekeyPackets,
		LifePackets:  ch.LifePackets,
		RandPackets:  ch.RandPackets,
		ReplayWindow: ch.ReplayWindow,
	}
	if ch.Mode == config.ModeTransport {
		cc.Mode = ike.ModeTransport
	}
	return cc, nil
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

// selectors converts traffic selectors. The core writes "dynamic" as an empty list, so
// dynamic cannot be combined with other selectors nor narrowed by protocol or port.
func selectors(ts []config.TrafficSelector) ([]ike.TrafficSelector, error) {
	var out []ike.TrafficSelector
	for _, t := range ts {
		if t.Dynamic {
			if len(ts) > 1 {
				return nil, fmt.Errorf("dynamic cannot be combined with other selectors yet (the core reads an empty list as dynamic)")
			}
			if t.Protocol != 0 || t.StartPort != 0 || t.EndPort != 0xffff {
				return nil, fmt.Errorf("%s: dynamic with a protocol or port is not supported by the core yet", t)
			}
			return nil, nil
		}
		out = append(out, ike.TrafficSelector{Protocol: t.Protocol, Start: t.Start, End: t.End, StartPort: t.StartPort, EndPort: t.EndPort})
	}
	return out, nil
}

// ActorsConfig is the actor tree's configuration for cfg: actors.DefaultConfig with the
// daemon: section's sockets and limits and the converted connections.
func ActorsConfig(cfg *config.Config) (actors.Config, []string, error) {
	ac := actors.DefaultConfig()
	conns, warns, err := Connections(cfg)
	if err != nil {
		return ac, warns, err
	}
	d := cfg.Daemon
	ac.Connections = conns
	ac.Sockets.Addrs = d.ListenAddrs
	ac.Sockets.IKEPort, ac.Sockets.NATTPort = d.Port, d.PortNATT
	ac.IKE.NATTPort = d.PortNATT
	ac.CookieThreshold = d.CookieThreshold
	ac.HalfOpenPerPeer = d.BlockThreshold
	ac.Chaos = d.Chaos
	return ac, warns, nil
}
