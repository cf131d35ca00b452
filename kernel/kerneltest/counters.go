package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The contract of kernel.SACounterLister, for the Kernels that implement it (both of
// cygnet's do; a Target whose Kernel does not fails these tests). The policy half
// (RunPolicies) needs no ESP: an SAD with only a larval SA, policies left out, a closed
// Kernel.
// The SA half (RunSAs) compares the counters dump with Snapshot over cygnet's, larval,
// foreign and used SAs.

// lister returns k as a kernel.SACounterLister, failing the test if it is not one.
func lister(t *testing.T, k kernel.Kernel) kernel.SACounterLister {
	t.Helper()
	l, ok := k.(kernel.SACounterLister)
	if !ok {
		t.Fatalf("%T does not implement kernel.SACounterLister", k)
	}
	return l
}

// counterLine is an SACounters entry as text, without its times (which differ between
// kernels): one line per SA, sorted, for whole-listing comparisons.
func counterLine(id kernel.SAID, r kernel.Reqid, c kernel.Counters) string {
	return fmt.Sprintf("%s reqid %s %d bytes %d packets", id, r, c.Bytes, c.Packets)
}

func counterText(cs []kernel.SACounters) string {
	lines := make([]string, 0, len(cs))
	for _, c := range cs {
		lines = append(lines, counterLine(c.ID, c.Reqid, c.Counters))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// snapshotCounterText is what ListSACounters must list, taken from Snapshot: its
// non-larval SAs.
func snapshotCounterText(tb kernel.Tables) string {
	var lines []string
	for _, e := range tb.SAs {
		if !e.Larval {
			lines = append(lines, counterLine(e.SA.ID(), e.SA.Reqid, e.Counters))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func listCounters(t *testing.T, k kernel.Kernel) []kernel.SACounters {
	t.Helper()
	cs, err := lister(t, k).ListSACounters(ctx(t))
	mustNil(t, err, "ListSACounters")
	return cs
}

// testListSACountersNoSAs: with policies installed and no SA but a larval one (an SPI
// allocated; Linux needs no ESP for it), the listing is empty: neither the SPD nor
// larval SAs are in it. A cancelled context and a closed Kernel are errors.
func testListSACountersNoSAs(t *testing.T, tg *Target) {
	k := tg.Kernel
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	o := kernel.Owner{Family: 1, Child: 1}
	for _, p := range []kernel.Policy{tunnelPolicy(kernel.DirOut, sel, reqid(1), o), tunnelPolicy(kernel.DirIn, sel, reqid(1), o)} {
		mustNil(t, k.AddPolicy(ctx(t), p), "AddPolicy "+p.Describe())
	}
	spi, err := k.AllocSPI(ctx(t), spiReq(reqid(2), o))
	mustNil(t, err, "AllocSPI")
	if tb := snapshot(t, k); len(tb.SAs) != 1 || !tb.SAs[0].Larval || tb.SAs[0].SA.SPI != spi {
		t.Fatalf("Snapshot after AllocSPI %s, want one larval SA:\n%s", spi, tb)
	}
	if cs := listCounters(t, k); len(cs) != 0 {
		t.Errorf("ListSACounters with policies and a larval SA: %d entries:\n%s", len(cs), counterText(cs))
	}
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := lister(t, k).ListSACounters(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("ListSACounters with a cancelled context: %v, want context.Canceled", err)
	}
	mustNil(t, k.Close(), "Close")
	_, err = lister(t, k).ListSACounters(ctx(t))
	wantErr(t, err, kernel.ErrClosed, "ListSACounters after Close")
}

// testListSACounters: the counters dump lists what Snapshot lists, larval SAs left out,
// foreign SAs in, with the counters of traffic sent through an SA; an SA added is in
// the next listing, an SA deleted is not; a time of first use is set only on an SA
// that was used, and the time added on every SA.
func testListSACounters(t *testing.T, tg *Target) {
	k := tg.Kernel
	o := kernel.Owner{Family: 3, Child: 1}
	used := gcmSA(local, peer, 0x8001, reqid(1), o)
	outboundChild(t, k, used)
	idle := gcmSA(peer, local, 0x8002, reqid(1), o)
	mustNil(t, k.AddSA(ctx(t), idle), "AddSA inbound")
	v6 := kernel.SA{
		Src: netip.MustParseAddr("2001:db8::2"), Dst: netip.MustParseAddr("2001:db8::1"), SPI: 0x8003,
		Mode: kernel.ModeTunnel, Reqid: reqid(2), Owner: o,
		Encr: kernel.EncrChaCha20Poly1305, EncrKey: key(36, 3), ReplayWindow: 64,
	}
	mustNil(t, k.AddSA(ctx(t), v6), "AddSA IPv6")
	larval, err := k.AllocSPI(ctx(t), spiReq(reqid(3), o))
	mustNil(t, err, "AllocSPI")
	foreign := gcmSA(peer, local, 0x8999, 77, kernel.Owner{})
	mustNil(t, tg.AddForeignSA(t, foreign), "AddForeignSA")
	tg.SendUDP(t, innerSrc, netip.MustParseAddr("203.0.113.1"), 9, 100, 7)

	cs := listCounters(t, k)
	if got, want := counterText(cs), snapshotCounterText(snapshot(t, k)); got != want {
		t.Fatalf("ListSACounters:\n%s\nwant (Snapshot's SAs):\n%s", got, want)
	}
	if len(cs) != 4 {
		t.Fatalf("ListSACounters: %d SAs, want 4 (used, idle, IPv6, foreign):\n%s", len(cs), counterText(cs))
	}
	byID := map[kernel.SAID]kernel.SACounters{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	if _, ok := byID[kernel.SAID{Dst: local, SPI: larval}]; ok {
		t.Errorf("larval SA %s listed", larval)
	}
	u := byID[used.ID()]
	if u.Reqid != used.Reqid || u.Counters.Packets != 7 || u.Counters.Bytes < 7*100 {
		t.Errorf("used SA after 7 datagrams of 100 bytes: reqid %s, %+v", u.Reqid, u.Counters)
	}
	if f := byID[foreign.ID()]; f.Reqid != 77 {
		t.Errorf("foreign SA: reqid %s, want 77", f.Reqid)
	}
	for _, c := range cs {
		if c.Added.IsZero() {
			t.Errorf("%s: no time added", c.ID)
		}
		if c.ID != used.ID() && (!c.Used.IsZero() || !c.LastUsed.IsZero()) {
			t.Errorf("%s never carried a packet but lists use times %v, %v", c.ID, c.Used, c.LastUsed)
		}
		if !c.Used.IsZero() && c.Used.Before(c.Added) {
			t.Errorf("%s: first used %v before it was added %v", c.ID, c.Used, c.Added)
		}
	}

	mustNil(t, k.DeleteSA(ctx(t), idle.ID()), "DeleteSA")
	added := gcmSA(local, peer, 0x8004, reqid(4), o)
	mustNil(t, k.AddSA(ctx(t), added), "AddSA")
	var spis []kernel.SPI
	for _, c := range listCounters(t, k) {
		spis = append(spis, c.ID.SPI)
	}
	slices.Sort(spis)
	if want := []kernel.SPI{0x8001, 0x8003, 0x8004, 0x8999}; !slices.Equal(spis, want) {
		t.Errorf("after deleting 0x8002 and adding 0x8004: SPIs %v, want %v", spis, want)
	}
}

// testListSACountersConcurrent: listings run while SPIs are allocated and released and
// policies installed and removed; every listing succeeds and lists no larval SA, and the
// installs succeed meanwhile.
func testListSACountersConcurrent(t *testing.T, tg *Target) {
	k := tg.Kernel
	o := kernel.Owner{Family: 4}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			spi, err := k.AllocSPI(ctx(t), spiReq(reqid(5), o))
			if err != nil {
				t.Errorf("AllocSPI during listings: %v", err)
				return
			}
			p := tunnelPolicy(kernel.DirOut, kernel.Selector{Src: hostNet(localNet, i%200), Dst: peerNet}, reqid(5), o)
			if err := k.AddPolicy(ctx(t), p); err != nil {
				t.Errorf("AddPolicy during listings: %v", err)
				return
			}
			if err := k.DeletePolicy(ctx(t), p.ID()); err != nil {
				t.Errorf("DeletePolicy during listings: %v", err)
				return
			}
			if err := k.DeleteSA(ctx(t), kernel.SAID{Dst: local, SPI: spi}); err != nil {
				t.Errorf("DeleteSA of a larval SA during listings: %v", err)
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)
	for range 200 {
		if cs := listCounters(t, k); len(cs) != 0 {
			t.Fatalf("ListSACounters with only larval SAs: %d entries:\n%s", len(cs), counterText(cs))
		}
	}
}
