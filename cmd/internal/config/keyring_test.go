package config

import (
	"fmt"
	"net/netip"
	"testing"

	"pgregory.net/rapid"
)

// The keyring gives Config.PSK's answer for every pair of identities, whatever the
// secrets: same secret (pointer), same ok.
func TestKeyringMatchesPSK(t *testing.T) {
	pool := []Identity{AnyID,
		{Type: IDFQDN, Value: "gw.example"}, {Type: IDFQDN, Value: "p1.example"},
		{Type: IDFQDN, Value: "p2.example"}, IdentityFromAddr(netip.MustParseAddr("192.0.2.7")),
		{Type: IDKeyID, Value: "0a0b"}}
	rapid.Check(t, func(t *rapid.T) {
		cfg := &Config{}
		n := rapid.IntRange(0, 12).Draw(t, "secrets")
		for i := range n {
			ids := rapid.SliceOfN(rapid.SampledFrom(pool), 0, 3).Draw(t, fmt.Sprintf("ids%d", i))
			cfg.Secrets = append(cfg.Secrets, &Secret{Name: fmt.Sprintf("ike-%d", i), IDs: ids})
		}
		k := NewKeyring(cfg)
		local := rapid.SampledFrom(pool[1:]).Draw(t, "local")
		remote := rapid.SampledFrom(pool).Draw(t, "remote")
		want, wantOK := cfg.PSK(local, remote)
		got, gotOK := k.PSK(local, remote)
		if want != got || wantOK != gotOK {
			t.Fatalf("PSK(%s, %s): keyring %v %v, Config.PSK %v %v", local, remote, name(got), gotOK, name(want), wantOK)
		}
	})
}

func name(s *Secret) string {
	if s == nil {
		return "<none>"
	}
	return s.Name
}

// A concentrator's lookup picks each peer's own key and no other.
func TestKeyringPerPeer(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`
connections:
  branches:
    local: {id: vpn.example}
    remote: {id: "%any"}
secrets:
  ike-b1: {id-gw: vpn.example, id-b: b1.example, secret: key one}
  ike-b2: {id-gw: vpn.example, id-b: b2.example, secret: key two}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeyring(cfg)
	gw := Identity{Type: IDFQDN, Value: "vpn.example"}
	for peer, want := range map[string]string{"b1.example": "key one", "b2.example": "key two"} {
		s, ok := k.PSK(gw, Identity{Type: IDFQDN, Value: peer})
		if !ok || string(s.PSK.Bytes()) != want {
			t.Errorf("%s: got %v, %v; want the key %q", peer, name(s), ok, want)
		}
	}
	if s, ok := k.PSK(gw, Identity{Type: IDFQDN, Value: "b3.example"}); ok {
		t.Errorf("an unknown peer got secret %s", s.Name)
	}
}

func BenchmarkKeyring100k(b *testing.B) {
	cfg := &Config{}
	gw := Identity{Type: IDFQDN, Value: "vpn.example"}
	for i := range 100_000 {
		cfg.Secrets = append(cfg.Secrets, &Secret{Name: fmt.Sprint(i), IDs: []Identity{gw, {Type: IDFQDN, Value: fmt.Sprintf("b%d.example", i)}}})
	}
	k := NewKeyring(cfg)
	peer := Identity{Type: IDFQDN, Value: "b77777.example"}
	b.ResetTimer()
	for b.Loop() {
		if _, ok := k.PSK(gw, peer); !ok {
			b.Fatal("no key")
		}
	}
}
