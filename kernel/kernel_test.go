package kernel_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

func validSA() kernel.SA {
	return kernel.SA{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SPI: 0x1000,
		Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20),
	}
}

func TestSAValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(sa *kernel.SA)
		want   string // "" for valid
	}{
		{"valid", func(sa *kernel.SA) {}, ""},
		{"gcm-256", func(sa *kernel.SA) { sa.EncrKey = make([]byte, 36) }, ""},
		{"chacha", func(sa *kernel.SA) { sa.Encr, sa.EncrKey = kernel.EncrChaCha20Poly1305, make([]byte, 36) }, ""},
		{"chacha short key", func(sa *kernel.SA) { sa.Encr, sa.EncrKey = kernel.EncrChaCha20Poly1305, make([]byte, 32) }, "key of 32 octets"},
		{"cbc-sha384", func(sa *kernel.SA) {
			sa.Encr, sa.EncrKey, sa.Integ, sa.IntegKey = kernel.EncrAESCBC, make([]byte, 24), kernel.IntegHMACSHA384192, make([]byte, 48)
		}, ""},
		{"cbc without integ", func(sa *kernel.SA) { sa.Encr, sa.EncrKey = kernel.EncrAESCBC, make([]byte, 16) }, "needs an integrity"},
		{"sha512 short key", func(sa *kernel.SA) {
			sa.Encr, sa.EncrKey, sa.Integ, sa.IntegKey = kernel.EncrAESCBC, make([]byte, 16), kernel.IntegHMACSHA512256, make([]byte, 32)
		}, "want 64"},
		{"gcm with integ", func(sa *kernel.SA) { sa.Integ, sa.IntegKey = kernel.IntegHMACSHA256128, make([]byte, 32) }, "AEAD"},
		{"untagged", func(sa *kernel.SA) { sa.Reqid = 1 }, "not in cygnet's range"},
		{"tag alone", func(sa *kernel.SA) { sa.Reqid = kernel.ReqidTag }, "not in cygnet's range"},
		{"reserved SPI", func(sa *kernel.SA) { sa.SPI = 255 }, "reserved"},
		{"no source", func(sa *kernel.SA) { sa.Src = netip.Addr{} }, "address required"},
		{"mapped v4", func(sa *kernel.SA) {
			sa.Src, sa.Dst = netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("2001:db8::1")
		}, "IPv4-mapped"},
		{"mixed", func(sa *kernel.SA) { sa.Dst = netip.MustParseAddr("2001:db8::1") }, "families"},
		{"esn window", func(sa *kernel.SA) { sa.ESN = true }, "ESN needs"},
		{"esn", func(sa *kernel.SA) { sa.ESN, sa.ReplayWindow = true, 4096 }, ""},
		{"window", func(sa *kernel.SA) { sa.ReplayWindow = 4097 }, "above 4096"},
		{"encap", func(sa *kernel.SA) { sa.Encap = &kernel.Encap{SrcPort: 4500} }, "both ports"},
		{"time", func(sa *kernel.SA) { sa.Limits.Soft.Time = time.Millisecond }, "whole number"},
		{"soft>hard", func(sa *kernel.SA) {
			sa.Limits = kernel.Limits{Soft: kernel.Lifetime{Packets: 3}, Hard: kernel.Lifetime{Packets: 2}}
		}, "soft packet limit"},
		{"soft without hard", func(sa *kernel.SA) { sa.Limits.Soft.Bytes = 10 }, ""},
		{"selector host bits", func(sa *kernel.SA) {
			sa.Selector = kernel.Selector{Src: netip.MustParsePrefix("10.0.0.1/8"), Dst: netip.MustParsePrefix("10.0.0.0/8")}
		}, "host bits"},
		{"selector ports", func(sa *kernel.SA) {
			sa.Selector = kernel.Selector{Src: netip.MustParsePrefix("10.0.0.0/8"), Dst: netip.MustParsePrefix("10.0.0.0/8"), DstPort: 1}
		}, "ports need"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa := validSA()
			tc.mutate(&sa)
			err := sa.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid SA rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, kernel.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCheckUpdate(t *testing.T) {
	sa := validSA()
	sa.Encap = &kernel.Encap{SrcPort: 4500, DstPort: 4500}
	upd := sa.Clone()
	upd.Encap.DstPort = 1234
	upd.Limits.Hard.Bytes = 5
	upd.Owner = kernel.Owner{Family: 9}
	if err := kernel.CheckUpdate(&sa, &upd); err != nil {
		t.Fatalf("ports and limits: %v", err)
	}
	if sa.Encap.DstPort != 4500 {
		t.Fatal("Clone shared the Encap")
	}
	upd.ReplayWindow = 64
	if err := kernel.CheckUpdate(&sa, &upd); !errors.Is(err, kernel.ErrInvalid) {
		t.Fatalf("replay window change: %v", err)
	}
}

func TestHub(t *testing.T) {
	h := kernel.NewHub()
	slow, fast := h.Subscribe(1), h.Subscribe(4)
	for i := range 3 {
		h.Publish(kernel.Event{Kind: kernel.EventSoftExpire, SA: kernel.SAID{SPI: kernel.SPI(0x100 + i)}})
	}
	if len(slow.C) != 1 || slow.Lost() != 2 || len(fast.C) != 3 || fast.Lost() != 0 {
		t.Fatalf("slow holds %d lost %d, fast holds %d lost %d", len(slow.C), slow.Lost(), len(fast.C), fast.Lost())
	}
	if ev := <-slow.C; ev.SA.SPI != 0x100 {
		t.Fatalf("slow kept %v, want the first event", ev)
	}
	h.Lose(2)
	if slow.Lost() != 4 || fast.Lost() != 2 {
		t.Fatalf("after Lose(2): %d, %d", slow.Lost(), fast.Lost())
	}
	slow.Close()
	h.Publish(kernel.Event{Kind: kernel.EventAcquire})
	if _, ok := <-slow.C; ok {
		t.Fatal("closed subscription received")
	}
	h.Close()
	for range 4 {
		<-fast.C
	}
	if _, ok := <-fast.C; ok {
		t.Fatal("Hub.Close left a subscription open")
	}
	late := h.Subscribe(1)
	if _, ok := <-late.C; ok {
		t.Fatal("subscription to a closed hub is open")
	}
	h.Publish(kernel.Event{}) // no panic on a closed hub
	fast.Close()
}

func TestEnumStrings(t *testing.T) {
	for _, s := range []string{
		kernel.ModeTunnel.String(), kernel.ModeTransport.String(), kernel.Mode(9).String(),
		kernel.DirIn.String(), kernel.DirOut.String(), kernel.DirFwd.String(), kernel.Dir(0).String(),
		kernel.EncrAESGCM16.String(), kernel.EncrChaCha20Poly1305.String(), kernel.EncrAESCBC.String(), kernel.Encr(0).String(),
		kernel.IntegNone.String(), kernel.IntegHMACSHA256128.String(), kernel.IntegHMACSHA384192.String(), kernel.IntegHMACSHA512256.String(), kernel.Integ(9).String(),
		kernel.EventSoftExpire.String(), kernel.EventHardExpire.String(), kernel.EventAcquire.String(), kernel.EventKind(0).String(),
	} {
		if s == "" {
			t.Error("empty String()")
		}
	}
	if got := kernel.SPI(0xabc).String(); got != "0x00000abc" {
		t.Errorf("SPI %q", got)
	}
	if kernel.IntegHMACSHA384192.KeyLen() != 48 || kernel.IntegHMACSHA512256.TruncBits() != 256 {
		t.Error("RFC 4868 key and ICV lengths")
	}
}

func TestSelectorMatches(t *testing.T) {
	s := kernel.Selector{Src: netip.MustParsePrefix("10.0.0.0/8"), Dst: netip.MustParsePrefix("192.0.2.0/24"), Proto: 17, DstPort: 53}
	a, b := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.9")
	if !s.Matches(a, b, 17, 999, 53) {
		t.Error("should match")
	}
	for _, c := range []struct {
		src, dst netip.Addr
		proto    uint8
		dport    uint16
	}{{b, b, 17, 53}, {a, a, 17, 53}, {a, b, 6, 53}, {a, b, 17, 54}} {
		if s.Matches(c.src, c.dst, c.proto, 1, c.dport) {
			t.Errorf("%v should not match", c)
		}
	}
}
