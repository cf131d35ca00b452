package kernel

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tables is a copy of the whole SAD and SPD, as Kernel.Snapshot returns it.
type Tables struct {
	SAs      []SAEntry
	Policies []Policy
}

// SAEntry is one SAD entry with its counters. A larval entry is an SPI reserved by
// AllocSPI that AddSA has not filled in yet: only its addresses, SPI, mode and reqid
// are set.
type SAEntry struct {
	SA       SA
	Counters Counters
	Larval   bool
}

// FormatOptions choose what Tables.Format prints.
type FormatOptions struct {
	// Keys prints keys in hex; otherwise only their length is shown.
	Keys bool
	// Counters prints each SA's byte and packet counters.
	Counters bool
	// Owners prints the Owner of each object (cygnet's in-process index).
	Owners bool
	// Index prints each policy's kernel index (which differs between kernels).
	Index bool
}

// String formats t with keys masked, without counters, owners or policy indexes:
// the form to compare whole tables across kernels in tests.
func (t Tables) String() string { return t.Format(FormatOptions{}) }

// Format prints the tables in the style of `ip xfrm state` followed by `ip xfrm
// policy`, in a deterministic order: SAs by destination, SPI; policies by direction,
// selector.
func (t Tables) Format(opt FormatOptions) string {
	var b strings.Builder
	sas := slices.Clone(t.SAs)
	slices.SortFunc(sas, func(x, y SAEntry) int {
		return cmp.Or(x.SA.Dst.Compare(y.SA.Dst), cmp.Compare(x.SA.SPI, y.SA.SPI))
	})
	for i := range sas {
		formatSA(&b, &sas[i], opt)
	}
	pols := slices.Clone(t.Policies)
	slices.SortFunc(pols, comparePolicies)
	for i := range pols {
		formatPolicy(&b, &pols[i], opt)
	}
	return b.String()
}

func comparePolicies(x, y Policy) int {
	return cmp.Or(
		cmp.Compare(x.Dir, y.Dir),
		x.Selector.Src.Addr().Compare(y.Selector.Src.Addr()),
		cmp.Compare(x.Selector.Src.Bits(), y.Selector.Src.Bits()),
		x.Selector.Dst.Addr().Compare(y.Selector.Dst.Addr()),
		cmp.Compare(x.Selector.Dst.Bits(), y.Selector.Dst.Bits()),
		cmp.Compare(x.Selector.Proto, y.Selector.Proto),
		cmp.Compare(x.Selector.SrcPort, y.Selector.SrcPort),
		cmp.Compare(x.Selector.DstPort, y.Selector.DstPort),
	)
}

func formatSA(b *strings.Builder, e *SAEntry, opt FormatOptions) {
	sa := &e.SA
	fmt.Fprintf(b, "src %s dst %s\n", sa.Src, sa.Dst)
	fmt.Fprintf(b, "\tproto esp spi %s reqid %s mode %s\n", sa.SPI, sa.Reqid, sa.Mode)
	if e.Larval {
		b.WriteString("\tlarval\n")
	} else {
		fmt.Fprintf(b, "\treplay-window %d", sa.ReplayWindow)
		if sa.ESN {
			b.WriteString(" flag esn")
		}
		b.WriteByte('\n')
		key := func(k []byte) string {
			if opt.Keys {
				return "0x" + hex.EncodeToString(k)
			}
			return fmt.Sprintf("<%d bytes>", len(k))
		}
		if sa.Encr.AEAD() {
			fmt.Fprintf(b, "\taead %s %s %d\n", sa.Encr.XfrmName(), key(sa.EncrKey), sa.Encr.ICVBits())
		} else {
			if sa.Integ != IntegNone {
				fmt.Fprintf(b, "\tauth-trunc %s %s %d\n", sa.Integ.XfrmName(), key(sa.IntegKey), sa.Integ.TruncBits())
			}
			fmt.Fprintf(b, "\tenc %s %s\n", sa.Encr.XfrmName(), key(sa.EncrKey))
		}
		if sa.Encap != nil {
			fmt.Fprintf(b, "\tencap type espinudp sport %d dport %d\n", sa.Encap.SrcPort, sa.Encap.DstPort)
		}
		if !sa.Selector.IsZero() {
			fmt.Fprintf(b, "\tsel %s\n", selectorText(sa.Selector))
		}
		if !sa.Limits.Soft.IsZero() || !sa.Limits.Hard.IsZero() {
			fmt.Fprintf(b, "\tlimit soft %s hard %s\n", lifetimeText(sa.Limits.Soft), lifetimeText(sa.Limits.Hard))
		}
	}
	if opt.Counters {
		fmt.Fprintf(b, "\tcurrent %d bytes %d packets\n", e.Counters.Bytes, e.Counters.Packets)
	}
	if opt.Owners && !sa.Owner.IsZero() {
		fmt.Fprintf(b, "\towner %s\n", sa.Owner)
	}
}

func formatPolicy(b *strings.Builder, p *Policy, opt FormatOptions) {
	fmt.Fprintf(b, "%s\n", selectorText(p.Selector))
	fmt.Fprintf(b, "\tdir %s priority %d", p.Dir, p.Priority)
	if opt.Index {
		fmt.Fprintf(b, " index %d", p.Index)
	}
	b.WriteByte('\n')
	t := &p.Template
	b.WriteString("\ttmpl")
	if t.Src.IsValid() || t.Dst.IsValid() {
		fmt.Fprintf(b, " src %s dst %s", t.Src, t.Dst)
	}
	fmt.Fprintf(b, " proto esp reqid %s mode %s", t.Reqid, t.Mode)
	if t.Optional {
		b.WriteString(" level use")
	}
	b.WriteByte('\n')
	if opt.Owners && !p.Owner.IsZero() {
		fmt.Fprintf(b, "\towner %s\n", p.Owner)
	}
}

func selectorText(s Selector) string {
	str := fmt.Sprintf("src %s dst %s", s.Src, s.Dst)
	if s.Proto != 0 {
		str += " proto " + strings.TrimPrefix(protoName(s.Proto), "proto ")
	}
	if s.SrcPort != 0 {
		str += fmt.Sprintf(" sport %d", s.SrcPort)
	}
	if s.DstPort != 0 {
		str += fmt.Sprintf(" dport %d", s.DstPort)
	}
	return str
}

func lifetimeText(l Lifetime) string {
	if l.IsZero() {
		return "none"
	}
	var parts []string
	if l.Bytes != 0 {
		parts = append(parts, fmt.Sprintf("%dB", l.Bytes))
	}
	if l.Packets != 0 {
		parts = append(parts, fmt.Sprintf("%dpkt", l.Packets))
	}
	if l.Time != 0 {
		parts = append(parts, fmt.Sprintf("%ds", int64(l.Time/time.Second)))
	}
	return strings.Join(parts, ",")
}
