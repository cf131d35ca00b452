package config

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zapcore"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
)

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yaml), Options{})
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

const siteA = `
daemon:
  listen_addrs: [192.0.2.1]
  metrics_address: "[::1]:9100"
  control_socket: /run/cygnet/a.sock
  log:
    format: console
    level: warn
    subsystems: {kernel: debug, family: info}
  cookie_threshold: 100
  block_threshold: 3
  kernel: memory
  chaos: yes
  retransmit: {timeout: 0.5, base: 1.4, tries: 2}
  fragment_size: 576
  debug_address: 127.0.0.1:6060
  gc_percent: 400
  memory_limit: 3g
connections:
  ab:
    version: 2
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    local_port: 4500
    proposals: aes256gcm16-prfsha256-x25519, AES128-SHA256-MODP2048!
    local: {auth: psk, id: 192.0.2.1}
    remote: {auth: psk, id: "@b.example.net"}
    dpd_delay: 30s
    rekey_time: 3600
    encap: yes
    fragmentation: no
    children:
      net:
        local_ts: 198.51.100.0/24
        remote_ts: [203.0.113.0/25, "203.0.113.128-203.0.113.200[tcp/80-443]", "dynamic[udp/1701]"]
        esp_proposals: [aes256gcm16, aes128-sha256-modp2048-esn]
        mode: transport
        start_action: start
        dpd_action: restart
        close_action: clear
        rekey_time: 30m
        rekey_bytes: 1g
secrets:
  ike-ab:
    id-a: 192.0.2.1
    id-b: "@b.example.net"
    secret: 0x00ff10
`

func TestLoadEveryKey(t *testing.T) {
	cfg := mustParse(t, siteA)
	want := &Config{
		File: "test.yaml",
		Daemon: Daemon{
			ListenAddrs:    []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			Port:           500,
			PortNATT:       4500,
			MetricsAddress: "[::1]:9100",
			ControlSocket:  "/run/cygnet/a.sock",
			Log: Log{Format: logging.FormatConsole, Level: zapcore.WarnLevel,
				Subsystems: map[logging.Subsystem]zapcore.Level{logging.Kernel: zapcore.DebugLevel, logging.Family: zapcore.InfoLevel}},
			CookieThreshold: 100,
			BlockThreshold:  3,
			Kernel:          KernelMemory,
			Chaos:           true,
			Retransmit:      Retransmit{Timeout: 500 * time.Millisecond, Base: 1.4, Tries: 2},
			FragmentSize:    576,
			DebugAddress:    "127.0.0.1:6060",
			GCPercent:       400,
			MemoryLimit:     3 << 30,
		},
		Connections: []*Connection{{
			Name:        "ab",
			Version:     2,
			LocalAddrs:  []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			RemoteAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")},
			LocalPort:   4500,
			RemotePort:  500,
			Proposals:   []string{"aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048"},
			Local:       Auth{Method: AuthPSK, ID: Identity{IDIPv4, "192.0.2.1"}},
			Remote:      Auth{Method: AuthPSK, ID: Identity{IDFQDN, "b.example.net"}},
			DPDDelay:    30 * time.Second,
			RekeyTime:   time.Hour,
			OverTime:    6 * time.Minute,
			RandTime:    6 * time.Minute,
			Encap:       true,
			Children: []*Child{{
				Name:    "net",
				LocalTS: []TrafficSelector{ts("198.51.100.0", "198.51.100.255", 0, 0, 0xffff)},
				RemoteTS: []TrafficSelector{
					ts("203.0.113.0", "203.0.113.127", 0, 0, 0xffff),
					ts("203.0.113.128", "203.0.113.200", 6, 80, 443),
					{Dynamic: true, Protocol: 17, StartPort: 1701, EndPort: 1701},
				},
				ESPProposals: []string{"aes256gcm16", "aes128-sha256-modp2048-esn"},
				Mode:         ModeTransport,
				StartAction:  ActionStart,
				DPDAction:    ActionStart,
				CloseAction:  ActionNone,
				RekeyTime:    30 * time.Minute,
				LifeTime:     33 * time.Minute,
				RandTime:     3 * time.Minute,
				RekeyBytes:   1 << 30,
				LifeBytes:    (1 << 30) + (1<<30)/10,
				RandBytes:    (1 << 30) / 10,
				ReplayWindow: 32,
			}},
		}},
		Secrets: []*Secret{{
			Name: "ike-ab",
			IDs:  []Identity{{IDIPv4, "192.0.2.1"}, {IDFQDN, "b.example.net"}},
			PSK:  logging.NewSecret([]byte{0, 0xff, 0x10}),
		}},
	}
	if diff := cmp.Diff(want, cfg, cmpOpts...); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func ts(start, end string, proto uint8, lo, hi uint16) TrafficSelector {
	return TrafficSelector{Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end), Protocol: proto, StartPort: lo, EndPort: hi}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, `
connections:
  gw:
    local: {id: gw.example.com}
    children:
      c: {}
secrets:
  ike-any: {secret: s}
`)
	want := &Config{
		File:   "test.yaml",
		Daemon: defaultDaemon(),
		Connections: []*Connection{{
			Name: "gw", LocalPort: 500, RemotePort: 500, Proposals: []string{"default"},
			Local:     Auth{ID: Identity{IDFQDN, "gw.example.com"}},
			Remote:    Auth{ID: AnyID},
			RekeyTime: 4 * time.Hour, OverTime: 24 * time.Minute, RandTime: 24 * time.Minute,
			Fragmentation: true,
			Children: []*Child{{
				Name:         "c",
				LocalTS:      []TrafficSelector{{Dynamic: true, EndPort: 0xffff}},
				RemoteTS:     []TrafficSelector{{Dynamic: true, EndPort: 0xffff}},
				ESPProposals: []string{"default"},
				RekeyTime:    time.Hour, LifeTime: 66 * time.Minute, RandTime: 6 * time.Minute,
				ReplayWindow: 32,
			}},
		}},
		Secrets: []*Secret{{Name: "ike-any", PSK: logging.NewSecret([]byte("s"))}},
	}
	if diff := cmp.Diff(want, cfg, cmpOpts...); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
	if want := (Daemon{Port: 500, PortNATT: 4500, MetricsAddress: "127.0.0.1:9917", ControlSocket: "/run/cygnet/cygnet.sock",
		CookieThreshold: 30, BlockThreshold: 5, Log: Log{Level: zapcore.InfoLevel}}); !cmp.Equal(want, cfg.Daemon) {
		t.Errorf("daemon defaults = %+v, want %+v", cfg.Daemon, want)
	}
}

