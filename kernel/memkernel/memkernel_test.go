package memkernel_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

var (
	local = netip.MustParseAddr("192.0.2.1")
	peer  = netip.MustParseAddr("192.0.2.2")
	t0    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

func gcm(spi kernel.SPI, r kernel.Reqid, owner kernel.Owner) kernel.SA {
	return kernel.SA{Src: local, Dst: peer, SPI: spi, Mode: kernel.ModeTunnel, Reqid: r, Owner: owner,
		Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20)}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// drain returns the events queued on sub.
func drain(sub *kernel.Subscription) []string {
	var out []string
	for {
		select {
		case ev := <-sub.C:
			out = append(out, ev.String())
		default:
			return out
		}
	}
}

func TestSPISequence(t *testing.T) {
	k := memkernel.New(memkernel.Options{})
	ctx := context.Background()
	req := kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin}
	var got []kernel.SPI
	for range 3 {
		spi, err := k.AllocSPI(ctx, req)
		must(t, err)
		got = append(got, spi)
	}
	if got[0] != 0xc0000001 || got[1] != 0xc0000002 || got[2] != 0xc0000003 {
		t.Fatalf("SPIs %v, want 0xc0000001, 0xc0000002, 0xc0000003", got)
	}
	// A range below the sequence starts at its bottom; a used SPI is skipped.
	must(t, k.AddSA(ctx, kernel.SA{Src: local, Dst: peer, SPI: 0x2000, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin,
		Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20)}))
	req.Range = kernel.SPIRange{Min: 0x2000, Max: 0x20ff}
	spi, err := k.AllocSPI(ctx, req)
	must(t, err)
	if spi != 0x2001 {
		t.Fatalf("SPI %s, want 0x00002001 (0x2000 is used by an SA to another destination)", spi)
	}
	k2 := memkernel.New(memkernel.Options{FirstSPI: 0x500})
	spi, err = k2.AllocSPI(ctx, kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin})
	must(t, err)
	if spi != 0x500 {
		t.Fatalf("SPI %s with FirstSPI 0x500", spi)
	}
}

func TestFaults(t *testing.T) {
	k := memkernel.New(memkernel.Options{})
	ctx := context.Background()
	o := kernel.Owner{Family: 1}

	k.FailInstalls(2)
	err := k.AddSA(ctx, gcm(0x1001, kernel.ReqidMin, o))
	if !errors.Is(err, kernel.ErrInjected) || !strings.Contains(err.Error(), "0x00001001") {
		t.Fatalf("first install: %v, want an injected fault naming the SPI", err)
	}
	pol := kernel.Policy{Dir: kernel.DirOut, Priority: 1, Owner: o,
		Selector: kernel.Selector{Src: netip.MustParsePrefix("10.0.0.0/8"), Dst: netip.MustParsePrefix("10.1.0.0/16")},
		Template: kernel.Template{Src: local, Dst: peer, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin}}
	if err := k.AddPolicy(ctx, pol); !errors.Is(err, kernel.ErrInjected) {
		t.Fatalf("second install: %v, want an injected fault", err)
	}
	must(t, k.AddSA(ctx, gcm(0x1001, kernel.ReqidMin, o)))
	must(t, k.AddPolicy(ctx, pol))

	k.FailAllocSPI(1)
	req := kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin}
	if _, err := k.AllocSPI(ctx, req); !errors.Is(err, kernel.ErrInjected) {
		t.Fatalf("AllocSPI: %v, want an injected fault", err)
	}
	if _, err := k.AllocSPI(ctx, req); err != nil {
		t.Fatalf("AllocSPI after the fault: %v", err)
	}

	k.FailSPI(0x1002)
	for range 3 {
		if err := k.AddSA(ctx, gcm(0x1002, kernel.ReqidMin, o)); !errors.Is(err, kernel.ErrInjected) {
			t.Fatalf("install of the failing SPI: %v", err)
		}
	}
	must(t, k.AddSA(ctx, gcm(0x1003, kernel.ReqidMin, o)))
	k.ClearFaults()
	must(t, k.AddSA(ctx, gcm(0x1002, kernel.ReqidMin, o)))

	sub := k.Subscribe(8)
	for i := range 3 {
		sa := gcm(kernel.SPI(0x2001+i), kernel.ReqidMin, o)
		sa.Limits.Hard.Time = time.Duration(i+1) * time.Second
		must(t, k.AddSA(ctx, sa))
	}
	k.DropEvents(1)
	k.Advance(t0.Add(3 * time.Second))
	got := drain(sub)
	if len(got) != 2 || !strings.Contains(got[0], "0x00002002") || !strings.Contains(got[1], "0x00002003") {
		t.Fatalf("events %q: want the hard expiries of 0x2002 and 0x2003 (0x2001's dropped)", got)
	}
	if sub.Lost() != 0 {
		t.Errorf("a dropped event counted as lost by the subscriber: %d", sub.Lost())
	}
}

