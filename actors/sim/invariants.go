package sim

import (
	"context"
	"fmt"
	"sort"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// Check verifies the invariants that hold after every step and returns the violations:
//
//   - every SA in a node's kernel belongs to a live family and to one of its Child SAs
//     that holds kernel state, and every such Child SA has both of its SAs installed;
//   - message IDs of an IKE SA never go backwards (History);
//   - when nothing is in flight and no work is pending (quiet), both ends agree on the
//     installed Child SAs of each pair of families sharing an IKE SA (CheckQuiet).
func (w *World) Check() []string {
	var v []string
	v = append(v, w.checkKernel()...)
	v = append(v, w.checkKeys()...)
	v = append(v, w.checkMsgIDs()...)
	if w.Quiet() {
		v = append(v, w.CheckQuiet()...)
	}
	sort.Strings(v)
	return v
}

// holdsKernelState tells which Child SA states own installed SAs.
func holdsKernelState(s ike.ChildState) bool {
	switch s {
	case ike.ChildStateUp, ike.ChildStateRekeying, ike.ChildStateRekeyed, ike.ChildStateDeleting:
		return true
	}
	return false
}

func (w *World) checkKernel() []string {
	var v []string
	for _, n := range w.Nodes {
		t, err := n.Kernel.Snapshot(context.Background())
		if err != nil {
			v = append(v, fmt.Sprintf("%s: kernel snapshot: %v", n.Name, err))
			continue
		}
		type key struct {
			fam   uint64
			child uint64
		}
		inKernel := map[key]int{}
		for _, e := range t.SAs {
			if e.Larval {
				continue
			}
			inKernel[key{uint64(e.SA.Owner.Family), e.SA.Owner.Child}]++
		}
		live := map[key]bool{}
		for _, fh := range n.Families {
			if fh.Dead {
				continue
			}
			for _, c := range fh.F.Snapshot().Children {
				if holdsKernelState(c.State) {
					k := key{fh.ID, uint64(c.Ref)}
					live[k] = true
					if inKernel[k] != 2 {
						v = append(v, fmt.Sprintf("%s: %s %v %s is %v but the kernel holds %d of its SAs", n.Name, fh.Name(), c.Ref, c.Name, c.State, inKernel[k]))
					}
				}
			}
		}
		for k, cnt := range inKernel {
			if !live[k] {
				v = append(v, fmt.Sprintf("%s: kernel holds %d SAs of family %d child %d, which owns none", n.Name, cnt, k.fam, k.child))
			}
		}
	}
	return v
}

func (w *World) checkMsgIDs() []string {
	var v []string
	for _, fh := range w.Families() {
		if fh.Dead {
			continue
		}
		for _, s := range fh.F.Snapshot().IKE {
			k := fmt.Sprintf("%s/%v/%v", fh.Node.Name, s.SPIi, s.SPIr)
			if s.SPIr == 0 {
				continue
			}
			prev, seen := w.History[k]
			if seen && (s.NextMsgIDOut < prev[0] || s.NextMsgIDIn < prev[1]) {
				v = append(v, fmt.Sprintf("%s: IKE SA %s message IDs went back from %v to [%d %d]", fh.Name(), k, prev, s.NextMsgIDOut, s.NextMsgIDIn))
			}
			w.History[k] = [2]uint32{s.NextMsgIDOut, s.NextMsgIDIn}
		}
	}
	return v
}

// Quiet reports whether nothing is in flight: no datagram, no deferred work, no
// outstanding request in any live family.
func (w *World) Quiet() bool {
	if len(w.Net.InFlight) > 0 || len(w.pending) > 0 {
		return false
	}
	for _, fh := range w.Families() {
		if fh.Dead {
			continue
		}
		for _, s := range fh.F.Snapshot().IKE {
			if s.Outstanding {
				return false
			}
		}
	}
	return true
}

// CheckQuiet verifies that both ends agree on the installed Child SAs: for each pair of
// live families whose current IKE SAs have the same SPIs, every installed Child SA on
// one side has its mirror (inbound SPI = the other's outbound) on the other.
func (w *World) CheckQuiet() []string {
	var v []string
	type pairKey [2]ike.SPI
	byIKE := map[pairKey][]*Family{}
	for _, fh := range w.Families() {
		if fh.Dead {
			continue
		}
		s := fh.F.Snapshot()
		if len(s.IKE) == 0 || s.IKE[0].State != ike.IKEStateEstablished {
			continue
		}
		k := pairKey{s.IKE[0].SPIi, s.IKE[0].SPIr}
		byIKE[k] = append(byIKE[k], fh)
	}
	for k, fams := range byIKE {
		if len(fams) != 2 {
			continue
		}
		a, b := fams[0].F.Snapshot(), fams[1].F.Snapshot()
		up := func(s ike.Snapshot) map[[2]uint32]string {
			m := map[[2]uint32]string{}
			for _, c := range s.Children {
				if c.State == ike.ChildStateUp {
					m[[2]uint32{c.SPIIn, c.SPIOut}] = c.Name
				}
			}
			return m
		}
		ua, ub := up(a), up(b)
		for spis, name := range ua {
			if _, ok := ub[[2]uint32{spis[1], spis[0]}]; !ok {
				v = append(v, fmt.Sprintf("IKE SA %v: %s has child %s in=%08x out=%08x that %s lacks", k, fams[0].Name(), name, spis[0], spis[1], fams[1].Name()))
			}
		}
		for spis, name := range ub {
			if _, ok := ua[[2]uint32{spis[1], spis[0]}]; !ok {
				v = append(v, fmt.Sprintf("IKE SA %v: %s has child %s in=%08x out=%08x that %s lacks", k, fams[1].Name(), name, spis[0], spis[1], fams[0].Name()))
			}
		}
	}
	return v
}

// KernelTables returns a node's kernel tables.
func (n *Node) KernelTables() kernel.Tables {
	t, _ := n.Kernel.Snapshot(context.Background())
	return t
}

// checkKeys verifies that an SA present in two nodes' kernels (the sender's outbound and
// the receiver's inbound) has the same keys on both: the two ends derived the same
// KEYMAT (RFC 7296 §2.17).
func (w *World) checkKeys() []string {
	var v []string
	type seen struct {
		node string
		sa   kernel.SA
	}
	all := map[kernel.SAID]seen{}
	for _, n := range w.Nodes {
		for _, e := range n.KernelTables().SAs {
			if e.Larval {
				continue
			}
			id := e.SA.ID()
			if o, ok := all[id]; ok && o.node != n.Name {
				if string(o.sa.EncrKey) != string(e.SA.EncrKey) || string(o.sa.IntegKey) != string(e.SA.IntegKey) || o.sa.Encr != e.SA.Encr {
					v = append(v, fmt.Sprintf("%v: keys differ between %s and %s", id, o.node, n.Name))
				}
				continue
			}
			all[id] = seen{n.Name, e.SA}
		}
	}
	return v
}
