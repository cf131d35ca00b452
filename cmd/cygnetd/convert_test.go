package main

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

const siteYAML = `
connections:
  site:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048]
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk, id: 192.0.2.2}
    dpd_delay: 30s
    rekey_time: 2h
    fragmentation: no
    childless: force
    children:
      net:
        local_ts: [198.51.100.0/24, 198.51.100.7-198.51.100.9]
        remote_ts: ["203.0.113.0/24[tcp/443]"]
        esp_proposals: [aes128gcm16-x25519]
        mode: transport
        start_action: trap
        rekey_time: 20m
        life_time: 30m
        rekey_bytes: 1m
      dyn:
        start_action: start
        close_action: restart
      dynport:
        local_ts: ["dynamic[udp/53]"]
secrets:
  ike-site:
    id-a: gw-a.example
    id-b: 192.0.2.2
    secret: "0x0102030405060708090a0b0c0d0e0f10"
  ike-other:
    id: someone.else
    secret: not this one
`

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustProposals(t *testing.T, p wire.ProtocolID, s string) []wire.Proposal {
	t.Helper()
	props, err := proposal.Parse(p, s)
	if err != nil {
		t.Fatal(err)
	}
	return props
}

func TestConnectionConversion(t *testing.T) {
	cfg := parse(t, siteYAML)
	keys := &keyring{}
	keys.set(cfg)
	conns, _, err := connections(cfg, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	ts := func(p string) ike.TrafficSelector { return ike.TSFromPrefix(netip.MustParsePrefix(p)) }
	https := ts("203.0.113.0/24")
	https.Protocol, https.StartPort, https.EndPort = 6, 443, 443
	want := &ike.Connection{
		Name:        "site",
		LocalAddrs:  []netip.Addr{a1},
		RemoteAddrs: []netip.Addr{a2},
		LocalPort:   500, RemotePort: 500,
		Proposals: mustProposals(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519,aes128-sha256-modp2048"),
		Local:     ike.AuthConfig{ID: ike.Identity{Type: ike.IDFQDN, Data: []byte("gw-a.example")}, Auth: ike.AuthPSK},
		Remote:    ike.AuthConfig{ID: ike.IdentityFromAddr(a2), Auth: ike.AuthPSK},
		DPDDelay:  30 * time.Second,
		RekeyTime: 2 * time.Hour, OverTime: 12 * time.Minute, RandTime: 12 * time.Minute,
		Fragmentation: ike.FragmentationNo,
		Childless:     ike.ChildlessForce,
		Children: []ike.ChildConfig{{
			Name: "net",
			LocalTS: []ike.TrafficSelector{ts("198.51.100.0/24"),
				{Start: netip.MustParseAddr("198.51.100.7"), End: netip.MustParseAddr("198.51.100.9"), EndPort: 0xffff}},
			RemoteTS:     []ike.TrafficSelector{https},
			ESPProposals: mustProposals(t, wire.ProtoESP, "aes128gcm16-x25519"),
			Mode:         ike.ModeTransport,
			StartAction:  ike.ActionTrap,
			RekeyTime:    20 * time.Minute, LifeTime: 30 * time.Minute, RandTime: 10 * time.Minute,
			RekeyBytes: 1 << 20, LifeBytes: 1<<20 + 1<<20/10, RandBytes: 1 << 20 / 10,
			ReplayWindow: 32,
		}, {
			Name:         "dyn",
			ESPProposals: proposal.Defaults(wire.ProtoESP),
			StartAction:  ike.ActionStart,
			CloseAction:  ike.ActionStart,
			RekeyTime:    time.Hour, LifeTime: time.Hour + 6*time.Minute, RandTime: 6 * time.Minute,
			ReplayWindow: 32,
		}, {
			Name:         "dynport",
			LocalTS:      []ike.TrafficSelector{{Protocol: 17, Start: a1, End: a1, StartPort: 53, EndPort: 53}},
			ESPProposals: proposal.Defaults(wire.ProtoESP),
			RekeyTime:    time.Hour, LifeTime: time.Hour + 6*time.Minute, RandTime: 6 * time.Minute,
			ReplayWindow: 32,
		}},
	}
	if diff := cmp.Diff(want, conns[0], cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmpopts.IgnoreFields(ike.Connection{}, "PSKFor"), cmpopts.IgnoreUnexported(ike.Connection{})); diff != "" {
		t.Errorf("conversion (-want +got):\n%s", diff)
	}
	// The key comes from secrets.ike-site by the IKE SA's identities.
	key, ok := conns[0].SecretFor(want.Local.ID, want.Remote.ID)
	if wantKey := (ike.Secret{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}); !ok || string(key) != string(wantKey) {
		t.Errorf("SecretFor(local, remote) = %x, %v; want secrets.ike-site's key", key, ok)
	}
	if err := conns[0].Validate(); err != nil {
		t.Errorf("the core refuses the converted connection: %v", err)
	}
}

func TestConversionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{{
		name: "dynamic narrowed with %any addresses",
		yaml: `
connections:
  c:
    local: {auth: psk, id: a.example}
    children:
      x:
        local_ts: ["dynamic[tcp/22]"]
secrets:
  ike: {secret: k}
`,
		want: "test.yaml: connections.c.children.x.local_ts: dynamic[tcp/22]: a dynamic selector with a protocol or port",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("test.yaml", []byte(tc.yaml), config.Options{})
			if err != nil {
				t.Fatalf("the loader refused the file, so the conversion is not reached: %v", err)
			}
			_, _, err = connections(cfg, &keyring{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// rekey_time 0 is "never rekey": ike.Never for the IKE SA and the child, with no over
// or life time; reauth_time stands in for an IKE rekey_time 0, as before; no warnings.
func TestNeverRekeyConversion(t *testing.T) {
	cfg := parse(t, `
connections:
  c:
    local: {id: gw.example}
    rekey_time: 0
    children: {n: {rekey_time: 0}, d: {}}
  r:
    local: {id: gw.example}
    rekey_time: 0
    reauth_time: 3h
secrets:
  ike-p1: {id-a: gw.example, id-b: p1.example, secret: k1}
  ike-p2: {id-a: gw.example, id-b: p2.example, secret: k2}
`)
	conns, warns, err := connections(cfg, &keyring{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings %q, want none", warns)
	}
	c := conns[0]
	if c.RekeyTime != ike.Never || c.OverTime != 0 || c.RandTime != 0 {
		t.Errorf("IKE: rekey %v over %v rand %v; want Never, 0, 0", c.RekeyTime, c.OverTime, c.RandTime)
	}
	if n := c.Children[0]; n.RekeyTime != ike.Never || n.LifeTime != 0 || n.RandTime != 0 {
		t.Errorf("child n: rekey %v life %v rand %v; want Never, 0, 0", n.RekeyTime, n.LifeTime, n.RandTime)
	}
	if d := c.Children[1]; d.RekeyTime != time.Hour {
		t.Errorf("child d: rekey %v; want the default 1h", d.RekeyTime)
	}
	eff := c.WithDefaults()
	if eff.RekeyTime != ike.Never || eff.Children[0].RekeyTime != ike.Never || eff.Children[0].LifeTime != 0 {
		t.Errorf("the core's defaults turned Never into %v / %v (life %v)", eff.RekeyTime, eff.Children[0].RekeyTime, eff.Children[0].LifeTime)
	}
	if r := conns[1].WithDefaults(); r.RekeyTime != 3*time.Hour {
		t.Errorf("rekey_time 0 with reauth_time 3h: the core rekeys at %v, want 3h", r.RekeyTime)
	}
}

// A concentrator connection (remote id %any) gets each peer's own key from secrets,
// none for a peer without one; reload keeps a connection whose only change is a key.
func TestConcentratorKeys(t *testing.T) {
	const yaml = `
connections:
  branches:
    local: {id: vpn.example}
    remote: {id: "%any"}
secrets:
  ike-b1: {id-gw: vpn.example, id-b: b1.example, secret: %s}
  ike-b2: {id-gw: vpn.example, id-b: b2.example, secret: key two}
`
	cfg := parse(t, strings.Replace(yaml, "%s", "key one", 1))
	keys := &keyring{}
	keys.set(cfg)
	conns, warns, err := connections(cfg, keys)
	if err != nil || len(warns) != 0 {
		t.Fatalf("warnings %q, error %v", warns, err)
	}
	c := conns[0]
	gw := ike.Identity{Type: ike.IDFQDN, Data: []byte("vpn.example")}
	peer := func(s string) ike.Identity { return ike.Identity{Type: ike.IDFQDN, Data: []byte(s)} }
	for p, want := range map[string]string{"b1.example": "key one", "b2.example": "key two"} {
		if key, ok := c.SecretFor(gw, peer(p)); !ok || string(key) != want {
			t.Errorf("%s: key %q, %v; want %q", p, key, ok, want)
		}
	}
	if key, ok := c.SecretFor(gw, peer("b3.example")); ok {
		t.Errorf("b3.example (no secret) got key %q", key)
	}

	// Reload with b1's key changed: the definition is the same, so the running
	// connection stays (its SAs are not replaced), and new IKE SAs use the new key.
	cur := parse(t, strings.Replace(yaml, "%s", "key one rotated", 1))
	next, _, err := connections(cur, keys)
	if err != nil {
		t.Fatal(err)
	}
	keepUnchanged(byName(conns), next)
	if next[0] != c {
		t.Errorf("a secret-only change replaced the connection")
	}
	keys.set(cur)
	if key, _ := c.SecretFor(gw, peer("b1.example")); string(key) != "key one rotated" {
		t.Errorf("after reload b1's key is %q", key)
	}
	// A changed definition is a new connection.
	changed, _, err := connections(parse(t, strings.NewReplacer("%any", "b1.example", "%s", "key one").Replace(yaml)), keys)
	if err != nil {
		t.Fatal(err)
	}
	keepUnchanged(byName(conns), changed)
	if changed[0] == c {
		t.Errorf("a changed remote id kept the running connection")
	}
}

func TestConfigIdentity(t *testing.T) {
	for _, s := range []string{"%any", "192.0.2.1", "2001:db8::1", "gw.example", "user@example.org", "keyid:0a0b0c"} {
		id, err := ike.ParseIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := config.ParseIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := configIdentity(id); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", s, got, ok, want)
		}
	}
	if _, ok := configIdentity(ike.Identity{Type: ike.IDIPv4, Data: []byte{1, 2}}); ok {
		t.Errorf("a 2-byte IPv4 identity converted")
	}
}

// The shipped examples convert without errors, and every result passes the core's own
// Validate.
func TestExamplesConvert(t *testing.T) {
	for _, name := range []string{"site-a.yaml", "site-b.yaml", "concentrator.yaml"} {
		cfg, err := config.Load(filepath.Join("../../deploy/examples", name), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		conns, warns, err := connections(cfg, &keyring{})
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

func TestOverrides(t *testing.T) {
	cfg := parse(t, siteYAML)
	o := overrides{kernel: "memory", chaos: true, logLevel: "debug", logFormat: "console"}
	if err := o.apply(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Kernel != config.KernelMemory || !cfg.Daemon.Chaos || cfg.Daemon.Log.Level.String() != "debug" || cfg.Daemon.Log.Format.String() != "console" {
		t.Errorf("daemon section after overrides: %+v", cfg.Daemon)
	}
	for _, bad := range []overrides{{kernel: "fpga"}, {logLevel: "loud"}, {logFormat: "xml"}} {
		if err := bad.apply(parse(t, siteYAML)); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