func TestClockAndLimits(t *testing.T) {
	k := memkernel.New(memkernel.Options{Now: t0})
	ctx := context.Background()
	sub := k.Subscribe(16)
	o := kernel.Owner{Family: 2, Child: 5}
	sa := gcm(0x3001, kernel.ReqidMin, o)
	sa.Limits = kernel.Limits{Soft: kernel.Lifetime{Time: 10 * time.Second}, Hard: kernel.Lifetime{Time: 20 * time.Second}}
	must(t, k.AddSA(ctx, sa))
	jump := gcm(0x3002, kernel.ReqidMin, o)
	jump.Limits = sa.Limits
	must(t, k.AddSA(ctx, jump))

	k.Advance(t0.Add(9 * time.Second))
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("events before the soft limit: %q", got)
	}
	// Stepping past the soft limit of both.
	k.Advance(t0.Add(10 * time.Second))
	if got := drain(sub); len(got) != 2 || !strings.HasPrefix(got[0], "soft-expire esp spi 0x00003001") {
		t.Fatalf("events at the soft limit: %q", got)
	}
	k.Advance(t0.Add(15 * time.Second))
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("soft expiry reported twice: %q", got)
	}
	// UpdateSA re-arms the soft limit, as Linux does.
	upd := sa
	upd.Limits.Soft.Time = 16 * time.Second
	must(t, k.UpdateSA(ctx, upd))
	k.Advance(t0.Add(16 * time.Second))
	if got := drain(sub); len(got) != 1 || !strings.Contains(got[0], "0x00003001") {
		t.Fatalf("events after UpdateSA re-armed the soft limit: %q", got)
	}
	k.Advance(t0.Add(20 * time.Second))
	ev := <-sub.C
	if ev.Kind != kernel.EventHardExpire || ev.Owner != o {
		t.Fatalf("at the hard limit: %v owner %v", ev, ev.Owner)
	}
	if _, _, err := k.GetSA(ctx, sa.ID()); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("GetSA after hard expiry: %v", err)
	}

	// A clock that jumps past soft and hard limits at once reports only the hard one.
	late := gcm(0x3003, kernel.ReqidMin, o)
	late.Limits = kernel.Limits{Soft: kernel.Lifetime{Time: 10 * time.Second}, Hard: kernel.Lifetime{Time: 20 * time.Second}}
	must(t, k.AddSA(ctx, late))
	drain(sub)
	k.Advance(k.Now().Add(time.Hour))
	if got := drain(sub); len(got) != 1 || !strings.HasPrefix(got[0], "hard-expire esp spi 0x00003003") {
		t.Fatalf("after a jump past both limits: %q", got)
	}
	k.Advance(t0) // never backwards
	if !k.Now().After(t0.Add(time.Hour)) {
		t.Fatalf("clock went backwards: %v", k.Now())
	}

	// Byte and packet limits.
	b := gcm(0x4001, kernel.ReqidMin, o)
	b.Limits = kernel.Limits{Soft: kernel.Lifetime{Bytes: 1000}, Hard: kernel.Lifetime{Packets: 10}}
	must(t, k.AddSA(ctx, b))
	must(t, k.AddTraffic(b.ID(), 999, 1))
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("events below the byte limit: %q", got)
	}
	must(t, k.AddTraffic(b.ID(), 1, 1))
	if got := drain(sub); len(got) != 1 || !strings.HasPrefix(got[0], "soft-expire") {
		t.Fatalf("at the soft byte limit: %q", got)
	}
	_, c, err := k.GetSA(ctx, b.ID())
	must(t, err)
	if c != (kernel.Counters{Bytes: 1000, Packets: 2}) {
		t.Fatalf("counters %+v", c)
	}
	must(t, k.AddTraffic(b.ID(), 0, 8))
	if got := drain(sub); len(got) != 1 || !strings.HasPrefix(got[0], "hard-expire") {
		t.Fatalf("at the hard packet limit: %q", got)
	}
	if err := k.AddTraffic(b.ID(), 1, 1); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("traffic on an expired SA: %v", err)
	}
}

