package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Datagram is an IKE datagram in flight.
type Datagram struct {
	ID        int
	From, To  netip.AddrPort
	Data      []byte
	Summary   string // the sender's description ("IKE_AUTH request 1 [ … ]")
	Src, Dst  string // node names
	DeliverAt time.Time
}

// Link holds the conditions between two nodes (one direction). Loss, Dup and Reorder
// are probabilities applied when AutoDeliver is on; MTU (the largest IP datagram,
// headers included; 0 = unlimited) always applies.
type Link struct {
	Loss, Dup, Reorder float64
	Delay              time.Duration
	MTU                int
}

// Network is the virtual network: the datagrams in flight, in send order, and the
// per-link conditions.
type Network struct {
	InFlight []*Datagram
	Held     []*Datagram // set aside by Hold
	// Links by "A>B"; Default applies to the others.
	Links   map[string]Link
	Default Link
	nextID  int
	seen    map[string]int // datagram bytes → ID of the first with them
	// Counters.
	Sent, Delivered, Lost int
}

func (nw *Network) link(src, dst string) Link {
	if l, ok := nw.Links[src+">"+dst]; ok {
		return l
	}
	return nw.Default
}

// SetLink sets the conditions from src to dst.
func (nw *Network) SetLink(src, dst string, l Link) {
	if nw.Links == nil {
		nw.Links = map[string]Link{}
	}
	nw.Links[src+">"+dst] = l
}

func (nw *Network) send(w *World, from, to netip.AddrPort, data []byte, summary string, src *Node) {
	dstNode := w.nodeByAddr(to.Addr())
	dst := "?"
	if dstNode != nil {
		dst = dstNode.Name
	}
	nw.Sent++
	l := nw.link(src.Name, dst)
	size := len(data) + 8 + 20
	if to.Addr().Is6() {
		size += 20
	}
	if from.Port() != 500 && from.Port() != 0 {
		size += 4 // non-ESP marker on the NAT-T port
	}
	if l.MTU > 0 && size > l.MTU {
		nw.Lost++
		w.printf("  %s→%s too big for MTU %d (%d octets): %s\n", src.Name, dst, l.MTU, size, summary)
		return
	}
	nw.nextID++
	if nw.seen == nil {
		nw.seen = map[string]int{}
	}
	if first, ok := nw.seen[string(data)]; ok {
		summary += fmt.Sprintf(" (same bytes as #%d)", first)
	} else {
		nw.seen[string(data)] = nw.nextID
		summary = fmt.Sprintf("#%d %s", nw.nextID, summary)
	}
	d := &Datagram{ID: nw.nextID, From: from, To: to, Data: data, Summary: summary, Src: src.Name, Dst: dst, DeliverAt: w.Now.Add(l.Delay)}
	if w.AutoDeliver {
		if l.Loss > 0 && w.rng.Float64() < l.Loss {
			nw.Lost++
			return
		}
		if l.Reorder > 0 && w.rng.Float64() < l.Reorder {
			d.DeliverAt = d.DeliverAt.Add(time.Duration(w.rng.Int64N(int64(l.Delay)*2 + int64(time.Millisecond))))
		}
		if l.Dup > 0 && w.rng.Float64() < l.Dup {
			c := *d
			nw.nextID++
			c.ID = nw.nextID
			c.DeliverAt = c.DeliverAt.Add(time.Millisecond)
			nw.InFlight = append(nw.InFlight, &c)
		}
	}
	nw.InFlight = append(nw.InFlight, d)
}

// earliest is the datagram due first (send order breaks ties).
func (nw *Network) earliest() *Datagram {
	var best *Datagram
	for _, d := range nw.InFlight {
		if best == nil || d.DeliverAt.Before(best.DeliverAt) {
			best = d
		}
	}
	return best
}

func (nw *Network) remove(d *Datagram) {
	nw.InFlight = slices.DeleteFunc(nw.InFlight, func(o *Datagram) bool { return o == d })
}