func TestEmptyFileIsValid(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "{}\n"} {
		cfg := mustParse(t, src)
		if len(cfg.Connections) != 0 || cfg.Daemon.Port != 500 {
			t.Errorf("%q: got %+v", src, cfg)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg := mustParse(t, `
x-common: &common
  local_addrs: 192.0.2.1
  proposals: aes256gcm16-prfsha256-x25519
  local: {id: 192.0.2.1}
connections:
  p1:
    <<: *common
    remote_addrs: 192.0.2.11
  p2:
    <<: *common
    proposals: aes128gcm16-prfsha256-ecp256
    remote_addrs: 192.0.2.12
secrets:
  ike: {id: 192.0.2.1, secret: k}
`)
	p1, _ := cfg.Connection("p1")
	p2, _ := cfg.Connection("p2")
	if p1 == nil || p2 == nil {
		t.Fatalf("connections: %v", cfg.Connections)
	}
	if got := p1.Proposals[0]; got != "aes256gcm16-prfsha256-x25519" {
		t.Errorf("p1 proposals = %q, want the merged one", got)
	}
	if got := p2.Proposals[0]; got != "aes128gcm16-prfsha256-ecp256" {
		t.Errorf("p2 proposals = %q, want its own (explicit keys win over <<)", got)
	}
	if p1.Local.ID.Value != "192.0.2.1" || p2.LocalAddrs[0] != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("merged local side: %+v / %+v", p1.Local, p2.LocalAddrs)
	}
}

// gc_percent: off is GCPercentOff; nothing given leaves Go's settings (zero values) and
// the profiler off; a changed debug_address needs a restart, GC settings do not.
func TestRuntimeSettings(t *testing.T) {
	def := mustParse(t, "daemon: {}\n")
	if d := def.Daemon; d.GCPercent != 0 || d.MemoryLimit != 0 || d.DebugAddress != "" {
		t.Errorf("defaults: gc_percent %d, memory_limit %d, debug_address %q; want 0, 0, \"\"", d.GCPercent, d.MemoryLimit, d.DebugAddress)
	}
	off := mustParse(t, "daemon: {gc_percent: off, memory_limit: 512m, debug_address: \"[::1]:6060\"}\n")
	if d := off.Daemon; d.GCPercent != GCPercentOff || d.MemoryLimit != 512<<20 {
		t.Errorf("gc_percent off, memory_limit 512m: %d, %d", d.GCPercent, d.MemoryLimit)
	}
	if ch := Diff(def, off); len(ch.Restart) != 1 || ch.Restart[0] != "daemon.debug_address" {
		t.Errorf("restart keys %q, want only daemon.debug_address", ch.Restart)
	}
}
