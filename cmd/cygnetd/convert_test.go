package main

import (
	"net/netip"
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
	conns, _, err := connections(parse(t, siteYAML))
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
		PSK:       ike.Secret{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
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
	if diff := cmp.Diff(want, conns[0], cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("conversion (-want +got):\n%s", diff)
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
			_, _, err = connections(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Settings the core approximates are warnings, never silent.
func TestConversionWarnings(t *testing.T) {
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
	_, warns, err := connections(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"test.yaml: connections.c.remote.id: %any and 2 different pre-shared keys match; the core holds one key per connection, so every peer must use the key of secrets.ike-p1",
		"test.yaml: connections.c.rekey_time: 0 (never rekey) is not supported by the core, which rekeys the IKE SA after 4h0m0s",
		"test.yaml: connections.c.children.n.rekey_time: 0 (never rekey) is not supported by the core, which rekeys the Child SA after 1h0m0s",
	}
	if d := cmp.Diff(want, warns); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	_, warns, err = connections(parse(t, siteYAML))
	if err != nil || len(warns) != 0 {
		t.Errorf("site connection: warnings %q, error %v; want none", warns, err)
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
		conns, warns, err := connections(cfg)
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
