package main

import (
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/actors/ike"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// The strings are the ones strongSwan 5.9.8's list-sas prints for the same suites.
func TestProposalNotation(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{ikeProposal(ikecrypto.IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 256, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519}), "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"},
		{ikeProposal(ikecrypto.IKESuite{Encr: wire.EncrAESCBC, EncrKeyLen: 256, Integ: wire.IntegHMACSHA2_384_192, PRF: wire.PRFHMACSHA2_384, KE: wire.KEECP384}), "AES_CBC_256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384"},
		{ikeProposal(ikecrypto.IKESuite{Encr: wire.EncrChaCha20Poly1305, PRF: wire.PRFHMACSHA2_256, KE: wire.KEMODP2048}), "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/MODP_2048"},
		{ikeProposal(ikecrypto.IKESuite{}), ""},
		{espProposal(ikecrypto.ESPSuite{Encr: wire.EncrAESGCM16, KeyLen: 256}), "AES_GCM_16_256"},
		{espProposal(ikecrypto.ESPSuite{Encr: wire.EncrAESCBC, KeyLen: 128, Integ: wire.IntegHMACSHA2_256_128, KE: wire.KECurve25519, ESN: true}), "AES_CBC_128/HMAC_SHA2_256_128/CURVE_25519/ESN"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// Traffic selectors as strongSwan's list-sas prints them.
func TestTSNotation(t *testing.T) {
	host := netip.MustParseAddr("198.51.100.1")
	for _, c := range []struct {
		ts   ike.TrafficSelector
		want string
	}{
		{ike.TSFromPrefix(netip.MustParsePrefix("198.51.100.0/24")), "198.51.100.0/24"},
		{ike.TrafficSelector{Protocol: 17, Start: host, End: host, StartPort: 5000, EndPort: 5000}, "198.51.100.1/32[udp/5000]"},
		{ike.TrafficSelector{Protocol: 1, Start: host, End: host, EndPort: 0xffff}, "198.51.100.1/32[icmp]"},
		{ike.TrafficSelector{Protocol: 6, Start: host, End: netip.MustParseAddr("198.51.100.9"), StartPort: 80, EndPort: 443}, "198.51.100.1..198.51.100.9[tcp/80-443]"},
		{ike.TrafficSelector{Protocol: 47, Start: host, End: host, EndPort: 0xffff}, "198.51.100.1/32[47]"},
	} {
		if got := tsString(c.ts); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.ts, got, c.want)
		}
	}
}
