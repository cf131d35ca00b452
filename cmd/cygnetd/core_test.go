package main

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/sim"
)

// These tests run converted configurations in the deterministic simulator
// (actors/sim): the core, both ends, a virtual network and clock. They show what the
// conversion means to the protocol, not only the values it produces.

// simNode adds a node at addr running the connections of a cygnetd configuration,
// with its own keyring.
func simNode(t *testing.T, w *sim.World, name, addr, yaml string) *sim.Node {
	t.Helper()
	cfg := parse(t, yaml)
	keys := &keyring{}
	keys.set(cfg)
	conns, _, err := connections(cfg, keys)
	if err != nil {
		t.Fatal(err)
	}
	n := w.AddNode(name, netip.MustParseAddr(addr))
	n.Conns = conns
	return n
}

const concentratorYAML = `
connections:
  branches:
    local_addrs: [192.0.2.10]
    local: {id: vpn.example}
    remote: {id: "%any"}
    proposals: [aes256gcm16-prfsha256-x25519]
    children:
      lan:
        local_ts: [10.0.0.0/16]
        remote_ts: [10.128.0.0/9]
        esp_proposals: [aes256gcm16]
secrets:
  ike-b1: {id-gw: vpn.example, id-b: b1.example, secret: branch one key}
  ike-b2: {id-gw: vpn.example, id-b: b2.example, secret: branch two key}
`

func branchYAML(n int, key string) string {
	return fmt.Sprintf(`
connections:
  hq:
    local_addrs: [192.0.2.%[1]d]
    remote_addrs: [192.0.2.10]
    local: {id: b%[1]d.example}
    remote: {id: vpn.example}
    proposals: [aes256gcm16-prfsha256-x25519]
    children:
      lan:
        local_ts: [10.128.%[1]d.0/24]
        remote_ts: [10.0.0.0/16]
        esp_proposals: [aes256gcm16]
secrets:
  ike-hq: {id-a: b%[1]d.example, id-b: vpn.example, secret: %[2]s}
`, n, key)
}

// established returns the node's established IKE SAs' peer identities and their
// installed Child SAs' count.
func establishedPeers(n *sim.Node) map[string]int {
	out := map[string]int{}
	for _, fh := range n.Live() {
		s := fh.F.Snapshot()
		if len(s.IKE) == 0 || s.IKE[0].State != ike.IKEStateEstablished {
			continue
		}
		up := 0
		for _, c := range s.Children {
			if c.State == ike.ChildStateUp {
				up++
			}
		}
		out[s.IKE[0].RemoteID.String()] = up
	}
	return out
}

// A concentrator with remote id %any and two branches with different keys: each
// branch authenticates with its own key and gets its Child SA; a third branch with a
// key the concentrator does not hold for it is refused.
func TestConcentratorTwoKeysInCore(t *testing.T) {
	w := sim.New(1)
	w.AutoDeliver = true
	c := simNode(t, w, "C", "192.0.2.10", concentratorYAML)
	b1 := simNode(t, w, "B1", "192.0.2.1", branchYAML(1, "branch one key"))
	b2 := simNode(t, w, "B2", "192.0.2.2", branchYAML(2, "branch two key"))
	// b3 has no secret at the concentrator; it uses b1's key, which must not do.
	b3 := simNode(t, w, "B3", "192.0.2.3", branchYAML(3, "branch one key"))
	for _, b := range []*sim.Node{b1, b2, b3} {
		if _, err := b.Initiate("hq", ike.InitiateChild{Name: "lan"}); err != nil {
			t.Fatal(err)
		}
	}
	w.Advance(5 * time.Second)
	got := establishedPeers(c)
	want := map[string]int{"b1.example": 1, "b2.example": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("concentrator's established IKE SAs (peer: Child SAs up) = %v, want %v", got, want)
	}
	for _, b := range []*sim.Node{b1, b2} {
		if p := establishedPeers(b); p["vpn.example"] != 1 {
			t.Errorf("%s: established %v, want vpn.example with one Child SA", b.Name, p)
		}
	}
	if p := establishedPeers(b3); len(p) != 0 {
		t.Errorf("B3 (no key at the concentrator) established %v", p)
	}
}

// rekey_time 0 on both ends: nothing is scheduled for rekeying (the core's RekeyAt is
// zero for the IKE SA and the Child SA), and after ten days on the virtual clock the
// same IKE SA and Child SA are still up with their SPIs unchanged.
func TestNeverRekeyInCore(t *testing.T) {
	w := sim.New(2)
	w.AutoDeliver = true
	never := func(y string) string {
		cfg := y + "" // rekey_time 0 at the IKE level and the child's
		return replaceOnce(replaceOnce(cfg, "    proposals:", "    rekey_time: 0\n    proposals:"),
			"        esp_proposals:", "        rekey_time: 0\n        esp_proposals:")
	}
	c := simNode(t, w, "C", "192.0.2.10", never(concentratorYAML))
	b := simNode(t, w, "B1", "192.0.2.1", never(branchYAML(1, "branch one key")))
	if c.Conns[0].RekeyTime != ike.Never || c.Conns[0].Children[0].RekeyTime != ike.Never {
		t.Fatalf("converted rekey times %v / %v, want Never", c.Conns[0].RekeyTime, c.Conns[0].Children[0].RekeyTime)
	}
	if _, err := b.Initiate("hq", ike.InitiateChild{Name: "lan"}); err != nil {
		t.Fatal(err)
	}
	w.Advance(5 * time.Second)
	before := map[string]ike.Snapshot{}
	for _, n := range []*sim.Node{c, b} {
		live := n.Live()
		if len(live) != 1 {
			t.Fatalf("%s: %d families, want 1", n.Name, len(live))
		}
		s := live[0].F.Snapshot()
		if len(s.IKE) != 1 || s.IKE[0].State != ike.IKEStateEstablished || len(s.Children) != 1 || s.Children[0].State != ike.ChildStateUp {
			t.Fatalf("%s: not established with one Child SA: %+v", n.Name, s)
		}
		if !s.IKE[0].RekeyAt.IsZero() || !s.IKE[0].ExpiresAt.IsZero() {
			t.Errorf("%s: IKE SA rekey at %v, expires at %v; want neither", n.Name, s.IKE[0].RekeyAt, s.IKE[0].ExpiresAt)
		}
		if !s.Children[0].RekeyAt.IsZero() || !s.Children[0].ExpireAt.IsZero() {
			t.Errorf("%s: Child SA rekey at %v, expires at %v; want neither", n.Name, s.Children[0].RekeyAt, s.Children[0].ExpireAt)
		}
		before[n.Name] = s
	}
	w.Advance(10 * 24 * time.Hour)
	for _, n := range []*sim.Node{c, b} {
		live := n.Live()
		if len(live) != 1 {
			t.Fatalf("%s: %d families after ten days, want 1", n.Name, len(live))
		}
		s, s0 := live[0].F.Snapshot(), before[n.Name]
		if len(s.IKE) != 1 || s.IKE[0].SPIi != s0.IKE[0].SPIi || s.IKE[0].SPIr != s0.IKE[0].SPIr {
			t.Errorf("%s: the IKE SA changed: %+v, was %+v", n.Name, s.IKE, s0.IKE)
		}
		if len(s.Children) != 1 || s.Children[0].SPIIn != s0.Children[0].SPIIn || s.Children[0].State != ike.ChildStateUp {
			t.Errorf("%s: the Child SA changed: %v, was %v", n.Name, s.Children, s0.Children)
		}
	}
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}
