package memkernel

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

// SAs updated again and again while the clock stands still leave superseded deadlines
// behind: the heap drops them instead of growing, and the live deadlines still fire in
// order (time, then destination and SPI).
func TestTimerHeapDropsStaleDeadlines(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	k := New(Options{Now: t0})
	ctx := context.Background()
	sub := k.Subscribe(1024)
	const n = 300
	type want struct {
		soft time.Duration
		spi  kernel.SPI
	}
	var order []want
	for i := range n {
		spi := kernel.SPI(0x5000 + (i*7919)%n) // not in SPI order
		soft := time.Duration(1+i%5) * time.Second
		sa := kernel.SA{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SPI: spi,
			Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Owner: kernel.Owner{Family: 1, Child: uint64(i)},
			Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20),
			Limits: kernel.Limits{Soft: kernel.Lifetime{Time: soft}, Hard: kernel.Lifetime{Time: time.Hour}}}
		if err := k.AddSA(ctx, sa); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if err := k.UpdateSA(ctx, sa); err != nil {
				t.Fatal(err)
			}
		}
		order = append(order, want{soft, spi})
	}
	if got, live := len(k.t.timers), 2*len(k.t.sas); got > 4*len(k.t.sas)+64 {
		t.Fatalf("timer heap holds %d deadlines for %d live ones", got, live)
	}
	k.Advance(t0.Add(10 * time.Second))
	slices.SortFunc(order, func(a, b want) int {
		if a.soft != b.soft {
			return int(a.soft - b.soft)
		}
		return int(a.spi) - int(b.spi)
	})
	for i, w := range order {
		select {
		case ev := <-sub.C:
			if ev.Kind != kernel.EventSoftExpire || ev.SA.SPI != w.spi {
				t.Fatalf("event %d: %v, want soft expiry of %v", i, ev, w.spi)
			}
		default:
			t.Fatalf("%d soft expiries, want %d", i, n)
		}
	}
	select {
	case ev := <-sub.C:
		t.Fatalf("extra event %v", ev)
	default:
	}
}
