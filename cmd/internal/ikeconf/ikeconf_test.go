package ikeconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustProposals(t *testing.T, proto wire.ProtocolID, s string) []wire.Proposal {
	t.Helper()
	p, err := proposal.Parse(proto, s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestConnection(t *testing.T) {
	cfg := parse(t, `
daemon:
  listen_addrs: [192.0.2.1]
  port: 5500
  port_nat_t: 5501
  cookie_threshold: 7
  block_threshold: 2
  chaos: yes
connections:
  ab:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    proposals: aes256gcm16-prfsha256-x25519
    remote: {id: "@b.example"}
    dpd_delay: 30s
    rekey_time: 2h
    fragmentation: no
    encap: yes
    childless: force
    children:
      net:
        local_ts: "10.1.0.0/16, 10.2.0.1-10.2.0.9[tcp/22]"
        esp_proposals: aes128-sha256-modp2048-esn
        mode: transport
        start_action: trap
        dpd_action: restart
        rekey_time: 20m
        rekey_bytes: 1m
secrets:
  ike-ab: {id-a: 192.0.2.1, id-b: "@b.example", secret: 0x0102}
`)
	got, warns, err := Connection(cfg, cfg.Connections[0])
	if err != nil || len(warns) > 0 {
		t.Fatalf("Connection: %v %v", err, warns)
	}
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	want := &ike.Connection{
		Name: "ab", LocalAddrs: []netip.Addr{a1}, RemoteAddrs: []netip.Addr{a2}, LocalPort: 500, RemotePort: 500,
		Proposals: mustProposals(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519"),
		Local:     ike.AuthConfig{ID: ike.IdentityFromAddr(a1)},
		Remote:    ike.AuthConfig{ID: ike.Identity{Type: ike.IDFQDN, Data: []byte("b.example")}},
		PSK:       ike.Secret{1, 2},
		DPDDelay:  30 * time.Second, RekeyTime: 2 * time.Hour, OverTime: 12 * time.Minute, RandTime: 12 * time.Minute,
		Fragmentation: ike.FragmentationNo, Encap: true, Childless: ike.ChildlessForce,
		Children: []ike.ChildConfig{{
			Name: "net",
			LocalTS: []ike.TrafficSelector{
				{Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255"), EndPort: 0xffff},
				{Protocol: 6, Start: netip.MustParseAddr("10.2.0.1"), End: netip.MustParseAddr("10.2.0.9"), StartPort: 22, EndPort: 22},
			},
			ESPProposals: mustProposals(t, wire.ProtoESP, "aes128-sha256-modp2048-esn"),
			Mode:         ike.ModeTransport, StartAction: ike.ActionTrap, DPDAction: ike.ActionStart,
			RekeyTime: 20 * time.Minute, LifeTime: 22 * time.Minute, RandTime: 2 * time.Minute,
			RekeyBytes: 1 << 20, LifeBytes: (1 << 20) + (1<<20)/10, RandBytes: (1 << 20) / 10, ReplayWindow: 32,
		}},
	}
	if d := cmp.Diff(want, got, cmpAddr); d != "" {
		t.Errorf("ike.Connection (-want +got):\n%s", d)
	}

	ac, _, err := ActorsConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ac.Sockets.IKEPort != 5500 || ac.Sockets.NATTPort != 5501 || ac.IKE.NATTPort != 5501 || ac.CookieThreshold != 7 ||
		ac.HalfOpenPerPeer != 2 || !ac.Chaos || len(ac.Connections) != 1 || ac.Sockets.Addrs[0] != a1 || !ac.StartActions {
		t.Errorf("actors.Config = %+v", ac)
	}
}

// The configuration's identity reader and the core's agree on every syntax.
func TestIdentitiesAgree(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "@gw.example", "gw.example", "fqdn:192.0.2.1",
		"fqdn:carol@example", "carol@example", "email:carol", "keyid:0a1b", "@#c0ffee", "ipv4:192.0.2.1", "ipv6:2001:db8::1"} {
		cid, err := config.ParseIdentity(s)
		if err != nil {
			t.Errorf("config.ParseIdentity(%q): %v", s, err)
			continue
		}
		got, err := identity(cid)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want, err := ike.ParseIdentity(s)
		if err != nil {
			t.Errorf("ike.ParseIdentity(%q): %v", s, err)
			continue
		}
		if !got.Matches(want) || !want.Matches(got) {
			t.Errorf("%q: configuration reads %v %q, core reads %v %q", s, got.Type, got.Data, want.Type, want.Data)
		}
	}
}

func TestDynamicSelectors(t *testing.T) {
	for _, c := range []struct{ ts, err string }{
		{"dynamic", ""},
		{"dynamic, 10.0.0.0/8", "dynamic cannot be combined with other selectors yet"},
		{"dynamic[udp/1701]", "dynamic with a protocol or port is not supported by the core yet"},
	} {
		cfg := parse(t, `
connections:
  c:
    local: {id: a.example}
    children: {n: {local_ts: "`+c.ts+`"}}
secrets: {ike: {secret: k}}
`)
		ic, _, err := Connection(cfg, cfg.Connections[0])
		if c.err == "" {
			if err != nil || len(ic.Children[0].LocalTS) != 0 {
				t.Errorf("%s: %v %+v", c.ts, err, ic)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "test.yaml: connection c: child n: local_ts: ") {
			t.Errorf("%s: error %v, want %q", c.ts, err, c.err)
		}
	}
}

func TestWarnings(t *testing.T) {
	cfg := parse(t, `
connections:
  c:
    local: {id: gw.example}
    rekey_time: 0
    children: {n: {rekey_time: 0}}
secrets:
  ike-p1: {id-a: gw.example, id-b: p1.example, secret: k1}
  ike-p2: {id-a: gw.example, id-b: p2.example, secret: k2}
`)
	_, warns, err := Connections(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"test.yaml: connection c: remote.id is %any and 2 different pre-shared keys match; the core holds one key per connection, so every peer must use the key of secrets.ike-p1",
		"test.yaml: connection c: rekey_time 0 (never rekey) is not supported by the core, which rekeys the IKE SA after 4h0m0s",
		"test.yaml: connection c: child n: rekey_time 0 (never rekey) is not supported by the core, which rekeys after 1h0m0s",
	}
	if d := cmp.Diff(want, warns); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// The shipped examples convert, and every result passes the core's own Validate.
func TestExamples(t *testing.T) {
	for _, name := range []string{"site-a.yaml", "site-b.yaml", "concentrator.yaml"} {
		data, err := os.ReadFile(filepath.Join("../../../deploy/examples", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(name, data, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		conns, warns, err := Connections(cfg)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(conns) != len(cfg.Connections) {
			t.Errorf("%s: %d connections converted of %d", name, len(conns), len(cfg.Connections))
		}
		for _, w := range warns {
			t.Logf("%s", w)
		}
		for _, c := range conns {
			if err := c.Validate(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