func TestLarvalExpiry(t *testing.T) {
	k := memkernel.New(memkernel.Options{Now: t0, AcqExpires: 30 * time.Second})
	ctx := context.Background()
	sub := k.Subscribe(4)
	req := kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Owner: kernel.Owner{Family: 1}}
	spi, err := k.AllocSPI(ctx, req)
	must(t, err)
	k.Advance(t0.Add(29 * time.Second))
	if !strings.Contains(k.String(), "larval") {
		t.Fatalf("larval SA gone early:\n%s", k)
	}
	k.Advance(t0.Add(30 * time.Second))
	if s := k.String(); s != "" {
		t.Fatalf("larval SA still there after AcqExpires:\n%s", s)
	}
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("larval expiry reported: %q", got)
	}
	// Installing with the SPI still works (as Linux's NEWSA fallback does).
	sa := gcm(spi, kernel.ReqidMin, kernel.Owner{Family: 1})
	sa.Src, sa.Dst = peer, local
	must(t, k.AddSA(ctx, sa))
}

func TestSend(t *testing.T) {
	k := memkernel.New(memkernel.Options{Now: t0})
	ctx := context.Background()
	sub := k.Subscribe(8)
	o := kernel.Owner{Family: 3}
	in, out := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.5")
	pkt := memkernel.Packet{Src: in, Dst: out, Proto: 17, SrcPort: 1000, DstPort: 53, Len: 100}

	v, _, err := k.Send(pkt)
	must(t, err)
	if v != memkernel.Bypass {
		t.Fatalf("no policy: %v", v)
	}
	broad := kernel.Policy{Dir: kernel.DirOut, Priority: 2000, Owner: o,
		Selector: kernel.Selector{Src: netip.MustParsePrefix("198.51.100.0/24"), Dst: netip.MustParsePrefix("203.0.113.0/24")},
		Template: kernel.Template{Src: local, Dst: peer, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin + 1}}
	narrow := broad
	narrow.Selector.Proto, narrow.Selector.DstPort, narrow.Priority = 17, 53, 100
	narrow.Template.Reqid = kernel.ReqidMin + 2
	must(t, k.AddPolicy(ctx, broad))
	must(t, k.AddPolicy(ctx, narrow))

	for range 2 {
		v, _, err = k.Send(pkt)
		must(t, err)
		if v != memkernel.Acquired {
			t.Fatalf("trap: %v", v)
		}
	}
	got := drain(sub)
	if len(got) != 1 || !strings.Contains(got[0], "reqid "+(kernel.ReqidMin+2).String()) {
		t.Fatalf("acquires %q: want one, for the higher-priority policy", got)
	}
	k.Advance(t0.Add(30 * time.Second))
	if v, _, _ = k.Send(pkt); v != memkernel.Acquired || len(drain(sub)) != 1 {
		t.Fatalf("no new acquire after AcqExpires")
	}

	sa := gcm(0x5001, kernel.ReqidMin+2, o)
	must(t, k.AddSA(ctx, sa))
	v, id, err := k.Send(pkt)
	must(t, err)
	if v != memkernel.Protected || id != sa.ID() {
		t.Fatalf("with an SA: %v %v", v, id)
	}
	_, c, err := k.GetSA(ctx, sa.ID())
	must(t, err)
	if c != (kernel.Counters{Bytes: 100, Packets: 1}) {
		t.Fatalf("counters %+v", c)
	}
	// Other traffic of the broad policy still has no SA.
	pkt.DstPort = 80
	if v, _, _ = k.Send(pkt); v != memkernel.Acquired {
		t.Fatalf("broad policy: %v", v)
	}
}

