package config

import (
	"errors"
	"strings"
	"testing"
)

// badFiles are configuration files with mistakes, each with the exact message cygnetd
// prints. Several errors in one file are all reported, in line order.
var badFiles = []struct {
	name, src, want string
}{
	{"unknown top-level key", `conections:
  ab: {}
`,
		`test.yaml:1: conections: unknown key (expected one of: connections, daemon, secrets)`},
	{"typo in a connection key", `connections:
  ab:
    local: {id: a.example}
    remote_adrs: 192.0.2.2
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.remote_adrs: unknown key (expected one of: childless, children, dpd_delay, encap, fragmentation, local, local_addrs, local_port, mobike, over_time, proposals, rand_time, reauth_time, rekey_time, remote, remote_addrs, remote_port, version)`},
	{"swanctl key cygnet does not support", `connections:
  ab:
    local: {id: a.example}
    pools: [p1]
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.pools: virtual IP pools are not supported by cygnet`},
	{"prefix length out of range", `connections:
  ab:
    local: {id: a.example}
    children:
      net:
        local_ts: 10.1.0.0/33
secrets: {ike: {secret: k}}
`,
		`test.yaml:6: connections.ab.children.net.local_ts: expected CIDR like 10.1.0.0/16, got "10.1.0.0/33": the prefix length is at most 32`},
	{"host bits set", `connections:
  ab:
    local: {id: a.example}
    children:
      net:
        remote_ts: 10.1.0.1/16
secrets: {ike: {secret: k}}
`,
		`test.yaml:6: connections.ab.children.net.remote_ts: expected CIDR like 10.1.0.0/16, an address, a range a-b or dynamic, optionally with [proto/port], got "10.1.0.1/16": host bits are set (did you mean 10.1.0.0/16?)`},
	{"unknown protocol in a selector", `connections:
  ab:
    local: {id: a.example}
    children:
      net:
        remote_ts: "10.1.0.0/16[tcpp/80]"
secrets: {ike: {secret: k}}
`,
		`test.yaml:6: connections.ab.children.net.remote_ts: expected CIDR like 10.1.0.0/16, an address, a range a-b or dynamic, optionally with [proto/port], got "10.1.0.0/16[tcpp/80]": unknown protocol "tcpp"`},
	{"port range backwards", `connections:
  ab:
    local: {id: a.example}
    children:
      net:
        remote_ts: "10.1.0.0/16[udp/600-500]"
secrets: {ike: {secret: k}}
`,
		`test.yaml:6: connections.ab.children.net.remote_ts: expected CIDR like 10.1.0.0/16, an address, a range a-b or dynamic, optionally with [proto/port], got "10.1.0.0/16[udp/600-500]": port range "600-500" is not lo-hi with 0 <= lo <= hi <= 65535`},
	{"bad duration", `connections:
  ab:
    local: {id: a.example}
    rekey_time: 4 hours
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.rekey_time: expected a duration like 30s, 10m, 4h, 1d or a number of seconds, got "4 hours"`},
	{"IKEv1", `connections:
  ab:
    version: 1
    local: {id: a.example}
secrets: {ike: {secret: k}}
`,
		`test.yaml:3: connections.ab.version: IKEv1 is not supported: cygnet speaks IKEv2 only (expected 2)`},
	{"host name as address", `connections:
  ab:
    local: {id: a.example}
    remote_addrs: vpn.example.com
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.remote_addrs: expected an IP address or %any, got "vpn.example.com": cygnet does not resolve host names`},
	{"unknown algorithm", `connections:
  ab:
    local: {id: a.example}
    proposals: aes256gcm16-prfsha256-x25591
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.proposals: expected an IKE proposal like aes256gcm16-prfsha256-x25519 or default, got "aes256gcm16-prfsha256-x25591": unknown or unsupported algorithm "x25591"`},
	{"proposal without key exchange", `connections:
  ab:
    local: {id: a.example}
    proposals: aes256-sha256
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.proposals: expected an IKE proposal like aes256gcm16-prfsha256-x25519 or default, got "aes256-sha256": a key exchange method is mandatory in IKE proposals`},
	{"no pre-shared key", `connections:
  ab:
    local_addrs: 192.0.2.1
    remote: {id: 192.0.2.2}
secrets:
  ike-other: {id-a: 192.0.2.9, id-b: 192.0.2.8, secret: k}
`,
		`test.yaml:2: connections.ab: no pre-shared key for local.id 192.0.2.1 and remote.id 192.0.2.2: add a secrets: ike-ab: section with id-local: 192.0.2.1, id-remote: 192.0.2.2 and a secret`},
	{"child name used twice", `connections:
  ab:
    local: {id: a.example}
    children:
      net: {}
  cd:
    local: {id: a.example}
    children:
      net: {}
secrets: {ike: {secret: k}}
`,
		`test.yaml:9: connections.cd.children.net: child name "net" is already used by connections.ab.children.net (line 5): child names must be unique in the file, as cygnetctl --child addresses them by name`},
	{"duplicate key", `connections:
  ab:
    local: {id: a.example}
    rekey_time: 1h
    rekey_time: 2h
secrets: {ike: {secret: k}}
`,
		`test.yaml:5: connections.ab.rekey_time: duplicate key (first defined on line 4)`},
	{"invalid YAML", `connections:
  ab:
    local: {id: a.example
secrets: {}
`,
		`test.yaml:2: not valid YAML: did not find expected ',' or '}'`},
	{"start needs a peer address", `connections:
  ab:
    local: {id: a.example}
    children:
      net: {start_action: start}
secrets: {ike: {secret: k}}
`,
		`test.yaml:5: connections.ab.children.net.start_action: start needs the peer's address, but connections.ab.remote_addrs is %any`},
	{"life_time not above rekey_time", `connections:
  ab:
    local: {id: a.example}
    children:
      net: {rekey_time: 1h, life_time: 30m}
secrets: {ike: {secret: k}}
`,
		`test.yaml:5: connections.ab.children.net.life_time: must be greater than rekey_time (1h), got 30m`},
	{"secret and secret_file", `connections:
  ab:
    local: {id: a.example}
secrets:
  ike-ab:
    secret: k
    secret_file: /etc/cygnet/ab.psk
`,
		`test.yaml:5: secrets.ike-ab: give either secret or secret_file, not both`},
	{"bad hex secret", `connections:
  ab:
    local: {id: a.example}
secrets:
  ike-ab: {secret: 0xnothex}
`,
		`test.yaml:5: secrets.ike-ab.secret: a secret starting with 0x must be hex digits (the value is not shown)`},
	{"connections as a list", `connections:
  - ab
`,
		`test.yaml:2: connections: expected a mapping of keys, got a list`},
	{"local id needed", `connections:
  ab:
    remote_addrs: 192.0.2.2
secrets: {ike: {secret: k}}
`,
		`test.yaml:2: connections.ab: local.id is required when local_addrs is %any (the identity is not guessed from the address)`},
	{"certificate auth", `connections:
  ab:
    local: {auth: pubkey, id: a.example}
secrets: {ike: {secret: k}}
`,
		`test.yaml:3: connections.ab.local.auth: expected psk, got "pubkey": only pre-shared keys are supported`},
	{"bad metrics address", `daemon:
  metrics_address: localhost9917
`,
		`test.yaml:2: daemon.metrics_address: expected host:port like 127.0.0.1:9917 or [::1]:9917, got "localhost9917"`},
	{"bad debug address", `daemon:
  debug_address: 6060
`,
		`test.yaml:2: daemon.debug_address: expected host:port like 127.0.0.1:9917 or [::1]:9917, got "6060"`},
	{"gc_percent zero", `daemon:
  gc_percent: 0
`,
		`test.yaml:2: daemon.gc_percent: expected a percentage from 1 to 100000 (like 100, Go's default) or off, got "0"`},
	{"memory_limit too small", `daemon:
  memory_limit: 10m
`,
		`test.yaml:2: daemon.memory_limit: expected a size from 64m up (like 4g), got "10m"`},
	{"unknown log subsystem", `daemon:
  log:
    subsystems: {ike: debug}
`,
		`test.yaml:3: daemon.log.subsystems.ike: unknown log subsystem "ike" (expected one of manager, family, child, kernel, socket, config, control, metrics, actor)`},
	{"same ports", `daemon:
  port: 4500
`,
		`test.yaml:2: daemon.port: must differ from port_nat_t (4500)`},
	{"retransmit timeout not a number", `daemon:
  retransmit: {timeout: soon}
`,
		`test.yaml:2: daemon.retransmit.timeout: expected a number of seconds from 0.01 to 3600 (like 4 or 0.5), got "soon"`},
	{"fragment size below the IPv4 minimum", `daemon:
  fragment_size: 100
`,
		`test.yaml:2: daemon.fragment_size: expected a whole number from 576 to 65535, got "100"`},
	{"eap secret", `secrets:
  eap-carol: {secret: k}
`,
		`test.yaml:2: secrets.eap-carol: expected an ike<suffix> section holding a pre-shared key (like ike-ab), got "eap-carol": eap secrets are not supported`},
	{"mixed families", `connections:
  ab:
    local_addrs: 192.0.2.1
    remote_addrs: 2001:db8::2
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.remote_addrs: no address family in common with local_addrs: one side is IPv4 only, the other IPv6 only`},
	{"two documents", `daemon: {}
---
daemon: {}
`,
		`test.yaml:2: expected one YAML document, found a second one (---)`},
	{"many errors at once", `daemon:
  kernel: ebpf
  chaos: maybe
connections:
  ab:
    local: {id: "a b"}
    dpd_delay: -5
    children:
      net:
        local_ts: [10.0.0.0/8, 300.1.1.1]
        mode: tunel
        esp_proposals: aes256gcm16-blowfish
  "bad name!":
    local: {id: a.example}
secrets: {ike: {secret: k}}
`,
		`test.yaml:2: daemon.kernel: expected one of auto, xfrm, memory, got "ebpf"
test.yaml:3: daemon.chaos: expected yes or no, got "maybe"
test.yaml:6: connections.ab.local.id: expected an identity (address, @fqdn, user@domain or keyid:hex), got "a b": it contains white space
test.yaml:7: connections.ab.dpd_delay: expected a duration like 30s, 10m, 4h, 1d or a number of seconds, got "-5"
test.yaml:10: connections.ab.children.net.local_ts: expected CIDR like 10.1.0.0/16, an address, a range a-b or dynamic, optionally with [proto/port], got "300.1.1.1"
test.yaml:11: connections.ab.children.net.mode: expected tunnel or transport, got "tunel"
test.yaml:12: connections.ab.children.net.esp_proposals: expected an ESP proposal like aes256gcm16 or aes128-sha256-esn, or default, got "aes256gcm16-blowfish": unknown or unsupported algorithm "blowfish"
test.yaml:13: connections.bad name!: connection names are letters, digits, '-', '_' and '.', got "bad name!"`},
	{"null value", `connections:
  ab:
    local: {id: a.example}
    remote_addrs:
    children:
      net:
        local_ts: []
secrets: {ike: {secret: k}}
`,
		`test.yaml:4: connections.ab.remote_addrs: expected IP addresses or %any (a list or comma-separated), got nothing
test.yaml:7: connections.ab.children.net.local_ts: expected traffic selectors, got an empty list`},
}

func TestBadFiles(t *testing.T) {
	for _, c := range badFiles {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(c.src), Options{})
			if err == nil {
				t.Fatalf("accepted:\n%s\nwant error:\n%s", c.src, c.want)
			}
			if cfg != nil {
				t.Errorf("returned a config alongside the error")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, c.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != strings.Count(c.want, "\n")+1 {
				t.Errorf("error is %T with %d entries, want Errors with one per line", err, len(es))
			}
			for _, e := range es {
				if e.File != "test.yaml" || (e.Line == 0 && c.name != "unknown YAML") {
					t.Errorf("entry %q lacks file or line", e.Error())
				}
			}
		})
	}
}
