package ike_test

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
)

func TestCookieRotation(t *testing.T) {
	c := ike.NewCookies([]byte("first secret 0123456789"))
	ni := bytes.Repeat([]byte{7}, 32)
	ip := netip.MustParseAddr("192.0.2.1")
	k1 := c.Make(ni, ip, 0x1234)
	if !c.Verify(k1, ni, ip, 0x1234) {
		t.Fatal("fresh cookie rejected")
	}
	for name, ok := range map[string]bool{
		"other nonce": c.Verify(k1, bytes.Repeat([]byte{8}, 32), ip, 0x1234),
		"other ip":    c.Verify(k1, ni, netip.MustParseAddr("192.0.2.9"), 0x1234),
		"other spi":   c.Verify(k1, ni, ip, 0x1235),
		"truncated":   c.Verify(k1[:10], ni, ip, 0x1234),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
	c.Rotate([]byte("second secret 0123456789"))
	if !c.Verify(k1, ni, ip, 0x1234) {
		t.Error("cookie of the previous secret rejected right after a rotation")
	}
	k2 := c.Make(ni, ip, 0x1234)
	if bytes.Equal(k1, k2) {
		t.Error("rotation did not change the cookie")
	}
	c.Rotate([]byte("third secret 0123456789"))
	if c.Verify(k1, ni, ip, 0x1234) {
		t.Error("cookie two rotations old accepted")
	}
	if !c.Verify(k2, ni, ip, 0x1234) {
		t.Error("cookie of the previous secret rejected")
	}
}

// TestCookieCheck runs the manager's side on strongSwan's real IKE_SA_INIT request.
func TestCookieCheck(t *testing.T) {
	frames := loadFrames(t)
	req, _ := hex.DecodeString(frames[0].IKEMessage)
	ip := netip.MustParseAddr("192.0.2.1")
	c := ike.NewCookies([]byte("secret 0123456789abcdef"))
	v, resp, err := c.Check(req, ip)
	if err != nil || v != ike.CookieMissing {
		t.Fatalf("Check = %v, %v", v, err)
	}
	m, err := wire.DecodeMessage(resp)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := wire.FindNotify(m.Payloads, wire.NotifyCookie)
	if !ok || len(m.Payloads) != 1 || m.Header.SPIi != 0xd77925670b93638a || m.Header.SPIr != 0 || !m.Header.Flags.Response() {
		t.Fatalf("challenge %v %v", m.Header, m.Payloads)
	}
	// The initiator's retry: N(COOKIE) first, then the same payloads (RFC 7296 §2.6).
	retry := &wire.Message{Header: m.Header}
	orig, _ := wire.DecodeMessage(req)
	retry.Header = orig.Header
	retry.Payloads = append([]wire.Payload{wire.NewNotify(wire.NotifyCookie, n.Data)}, orig.Payloads...)
	b, err := retry.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := c.Check(b, ip); err != nil || v != ike.CookieValid {
		t.Fatalf("retry with the cookie: %v, %v", v, err)
	}
	if v, _, _ := c.Check(b, netip.MustParseAddr("192.0.2.77")); v != ike.CookieInvalid {
		t.Fatalf("retry from another address: %v", v)
	}
}

// FuzzCookieCheck: Check never panics on any datagram.
func FuzzCookieCheck(f *testing.F) {
	req, _ := hex.DecodeString("d77925670b93638a00000000000000002120220800000000000000e82200002800000024010100030300000c01000014800e01000300000802000005000000080400001f28000028001f0000b747c60752f2b74332b0dc5051c3332f81fd0971ace7b631f6c9d7698459fb6f29000024fbda5338919c7b1d54af8a5dfeaacb24bec3d15e3621009f48dc7318e9407bc02900001c00004004d7f3fc104e4c9653c83e124e809d3d8ac875f8492900001c0000400581dc207a893f2e829617bcb6ba13acb33ea15614290000080000402e290000100000402f00020003000400050000000800004016")
	f.Add(req)
	c := ike.NewCookies([]byte("secret"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = c.Check(b, netip.MustParseAddr("192.0.2.1"))
	})
}
