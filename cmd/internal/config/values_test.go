package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3600", time.Hour, true}, {"30s", 30 * time.Second, true}, {"10m", 10 * time.Minute, true},
		{"4h", 4 * time.Hour, true}, {"1d", 24 * time.Hour, true}, {"0", 0, true},
		{"", 0, false}, {"h", 0, false}, {"-1", 0, false}, {"+5", 0, false}, {"1.5h", 0, false},
		{"4 h", 0, false}, {"1w", 0, false}, {"99999999999999999d", 0, false},
	} {
		got, err := parseDuration(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseVolume(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1000", 1000, true}, {"2k", 2048, true}, {"500M", 500 << 20, true}, {"1g", 1 << 30, true},
		{"", 0, false}, {"k", 0, false}, {"1t", 0, false}, {"-1", 0, false}, {"99999999999999999999g", 0, false},
		{"17179869184g", 0, false},
	} {
		got, err := parseVolume(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseVolume(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseTS(t *testing.T) {
	for _, c := range []struct {
		in, want string // want is the String() form, "" for an error
	}{
		{"10.0.0.0/24", "10.0.0.0/24"},
		{"10.0.0.1", "10.0.0.1/32"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"::/0", "::/0"},
		{"dynamic", "dynamic"},
		{"10.0.0.0/24[tcp/80]", "10.0.0.0/24[tcp/80]"},
		{"10.0.0.0/24[tcp]", "10.0.0.0/24[tcp]"},
		{"10.0.0.0/24[6/80]", "10.0.0.0/24[tcp/80]"},
		{"10.0.0.0/24[/53]", "10.0.0.0/24[/53]"},
		{"10.0.0.0/24[udp/%any]", "10.0.0.0/24[udp]"},
		{"10.0.0.0/24[%any]", "10.0.0.0/24"},
		{"dynamic[udp/1701]", "dynamic[udp/1701]"},
		{"10.0.0.0/24[udp/1000-2000]", "10.0.0.0/24[udp/1000-2000]"},
		{"10.0.0.0/24[gre]", "10.0.0.0/24[gre]"},
		{"10.0.0.0/24[99]", "10.0.0.0/24[99]"},
		{"10.0.0.1-10.0.0.9", "10.0.0.1-10.0.0.9"},
		{"10.0.0.0-10.0.0.255", "10.0.0.0/24"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.0/33", ""}, {"10.0.0.1/24", ""}, {"10.0.0.0/24[tcp/80", ""}, {"10.0.0.0/24[tcp/99999]", ""},
		{"10.0.0.0/24[gre/80]", ""}, {"10.0.0.0/24[foo]", ""}, {"10.0.0.0/24[256]", ""}, {"10.0.0.9-10.0.0.1", ""},
		{"10.0.0.1-2001:db8::1", ""}, {"fe80::1%eth0", ""}, {"fe80::%eth0/64", ""}, {"host.example", ""},
		{"", ""}, {"[tcp]", ""}, {"10.0.0.0/24[tcp/-80]", ""}, {"10.0.0.0/24[tcp/80-]", ""},
	} {
		ts, err := parseTS(c.in)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("parseTS(%q) = %v, want an error", c.in, ts)
		case c.want != "" && err != nil:
			t.Errorf("parseTS(%q): %v", c.in, err)
		case c.want != "" && ts.String() != c.want:
			t.Errorf("parseTS(%q) = %s, want %s", c.in, ts, c.want)
		case c.want != "":
			// String's output reads back to the same selector.
			back, err := parseTS(ts.String())
			if err != nil || back != ts {
				t.Errorf("parseTS(%q) = %+v, its String %q reads back as %+v, %v", c.in, ts, ts.String(), back, err)
			}
		}
	}
}

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Identity
		ok   bool
	}{
		{"192.0.2.1", Identity{IDIPv4, "192.0.2.1"}, true},
		{"2001:db8::1", Identity{IDIPv6, "2001:db8::1"}, true},
		{"::ffff:192.0.2.1", Identity{IDIPv4, "192.0.2.1"}, true},
		{"%any", AnyID, true},
		{"@gw.example.com", Identity{IDFQDN, "gw.example.com"}, true},
		{"gw.example.com", Identity{IDFQDN, "gw.example.com"}, true},
		{"fqdn:gw", Identity{IDFQDN, "gw"}, true},
		{"carol@example.com", Identity{IDRFC822, "carol@example.com"}, true},
		{"email:carol", Identity{IDRFC822, "carol"}, true},
		{"keyid:0A1b", Identity{IDKeyID, "0a1b"}, true},
		{"@#c0ffee", Identity{IDKeyID, "c0ffee"}, true},
		{"ipv4:192.0.2.1", Identity{IDIPv4, "192.0.2.1"}, true},
		{"ipv6:192.0.2.1", Identity{}, false},
		{"ipv4:2001:db8::1", Identity{}, false},
		{"keyid:xyz", Identity{}, false},
		{"keyid:", Identity{}, false},
		{"@", Identity{}, false},
		{"", Identity{}, false},
		{"a b", Identity{}, false},
		{"C=CH, O=strongSwan, CN=moon", Identity{}, false},
	} {
		got, err := ParseIdentity(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseIdentity(%q) = %+v, %v; want %+v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if c.ok {
			back, err := ParseIdentity(got.String())
			if err != nil || back != got {
				t.Errorf("ParseIdentity(%q).String() = %q reads back as %+v, %v", c.in, got.String(), back, err)
			}
		}
	}
}

func TestCheckProposal(t *testing.T) {
	for _, c := range []struct {
		kind proposalKind
		in   string
		ok   bool
	}{
		{ikeProposal, "aes256gcm16-prfsha256-x25519", true},
		{ikeProposal, "aes128-sha256-modp2048", true},
		{ikeProposal, "AES256-SHA384-ECP384!", true},
		{ikeProposal, "chacha20poly1305-prfsha512-curve25519-ke1_mlkem768", true},
		{ikeProposal, "default", true},
		{ikeProposal, "aes256gcm16-x25519", true}, // AEAD without PRF: wire/proposal adds prfsha256/384/512
		{ikeProposal, "aes256-x25519", false},     // no integrity
		{ikeProposal, "aes256gcm16-aes256-prfsha256-x25519", false},
		{ikeProposal, "aes256-sha256-modp2048-esn", false},
		{ikeProposal, "", false},
		{ikeProposal, "aes256--sha256", false},
		{espProposal, "aes256gcm16", true},
		{espProposal, "aes128-sha256-modp2048-esn", true},
		{espProposal, "aes256gcm16-x25519-noesn", true},
		{espProposal, "aes256gcm16-prfsha256", true}, // strongSwan drops PRFs from ESP proposals
		{espProposal, "aes128-md5", false},
		{ikeProposal, "aes256gcm16-prfsha256-modp1024", false}, // not implemented
		{espProposal, "sha256", false},
		{espProposal, "blowfish-sha1", false},
	} {
		_, err := checkProposal(c.kind, c.in)
		if (err == nil) != c.ok {
			t.Errorf("checkProposal(%v, %q) = %v, want ok=%v", c.kind, c.in, err, c.ok)
		}
	}
}
