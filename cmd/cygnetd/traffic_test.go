package main

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

var (
	gwAddr = netip.MustParseAddr("192.0.2.1")
	t0     = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

// peerAddr is the i-th peer's outer address.
func peerAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// concentrator installs n families with two Child SAs each in a fresh in-memory kernel:
// family i's child c has inbound SPI 0x10000000+2i+c (towards the gateway) and outbound
// SPI 0x20000000+2i+c (towards peer i) and reqid ReqidTag|2i+c+1; every peer uses the
// same outbound SPIs for a second child set too, so SPIs alone are ambiguous.
func concentrator(tb testing.TB, n int) (*memkernel.Kernel, []actors.SA) {
	return concentratorOf(tb, n, 2)
}

// concentratorOf is concentrator with children Child SAs per family (at most 2).
func concentratorOf(tb testing.TB, n, children int) (*memkernel.Kernel, []actors.SA) {
	tb.Helper()
	k := memkernel.New(memkernel.Options{Now: t0})
	ctx := context.Background()
	sas := make([]actors.SA, n)
	for i := range n {
		peer := peerAddr(i + 1)
		sa := actors.SA{Family: kernel.FamilyID(i + 1), Conn: "branches",
			IKE: []ike.IKEInfo{{Name: "branches", State: ike.IKEStateEstablished,
				Local: netip.AddrPortFrom(gwAddr, 4500), Remote: netip.AddrPortFrom(peer, 4500)}}}
		for c := range children {
			in, out := kernel.SPI(0x10000000+2*i+c), kernel.SPI(0x20000000+c) // outbound SPIs repeat across peers
			reqid := kernel.ReqidTag | kernel.Reqid(2*i+c+1)
			for _, s := range []kernel.SA{
				{Src: peer, Dst: gwAddr, SPI: in, Mode: kernel.ModeTunnel, Reqid: reqid, Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20)},
				{Src: gwAddr, Dst: peer, SPI: out, Mode: kernel.ModeTunnel, Reqid: reqid, Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20)},
			} {
				if err := k.AddSA(ctx, s); err != nil {
					tb.Fatal(err)
				}
			}
			sa.Children = append(sa.Children, ike.ChildInfo{Ref: ike.ChildRef(c + 1), Name: []string{"lan", "voice"}[c],
				State: ike.ChildStateUp, SPIIn: uint32(in), SPIOut: uint32(out)})
		}
		sas[i] = sa
	}
	return k, sas
}

// list-sas joins each Child SA with the kernel's SAs: the reqid, and the inbound
// SA's counters as in, the outbound SA's as out, for the right peer even when peers
// chose the same outbound SPI.
func TestListJoinsKernelCounters(t *testing.T) {
	t.Run("dump", func(t *testing.T) {
		testListJoin(t, func(k kernel.Kernel, _ []actors.SA) (*saTable, error) {
			return readSATable(context.Background(), counterKernel{countingKernel{k, t}, k.(kernel.SACounterLister)})
		})
	})
	t.Run("snapshot", func(t *testing.T) { // a kernel without the counters dump
		testListJoin(t, func(k kernel.Kernel, _ []actors.SA) (*saTable, error) {
			return readSATable(context.Background(), snapshotOnly{k})
		})
	})
	t.Run("few", func(t *testing.T) {
		testListJoin(t, func(k kernel.Kernel, sas []actors.SA) (*saTable, error) {
			return readSATableFor(context.Background(), countingKernel{k, t}, sas)
		})
	})
}

// countingKernel fails the test if the SAD is dumped.
type countingKernel struct {
	kernel.Kernel
	t *testing.T
}

func (c countingKernel) Snapshot(ctx context.Context) (kernel.Tables, error) {
	c.t.Errorf("a listing of %d Child SAs or fewer dumped the SAD", fewChildren)
	return c.Kernel.Snapshot(ctx)
}

// counterKernel is a kernel with the counters dump whose Snapshot fails the test.
type counterKernel struct {
	countingKernel
	kernel.SACounterLister
}

// snapshotOnly hides the kernel's counters dump: readSATable must fall back on Snapshot.
type snapshotOnly struct{ kernel.Kernel }

