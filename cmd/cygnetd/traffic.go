package main

import (
	"context"
	"errors"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// kernelSA is what list-sas shows of one kernel SA: the reqid that ties it to its
// policies and its lifetime counters (RFC 4301 §4.4.2.1).
type kernelSA struct {
	reqid    kernel.Reqid
	counters kernel.Counters
}

// saTable is the kernel's SAD at one moment, from a single dump (kernel.SACounterLister
// when the kernel has it, else kernel.Kernel.Snapshot), indexed for joining the core's
// Child SAs with it by SPI at listing time: no call per SA, whatever the number of SAs.
// Not safe for concurrent use (one listing owns it).
type saTable struct {
	byID map[saKey]kernelSA
	// bySPI is the fallback when an SA's destination is not the address the core reports
	// (a wildcard listen address): SPIs held by one SA only, built at the first miss.
	bySPI map[kernel.SPI]kernelSA
	dup   map[kernel.SPI]bool
}

// readSATable dumps the SAD once: only IDs, reqids and counters when k is a
// kernel.SACounterLister, else the whole tables (keys and policies too). Larval SAs
// (SPIs allocated, not yet installed) are left out.
func readSATable(ctx context.Context, k kernel.Kernel) (*saTable, error) {
	if l, ok := k.(kernel.SACounterLister); ok {
		return readSACounters(ctx, l)
	}
	return readSnapshot(ctx, k)
}

// readSACounters is readSATable over the counters-only dump.
func readSACounters(ctx context.Context, l kernel.SACounterLister) (*saTable, error) {
	cs, err := l.ListSACounters(ctx)
	if err != nil {
		return nil, err
	}
	t := &saTable{byID: make(map[saKey]kernelSA, len(cs))}
	for i := range cs {
		c := &cs[i]
		t.byID[keyOf(c.ID.Dst, uint32(c.ID.SPI))] = kernelSA{reqid: c.Reqid, counters: c.Counters}
	}
	return t, nil
}

// readSnapshot is readSATable over Snapshot, for a kernel without the counters dump.
func readSnapshot(ctx context.Context, k kernel.Kernel) (*saTable, error) {
	tb, err := k.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	t := &saTable{byID: make(map[saKey]kernelSA, len(tb.SAs))}
	for i := range tb.SAs {
		e := &tb.SAs[i]
		if !e.Larval {
			t.byID[keyOf(e.SA.Dst, uint32(e.SA.SPI))] = kernelSA{reqid: e.SA.Reqid, counters: e.Counters}
		}
	}
	return t, nil
}

// fewChildren is the largest listing whose kernel SAs are read one by one (GetSA, two
// per Child SA) instead of with a dump of the whole SAD: `list-sas --ike branch-7` on a
// concentrator with 400,000 SAs should not dump them all.
const fewChildren = 16

// readSATableFor reads the kernel SAs of the Child SAs in sas: one by one when they are
// at most fewChildren, else with one dump. An SA the kernel does not hold is simply
// absent; another error ends the read.
func readSATableFor(ctx context.Context, k kernel.Kernel, sas []actors.SA) (*saTable, error) {
	n := 0
	wildcard := false
	for i := range sas {
		n += len(sas[i].Children)
		if len(sas[i].IKE) > 0 {
			l := sas[i].IKE[0].Local.Addr()
			wildcard = wildcard || !l.IsValid() || l.IsUnspecified()
		}
	}
	// An IKE SA whose local address is not known needs the dump's lookup by SPI alone.
	if n > fewChildren || wildcard {
		return readSATable(ctx, k)
	}
	t := &saTable{byID: make(map[saKey]kernelSA, 2*n)}
	for i := range sas {
		sa := &sas[i]
		if len(sa.IKE) == 0 {
			continue
		}
		for _, c := range sa.Children {
			for _, id := range []kernel.SAID{
				{Dst: sa.IKE[0].Local.Addr().Unmap(), SPI: kernel.SPI(c.SPIIn)},
				{Dst: sa.IKE[0].Remote.Addr().Unmap(), SPI: kernel.SPI(c.SPIOut)},
			} {
				if id.SPI == 0 {
					continue
				}
				got, counters, err := k.GetSA(ctx, id)
				if errors.Is(err, kernel.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				t.byID[keyOf(id.Dst, uint32(id.SPI))] = kernelSA{reqid: got.Reqid, counters: counters}
			}
		}
	}
	// Nothing to fall back on: an SA not found at its address is not listed.
	t.bySPI, t.dup = map[kernel.SPI]kernelSA{}, map[kernel.SPI]bool{}
	return t, nil
}

// saKey is an SA's ID (kernel.SAID) without pointers: quicker to hash, and a map of
// hundreds of thousands of them is not scanned by the garbage collector.
type saKey struct {
	dst [16]byte
	spi uint32
}

func keyOf(dst netip.Addr, spi uint32) saKey {
	return saKey{dst: dst.Unmap().As16(), spi: spi}
}

// lookup finds the SA with spi towards dst; ok is false when the kernel holds no such SA
// (not installed yet, or already removed) or the SPI alone is ambiguous.
func (t *saTable) lookup(dst netip.Addr, spi uint32) (kernelSA, bool) {
	if t == nil || spi == 0 {
		return kernelSA{}, false
	}
	if v, ok := t.byID[keyOf(dst, spi)]; ok {
		return v, true
	}
	if t.bySPI == nil {
		t.bySPI, t.dup = make(map[kernel.SPI]kernelSA, len(t.byID)), map[kernel.SPI]bool{}
		for id, v := range t.byID {
			spi := kernel.SPI(id.spi)
			if _, ok := t.bySPI[spi]; ok {
				t.dup[spi] = true
			}
			t.bySPI[spi] = v
		}
	}
	if t.dup[kernel.SPI(spi)] {
		return kernelSA{}, false
	}
	v, ok := t.bySPI[kernel.SPI(spi)]
	return v, ok
}