// deliver hands d to its destination node.
func (w *World) deliver(d *Datagram) {
	w.Net.remove(d)
	w.Net.Delivered++
	w.printf("%s→%s %s\n", endpoint(d.Src, d.From), endpoint(d.Dst, d.To), d.Summary)
	n := w.nodeByAddr(d.To.Addr())
	if n == nil {
		return
	}
	n.receive(d)
}

// Deliver delivers the first n datagrams in flight (in send order), one at a time;
// n < 0 delivers until nothing is in flight (what they trigger included).
func (w *World) Deliver(n int) int {
	done := 0
	for len(w.Net.InFlight) > 0 && (n < 0 || done < n) {
		w.deliver(w.Net.InFlight[0])
		done++
		if done > 100000 {
			panic("sim: deliveries do not converge")
		}
	}
	return done
}

// Drop loses the first n datagrams in flight.
func (w *World) Drop(n int) {
	for i := 0; i < n && len(w.Net.InFlight) > 0; i++ {
		d := w.Net.InFlight[0]
		w.Net.remove(d)
		w.Net.Lost++
		w.printf("dropped %s→%s %s\n", d.Src, d.Dst, d.Summary)
	}
}

// Dup duplicates the first datagram in flight (the copy follows it).
func (w *World) Dup() {
	if len(w.Net.InFlight) == 0 {
		return
	}
	c := *w.Net.InFlight[0]
	c.Data = slices.Clone(c.Data)
	w.Net.nextID++
	c.ID = w.Net.nextID
	w.Net.InFlight = slices.Insert(w.Net.InFlight, 1, &c)
	w.printf("duplicated %s→%s %s\n", c.Src, c.Dst, c.Summary)
}

// Hold sets the first datagram in flight aside (Release puts it back).
func (w *World) Hold() {
	if len(w.Net.InFlight) == 0 {
		return
	}
	d := w.Net.InFlight[0]
	w.Net.remove(d)
	w.Net.Held = append(w.Net.Held, d)
	w.printf("held %s→%s %s\n", d.Src, d.Dst, d.Summary)
}

// Release puts the datagrams set aside by Hold back at the head of the queue.
func (w *World) Release() {
	w.Net.InFlight = append(w.Net.Held, w.Net.InFlight...)
	w.Net.Held = nil
}

// Swap exchanges the first two datagrams in flight (reordering).
func (w *World) Swap() {
	if len(w.Net.InFlight) < 2 {
		return
	}
	w.Net.InFlight[0], w.Net.InFlight[1] = w.Net.InFlight[1], w.Net.InFlight[0]
}

// Tamper corrupts the first datagram in flight: one octet near its end flips (in the
// ciphertext or ICV of a protected message, in the last payload of IKE_SA_INIT).
func (w *World) Tamper() {
	if len(w.Net.InFlight) == 0 {
		return
	}
	d := w.Net.InFlight[0]
	d.Data = slices.Clone(d.Data)
	d.Data[len(d.Data)-3] ^= 0x5a
	w.printf("tampered %s→%s %s\n", d.Src, d.Dst, d.Summary)
}

// TamperOctet corrupts octet i of the first datagram in flight (XOR with mask): a
// header field, say, where Tamper's choice near the end would not reach.
func (w *World) TamperOctet(i int, mask byte) error {
	if len(w.Net.InFlight) == 0 {
		return nil
	}
	d := w.Net.InFlight[0]
	if i < 0 || i >= len(d.Data) {
		return fmt.Errorf("tamper: octet %d of a %d-octet datagram", i, len(d.Data))
	}
	d.Data = slices.Clone(d.Data)
	d.Data[i] ^= mask
	w.printf("tampered octet %d %s→%s %s\n", i, d.Src, d.Dst, d.Summary)
	return nil
}

// endpoint names a node, with the port when it is not IKE's 500.
func endpoint(name string, ap netip.AddrPort) string {
	if ap.Port() == 500 {
		return name
	}
	return fmt.Sprintf("%s:%d", name, ap.Port())
}
