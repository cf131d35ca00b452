package config

import (
	"reflect"
	"slices"
)

// Changes is what a reload changes (see Diff).
type Changes struct {
	// Added are connections only in the new file, Removed only in the old one (in the
	// order of their file).
	Added, Removed []string
	// Changed are connections whose definition differs: their SAs must be replaced.
	Changed []string
	// SecretChanged are connections whose definition is the same but whose pre-shared
	// key changed: new IKE SAs use the new key, established ones are left alone (the key
	// is used only in IKE_AUTH, RFC 7296 §2.15).
	SecretChanged []string
	// Unchanged are connections whose SAs must not be touched.
	Unchanged []string
	// Restart lists daemon: keys that changed but take effect only when cygnetd restarts.
	// Every other daemon: key (log levels, cookie_threshold, block_threshold,
	// gc_percent, memory_limit) applies at reload.
	Restart []string
}

// Empty reports whether nothing about the connections changed.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed)+len(c.SecretChanged) == 0
}

// Diff compares two configurations, connection by connection, by deep equality of
// their definitions (line numbers and secrets are not part of a definition).
func Diff(old, cur *Config) Changes {
	var ch Changes
	for _, oc := range old.Connections {
		if _, ok := cur.Connection(oc.Name); !ok {
			ch.Removed = append(ch.Removed, oc.Name)
		}
	}
	for _, nc := range cur.Connections {
		oc, ok := old.Connection(nc.Name)
		switch {
		case !ok:
			ch.Added = append(ch.Added, nc.Name)
		case !reflect.DeepEqual(oc, nc):
			ch.Changed = append(ch.Changed, nc.Name)
		case !samePSK(old, cur, nc):
			ch.SecretChanged = append(ch.SecretChanged, nc.Name)
		default:
			ch.Unchanged = append(ch.Unchanged, nc.Name)
		}
	}
	o, n := old.Daemon, cur.Daemon
	restart := []struct {
		key  string
		same bool
	}{
		{"listen_addrs", slices.Equal(o.ListenAddrs, n.ListenAddrs)},
		{"port", o.Port == n.Port},
		{"port_nat_t", o.PortNATT == n.PortNATT},
		{"metrics_address", o.MetricsAddress == n.MetricsAddress},
		{"debug_address", o.DebugAddress == n.DebugAddress},
		{"control_socket", o.ControlSocket == n.ControlSocket},
		{"log.format", o.Log.Format == n.Log.Format},
		{"kernel", o.Kernel == n.Kernel},
		{"chaos", o.Chaos == n.Chaos},
	}
	for _, r := range restart {
		if !r.same {
			ch.Restart = append(ch.Restart, "daemon."+r.key)
		}
	}
	return ch
}

// samePSK reports whether the key a connection resolves to is the same in both files,
// including every secret a responder could pick for a concrete peer identity: when
// remote.id is %any the key depends on the peer, so any change to a matching secret
// counts.
func samePSK(old, cur *Config, c *Connection) bool {
	match := func(cfg *Config) []*Secret {
		var out []*Secret
		for _, s := range cfg.Secrets {
			if s.Matches(c.Local.ID, c.Remote.ID) {
				out = append(out, s)
			}
		}
		return out
	}
	a, b := match(old), match(cur)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].PSK.Equal(b[i].PSK) || !slices.Equal(a[i].IDs, b[i].IDs) {
			return false
		}
	}
	return true
}