func TestRestartAndClose(t *testing.T) {
	k := memkernel.New(memkernel.Options{})
	ctx := context.Background()
	sub := k.Subscribe(1)
	must(t, k.AddSA(ctx, gcm(0x1001, kernel.ReqidMin, kernel.Owner{Family: 1})))
	k2 := k.Restart()
	if _, ok := <-sub.C; ok {
		t.Fatal("subscription of the dead instance still open")
	}
	if err := k.AddSA(ctx, gcm(0x1002, kernel.ReqidMin, kernel.Owner{Family: 1})); !errors.Is(err, kernel.ErrClosed) {
		t.Fatalf("dead instance installs: %v", err)
	}
	sa, _, err := k2.GetSA(ctx, kernel.SAID{Dst: peer, SPI: 0x1001})
	must(t, err)
	if !sa.Owner.IsZero() {
		t.Fatalf("the new instance knows the old one's owner: %v", sa.Owner)
	}
	must(t, k2.Close())
	must(t, k2.Close())
	if _, err := k2.Snapshot(ctx); !errors.Is(err, kernel.ErrClosed) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
}

// TestFormat pins the text form, with keys and owners shown.
func TestFormat(t *testing.T) {
	k := memkernel.New(memkernel.Options{})
	ctx := context.Background()
	o := kernel.Owner{Family: 7, Child: 2}
	sa := gcm(0x1001, kernel.ReqidMin, o)
	sa.EncrKey = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	must(t, k.AddSA(ctx, sa))
	must(t, k.AddTraffic(sa.ID(), 300, 3))
	_, err := k.AllocSPI(ctx, kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Owner: o})
	must(t, err)
	must(t, k.AddPolicy(ctx, kernel.Policy{Dir: kernel.DirOut, Priority: 10, Owner: o,
		Selector: kernel.Selector{Src: netip.MustParsePrefix("10.0.0.0/8"), Dst: netip.MustParsePrefix("10.1.0.0/16"), Proto: 6, DstPort: 443},
		Template: kernel.Template{Mode: kernel.ModeTransport, Reqid: kernel.ReqidMin}}))
	want := `src 192.0.2.2 dst 192.0.2.1
	proto esp spi 0xc0000001 reqid 0xc7000001 mode tunnel
	larval
	current 0 bytes 0 packets
	owner family 7 child 2
src 192.0.2.1 dst 192.0.2.2
	proto esp spi 0x00001001 reqid 0xc7000001 mode tunnel
	replay-window 0
	aead rfc4106(gcm(aes)) 0x0102030405060708090a0b0c0d0e0f1011121314 128
	current 300 bytes 3 packets
	owner family 7 child 2
src 10.0.0.0/8 dst 10.1.0.0/16 proto tcp dport 443
	dir out priority 10 index 9
	tmpl proto esp reqid 0xc7000001 mode transport
	owner family 7 child 2
`
	if got := k.Format(kernel.FormatOptions{Keys: true, Counters: true, Owners: true, Index: true}); got != want {
		t.Fatalf("Format:\n%s\nwant:\n%s", got, want)
	}
}
