package config

import (
	"fmt"
	"strings"
)

// check runs the checks that need the whole file: unique child names, a PSK for every
// connection, start actions that have a peer to start with.
func (d *decoder) check(cfg *Config) {
	childAt := map[string]string{}
	for _, c := range cfg.Connections {
		cp := "connections." + c.Name
		for _, ch := range c.Children {
			p := cp + ".children." + ch.Name
			if other, dup := childAt[ch.Name]; dup {
				d.errAt(p, "child name %q is already used by %s (line %d): child names must be unique in the file, as cygnetctl --child addresses them by name", ch.Name, other, d.lineOf(other))
				continue
			}
			childAt[ch.Name] = p
			if ch.StartAction != ActionNone && len(c.RemoteAddrs) == 0 {
				d.errAt(p+".start_action", "%s needs the peer's address, but %s.remote_addrs is %%any", ch.StartAction, cp)
			}
		}
		if len(c.LocalAddrs) > 0 && len(c.RemoteAddrs) > 0 && !shareFamily(c) {
			d.errAt(cp+".remote_addrs", "no address family in common with local_addrs: one side is IPv4 only, the other IPv6 only")
		}
		if d.badID[cp+".local"] || d.badID[cp+".remote"] {
			continue // already reported
		}
		if c.Local.ID.Type == IDAny {
			d.errAt(cp+".local.id", "expected our own identity, got %%any")
			continue
		}
		if _, ok := cfg.PSK(c.Local.ID, c.Remote.ID); !ok && !d.badSecrets {
			d.errAt(cp, "no pre-shared key for local.id %s and remote.id %s: add a secrets: ike-%s: section with %s and a secret", c.Local.ID, c.Remote.ID, c.Name, idsHint(c))
		}
	}
	for _, s := range cfg.Secrets {
		used := false
		for _, c := range cfg.Connections {
			if s.Matches(c.Local.ID, c.Remote.ID) {
				used = true
				break
			}
		}
		if !used && len(cfg.Connections) > 0 {
			p := "secrets." + s.Name
			d.warnf(d.lineOf(p), p, "matches no connection's local.id and remote.id")
		}
	}
}

func idsHint(c *Connection) string {
	if c.Remote.ID.Type == IDAny {
		return fmt.Sprintf("id: %s", c.Local.ID)
	}
	return fmt.Sprintf("id-local: %s, id-remote: %s", c.Local.ID, c.Remote.ID)
}

func shareFamily(c *Connection) bool {
	for _, l := range c.LocalAddrs {
		for _, r := range c.RemoteAddrs {
			if l.Is4() == r.Is4() {
				return true
			}
		}
	}
	return false
}

// String renders a connection in the file's syntax (for logs and cygnetctl list-conns);
// it contains no secrets.
func (c *Connection) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: IKEv2, local %s[%d] id %s, remote %s[%d] id %s, proposals %s",
		c.Name, addrList(c.LocalAddrs), c.LocalPort, c.Local.ID, addrList(c.RemoteAddrs), c.RemotePort, c.Remote.ID,
		strings.Join(c.Proposals, ","))
	for _, ch := range c.Children {
		fmt.Fprintf(&b, "; %s: %s === %s %s", ch.Name, tsList(ch.LocalTS), tsList(ch.RemoteTS), ch.Mode)
	}
	return b.String()
}
