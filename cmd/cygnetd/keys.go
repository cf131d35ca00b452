package main

import (
	"encoding/hex"
	"net/netip"
	"reflect"
	"sync/atomic"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
)

// keyring is the daemon's pre-shared key lookup (ike.Connection.PSKFor): the key for
// the identities of an IKE SA, from the running configuration's secrets (RFC 7296
// §2.15). A concentrator connection with remote id %any thus picks each peer's own key
// by the IDi it sent, as swanctl's secrets { ike-x { id = … } } do.
//
// Every connection's PSKFor is the same keyring, which reads the configuration current
// at the time of the call: a reload that changes only secrets changes the key of new
// IKE SAs without replacing the connection (established IKE SAs keep running, since the
// key is used only in IKE_AUTH). It is safe for concurrent use.
type keyring struct {
	cur atomic.Pointer[config.Keyring]
}

// set makes cfg's secrets the ones looked up from now on.
func (k *keyring) set(cfg *config.Config) { k.cur.Store(config.NewKeyring(cfg)) }

// psk is an ike.Connection.PSKFor. Before set it finds no key.
func (k *keyring) psk(local, remote ike.Identity) (ike.Secret, bool) {
	ring := k.cur.Load()
	if ring == nil {
		return nil, false
	}
	l, ok := configIdentity(local)
	if !ok {
		return nil, false
	}
	r, ok := configIdentity(remote)
	if !ok {
		return nil, false
	}
	s, ok := ring.PSK(l, r)
	if !ok {
		return nil, false
	}
	return ike.Secret(append([]byte(nil), s.PSK.Bytes()...)), true
}

// configIdentity is the configuration's spelling of a core identity (RFC 7296 §3.5);
// ok is false for a type the configuration cannot name (no secret can be for it).
func configIdentity(id ike.Identity) (config.Identity, bool) {
	switch id.Type {
	case ike.IDAny:
		return config.AnyID, true
	case ike.IDIPv4, ike.IDIPv6:
		a, ok := netip.AddrFromSlice(id.Data)
		if !ok || (id.Type == ike.IDIPv4) != a.Is4() {
			return config.Identity{}, false
		}
		return config.IdentityFromAddr(a), true
	case ike.IDFQDN:
		return config.Identity{Type: config.IDFQDN, Value: string(id.Data)}, true
	case ike.IDRFC822:
		return config.Identity{Type: config.IDRFC822, Value: string(id.Data)}, true
	case ike.IDKeyID:
		return config.Identity{Type: config.IDKeyID, Value: hex.EncodeToString(id.Data)}, true
	}
	return config.Identity{}, false
}

// keepUnchanged replaces each connection of next whose definition equals the running
// one's by the running *ike.Connection itself. The actor tree replaces a connection's
// SAs when its definition is not deeply equal to the one it holds, and a func field
// (PSKFor) is never deeply equal to another: without this every reload would replace
// every connection's SAs. The key is not part of the definition (config.Diff's
// SecretChanged): the shared keyring serves the new one.
func keepUnchanged(running map[string]*ike.Connection, next []*ike.Connection) {
	for i, c := range next {
		old, ok := running[c.Name]
		if !ok {
			continue
		}
		a, b := *old, *c
		a.PSKFor, b.PSKFor = nil, nil
		a.PSK, b.PSK = nil, nil
		if reflect.DeepEqual(&a, &b) {
			next[i] = old
		}
	}
}

// byName indexes connections by name.
func byName(conns []*ike.Connection) map[string]*ike.Connection {
	m := make(map[string]*ike.Connection, len(conns))
	for _, c := range conns {
		m[c.Name] = c
	}
	return m
}
