package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
)

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		in   string
		typ  ike.IDType
		data string
		out  string
	}{
		{"192.0.2.1", ike.IDIPv4, "\xc0\x00\x02\x01", "192.0.2.1"},
		{"2001:db8::1", ike.IDIPv6, "\x20\x01\x0d\xb8" + string(make([]byte, 11)) + "\x01", "2001:db8::1"},
		{"@vpn.example", ike.IDFQDN, "vpn.example", "vpn.example"},
		{"vpn.example", ike.IDFQDN, "vpn.example", "vpn.example"},
		{"fqdn:x", ike.IDFQDN, "x", "x"},
		{"alice@example.org", ike.IDRFC822, "alice@example.org", "alice@example.org"},
		{"keyid:0a0b", ike.IDKeyID, "\x0a\x0b", "keyid:0a0b"},
		{"@#0a0b", ike.IDKeyID, "\x0a\x0b", "keyid:0a0b"},
		{"%any", ike.IDAny, "", "%any"},
	} {
		id, err := ike.ParseIdentity(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if id.Type != c.typ || string(id.Data) != c.data || id.String() != c.out {
			t.Errorf("%q: got %v %q (%s)", c.in, id.Type, id.Data, id)
		}
	}
	for _, bad := range []string{"", "keyid:abc", "keyid:zz", "ipv4:2001:db8::1"} {
		if _, err := ike.ParseIdentity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	any, _ := ike.ParseIdentity("%any")
	if !any.Matches(ike.IdentityFromAddr(netip.MustParseAddr("192.0.2.1"))) {
		t.Error("%any does not match")
	}
}

func TestTrafficSelectorString(t *testing.T) {
	ts := ike.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))
	if ts.String() != "10.1.0.0/16" || ts.End != netip.MustParseAddr("10.1.255.255") {
		t.Errorf("got %v end %v", ts, ts.End)
	}
	ts.Protocol, ts.StartPort, ts.EndPort = 6, 80, 80
	if ts.String() != "10.1.0.0/16[6/80]" {
		t.Errorf("got %v", ts)
	}
	r := ike.TrafficSelector{Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("10.0.0.5"), EndPort: 0xffff}
	if r.String() != "10.0.0.1..10.0.0.5" {
		t.Errorf("got %v", r)
	}
}

func TestDefaults(t *testing.T) {
	c := testConn(addrA, addrB, "198.51.100.1/32", "203.0.113.1/32").WithDefaults()
	if c.RekeyTime != 4*time.Hour || c.OverTime != 24*time.Minute || c.RandTime != 24*time.Minute {
		t.Errorf("IKE lifetimes %v %v %v", c.RekeyTime, c.OverTime, c.RandTime)
	}
	ch := c.Children[0]
	if ch.RekeyTime != time.Hour || ch.LifeTime != 66*time.Minute || ch.RandTime != 6*time.Minute {
		t.Errorf("child lifetimes %v %v %v", ch.RekeyTime, ch.LifeTime, ch.RandTime)
	}
	if c.Retransmit.Timeout != 4*time.Second || c.Retransmit.Base != 1.8 || c.Retransmit.Tries != 5 {
		t.Errorf("retransmit %+v", c.Retransmit)
	}
}

func TestValidate(t *testing.T) {
	ok := testConn(addrA, addrB, "198.51.100.1/32", "203.0.113.1/32")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(c *ike.Connection){
		"no name":         func(c *ike.Connection) { c.Name = "" },
		"no proposals":    func(c *ike.Connection) { c.Proposals = nil },
		"no psk":          func(c *ike.Connection) { c.PSK = nil },
		"version 1":       func(c *ike.Connection) { c.Version = 1 },
		"local %any":      func(c *ike.Connection) { c.Local.ID = ike.Identity{} },
		"dup child":       func(c *ike.Connection) { c.Children = append(c.Children, c.Children[0]) },
		"no esp":          func(c *ike.Connection) { c.Children[0].ESPProposals = nil },
		"ESP as IKE":      func(c *ike.Connection) { c.Proposals = c.Children[0].ESPProposals },
		"reversed TS":     func(c *ike.Connection) { c.Children[0].LocalTS[0].Start = netip.MustParseAddr("198.51.100.9") },
		"jitter over 100": func(c *ike.Connection) { c.Retransmit.Jitter = 101 },
	} {
		c := testConn(addrA, addrB, "198.51.100.1/32", "203.0.113.1/32")
		mut(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s := ike.Secret("x").String(); s != "<redacted>" {
		t.Errorf("secret prints %q", s)
	}
}

// TestNeverRekey: swanctl's rekey_time = 0 ("never") is RekeyTime Never, apart from an
// unset (zero) RekeyTime that takes the default.
func TestNeverRekey(t *testing.T) {
	c := ike.Connection{RekeyTime: ike.Never, Children: []ike.ChildConfig{{Name: "never", RekeyTime: ike.Never}, {Name: "unset"}, {Name: "life", RekeyTime: -5 * time.Second, LifeTime: time.Hour}}}.WithDefaults()
	if c.RekeyTime != ike.Never || c.OverTime != 0 || c.RandTime != 0 {
		t.Errorf("IKE never: rekey %v over %v rand %v", c.RekeyTime, c.OverTime, c.RandTime)
	}
	if ch := c.Children[0]; ch.RekeyTime != ike.Never || ch.LifeTime != 0 || ch.RandTime != 0 {
		t.Errorf("child never: rekey %v life %v rand %v", ch.RekeyTime, ch.LifeTime, ch.RandTime)
	}
	if ch := c.Children[1]; ch.RekeyTime != ike.DefaultChildRekeyTime || ch.LifeTime != ike.DefaultChildRekeyTime*11/10 {
		t.Errorf("child unset: rekey %v life %v", ch.RekeyTime, ch.LifeTime)
	}
	if ch := c.Children[2]; ch.RekeyTime != ike.Never || ch.LifeTime != time.Hour || ch.RandTime != 0 {
		t.Errorf("child never with a lifetime: rekey %v life %v rand %v", ch.RekeyTime, ch.LifeTime, ch.RandTime)
	}
	if u := (ike.Connection{}).WithDefaults(); u.RekeyTime != ike.DefaultIKERekeyTime || u.OverTime != ike.DefaultIKERekeyTime/10 {
		t.Errorf("IKE unset: rekey %v over %v", u.RekeyTime, u.OverTime)
	}
}