func testListJoin(t *testing.T, read func(kernel.Kernel, []actors.SA) (*saTable, error)) {
	k, sas := concentrator(t, 3)
	// Peer 2's lan: 3 packets in, 1 out; voice: nothing. Peer 3's lan: 2 out.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.AddTraffic(kernel.SAID{Dst: gwAddr, SPI: 0x10000002}, 300, 3))
	must(k.AddTraffic(kernel.SAID{Dst: peerAddr(2), SPI: 0x20000000}, 120, 1))
	must(k.AddTraffic(kernel.SAID{Dst: peerAddr(3), SPI: 0x20000000}, 200, 2))
	ksas, err := read(k, sas)
	if err != nil {
		t.Fatal(err)
	}
	type counters struct {
		reqid                uint32
		bin, pin, bout, pout uint64
	}
	want := map[[2]int]counters{
		{0, 0}: {reqid: 0xc7000001}, {0, 1}: {reqid: 0xc7000002},
		{1, 0}: {0xc7000003, 300, 3, 120, 1}, {1, 1}: {reqid: 0xc7000004},
		{2, 0}: {0xc7000005, 0, 0, 200, 2}, {2, 1}: {reqid: 0xc7000006},
	}
	ids := newChildIDs()
	var rec control.IKESA
	for i := range sas {
		ikeRecord(&rec, &sas[i], ids, ksas)
		for c, ch := range rec.Children {
			got := counters{ch.ReqID, ch.BytesIn, ch.PacketsIn, ch.BytesOut, ch.PacketsOut}
			if w := want[[2]int{i, c}]; got != w {
				t.Errorf("family %d child %s: %+v, want %+v", i+1, ch.Name, got, w)
			}
		}
	}
	// An SA the kernel does not hold (removed meanwhile) lists zeros, not another's.
	must(k.DeleteSA(context.Background(), kernel.SAID{Dst: gwAddr, SPI: 0x10000002}))
	ksas, err = read(k, sas)
	if err != nil {
		t.Fatal(err)
	}
	ikeRecord(&rec, &sas[1], ids, ksas)
	if ch := rec.Children[0]; ch.ReqID != 0xc7000003 || ch.PacketsIn != 0 || ch.PacketsOut != 1 {
		t.Errorf("inbound SA gone: reqid %#x, %d packets in, %d out; want the outbound SA's reqid, 0, 1", ch.ReqID, ch.PacketsIn, ch.PacketsOut)
	}
	// Without a kernel table (the dump failed) the listing has no reqids or counters.
	ikeRecord(&rec, &sas[1], ids, nil)
	if ch := rec.Children[0]; ch.ReqID != 0 || ch.PacketsOut != 0 {
		t.Errorf("no kernel table: %+v", ch)
	}
}

// BenchmarkListJoin100k is the daemon's side of list-sas --json for a concentrator
// with 100,000 IKE SAs of one or two Child SAs each (200,000 or 400,000 kernel SAs):
// one kernel dump, the join and the JSON encoding, per listing ("all"); "dump" is the
// in-memory kernel's counters dump (ListSACounters) alone, "join" the rest. "all-snapshot"
// and "dump-snapshot" are the same over Snapshot, the fallback for a kernel without the
// counters dump.
func BenchmarkListJoin100k(b *testing.B) {
	for _, children := range []int{1, 2} {
		k, sas := concentratorOf(b, 100_000, children)
		ids := newChildIDs()
		var rec control.IKESA
		buf := make([]byte, 0, 4096)
		list := func(ksas *saTable) {
			for i := range sas {
				ikeRecord(&rec, &sas[i], ids, ksas)
				buf = rec.AppendJSON(buf[:0])
			}
		}
		name := fmt.Sprintf("children=%d/", children)
		b.Run(name+"all", func(b *testing.B) {
			for b.Loop() {
				ksas, err := readSATable(context.Background(), k)
				if err != nil {
					b.Fatal(err)
				}
				list(ksas)
			}
		})
		b.Run(name+"all-snapshot", func(b *testing.B) {
			for b.Loop() {
				ksas, err := readSATable(context.Background(), snapshotOnly{k})
				if err != nil {
					b.Fatal(err)
				}
				list(ksas)
			}
		})
		b.Run(name+"dump", func(b *testing.B) {
			for b.Loop() {
				if _, err := k.ListSACounters(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"dump-snapshot", func(b *testing.B) {
			for b.Loop() {
				if _, err := k.Snapshot(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"join", func(b *testing.B) {
			ksas, err := readSATable(context.Background(), k)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				list(ksas)
			}
		})
		b.Run(name+"none", func(b *testing.B) { // the listing without kernel data, as before
			for b.Loop() {
				list(nil)
			}
		})
	}
}

// An IKE SA on a wildcard socket (local address unknown): the inbound SA is found by its
// SPI alone, which only it holds; an outbound SPI that several peers chose is ambiguous
// and left out rather than taken from another peer's SA.
func TestListJoinWildcardLocal(t *testing.T) {
	k, sas := concentrator(t, 2)
	if err := k.AddTraffic(kernel.SAID{Dst: gwAddr, SPI: 0x10000000}, 100, 1); err != nil {
		t.Fatal(err)
	}
	sas[0].IKE[0].Local = netip.AddrPortFrom(netip.IPv4Unspecified(), 4500)
	sas[0].IKE[0].Remote = netip.AddrPort{}
	ksas, err := readSATableFor(context.Background(), k, sas[:1])
	if err != nil {
		t.Fatal(err)
	}
	var rec control.IKESA
	ikeRecord(&rec, &sas[0], newChildIDs(), ksas)
	if ch := rec.Children[0]; ch.ReqID != 0xc7000001 || ch.PacketsIn != 1 || ch.BytesOut != 0 {
		t.Errorf("wildcard local: %+v; want reqid 0xc7000001, 1 packet in, nothing out", ch)
	}
}
