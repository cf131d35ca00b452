package sockets

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// smallCap is the capacity of a pooled receive buffer: every IKE message of a PSK
// exchange with the usual groups fits; larger ones get a buffer of their own.
const smallCap = 2048

// Datagram is one received IKE message (the non-ESP marker already stripped). Data
// points into a recycled buffer: it is valid until Release.
type Datagram struct {
	// Local is our address and port the datagram arrived on; Remote the sender's.
	Local, Remote netip.AddrPort
	// NATT is true when it arrived on the NAT-T port (the marker was stripped).
	NATT bool
	Data []byte

	store    []byte
	released atomic.Bool
}

var smallPool = sync.Pool{New: func() any { return &Datagram{store: make([]byte, smallCap)} }}

// newDatagram returns a datagram holding a copy of data.
func newDatagram(data []byte) *Datagram {
	var d *Datagram
	if len(data) <= smallCap {
		d = smallPool.Get().(*Datagram)
		d.released.Store(false)
	} else {
		d = &Datagram{store: make([]byte, len(data))}
	}
	d.Data = d.store[:copy(d.store, data)]
	return d
}

// NewDatagram returns a pooled datagram holding a copy of data, as the reader makes
// them; for tests and for re-injecting a message.
func NewDatagram(local, remote netip.AddrPort, data []byte) *Datagram {
	d := newDatagram(data)
	d.Local, d.Remote = local, remote
	return d
}

// Release returns the datagram's buffer for reuse. Data must not be read afterwards.
// A second Release is a no-op.
func (d *Datagram) Release() {
	if d == nil || !d.released.CompareAndSwap(false, true) {
		return
	}
	d.Data = nil
	d.Local, d.Remote, d.NATT = netip.AddrPort{}, netip.AddrPort{}, false
	if cap(d.store) == smallCap {
		smallPool.Put(d)
	}
}
