package control

import (
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
)

// ConnFromConfig is the list-conns record of a configured connection.
func ConnFromConfig(c *config.Connection) *Conn {
	out := &Conn{
		Name:        c.Name,
		LocalAddrs:  addrs(c.LocalAddrs),
		RemoteAddrs: addrs(c.RemoteAddrs),
		LocalPort:   c.LocalPort,
		RemotePort:  c.RemotePort,
		LocalAuth:   c.Local.Method.String(),
		LocalID:     c.Local.ID.String(),
		RemoteAuth:  c.Remote.Method.String(),
		RemoteID:    c.Remote.ID.String(),
		Proposals:   c.Proposals,
		RekeyTime:   int64(c.RekeyTime.Seconds()),
		DPDDelay:    int64(c.DPDDelay.Seconds()),
		Children:    []ChildConn{},
	}
	for _, ch := range c.Children {
		out.Children = append(out.Children, ChildConn{
			Name:         ch.Name,
			Mode:         ch.Mode.String(),
			LocalTS:      selectors(ch.LocalTS),
			RemoteTS:     selectors(ch.RemoteTS),
			ESPProposals: ch.ESPProposals,
			StartAction:  ch.StartAction.String(),
			RekeyTime:    int64(ch.RekeyTime.Seconds()),
			LifeTime:     int64(ch.LifeTime.Seconds()),
		})
	}
	return out
}

func addrs[T interface{ String() string }](as []T) []string {
	if len(as) == 0 {
		return []string{"%any"}
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func selectors(ts []config.TrafficSelector) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}
