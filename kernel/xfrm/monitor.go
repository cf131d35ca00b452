//go:build linux

package xfrm

import (
	"errors"
	"sync/atomic"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"golang.org/x/sys/unix"
)

// monitor reads the notification socket until Close. It never blocks on subscribers:
// kernel.Hub drops events for a full subscription and counts them.
func (k *Kernel) monitor() {
	defer close(k.monDone)
	for {
		msgs, from, err := k.mon.Receive()
		if err != nil {
			k.mu.RLock()
			closed := k.closed
			k.mu.RUnlock()
			switch {
			case closed:
				return
			case errors.Is(err, unix.ENOBUFS):
				// The kernel dropped notifications: how many is unknown.
				k.hub.Lose(1)
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			default:
				// A broken socket: nothing more will come. End the subscriptions so
				// that subscribers notice instead of waiting forever.
				atomic.AddUint64(&k.monErrors, 1)
				k.hub.Close()
				return
			}
			continue
		}
		if from.Pid != 0 {
			continue // not from the kernel
		}
		for _, m := range msgs {
			if ev, ok := k.event(m.Header.Type, m.Data); ok {
				k.hub.Publish(ev)
			}
		}
	}
}

// event turns one notification into an Event; ok is false for notifications cygnet does
// not report (malformed, foreign objects, larval SAs).
func (k *Kernel) event(typ uint16, data []byte) (kernel.Event, bool) {
	switch typ {
	case msgExpire:
		m, err := decodeExpire(data)
		if err != nil || m.proto != protoESP || !m.sa.sa.Reqid.Tagged() {
			atomic.AddUint64(&k.monErrors, boolToUint(err != nil))
			return kernel.Event{}, false
		}
		id := m.sa.sa.ID()
		info, known := k.index.SA(id)
		if known && info.Larval {
			if m.hard {
				k.index.RemoveSA(id)
			}
			return kernel.Event{}, false
		}
		ev := kernel.Event{Kind: kernel.EventSoftExpire, SA: id, Src: m.sa.sa.Src, Reqid: m.sa.sa.Reqid, Owner: info.Owner}
		if m.hard {
			ev.Kind = kernel.EventHardExpire
			k.index.RemoveSA(id)
		}
		return ev, true
	case msgAcquire:
		m, err := decodeAcquire(data)
		if err != nil || m.proto != protoESP || !m.tmplReqid.Tagged() {
			atomic.AddUint64(&k.monErrors, boolToUint(err != nil))
			return kernel.Event{}, false
		}
		ev := kernel.Event{
			Kind:        kernel.EventAcquire,
			Reqid:       m.tmplReqid,
			Policy:      m.policy.ID(),
			PolicyIndex: m.policy.Index,
			Flow:        hostFlow(m.flow),
			TmplSrc:     m.tmplSrc,
			TmplDst:     m.tmplDst,
		}
		if info, ok := k.index.Policy(ev.Policy); ok {
			ev.Owner = info.Owner
		}
		return ev, true
	}
	return kernel.Event{}, false
}

// hostFlow normalises an acquire's flow selector (Linux sends the packet's addresses
// with full-length prefixes already; keep them, but make sure they are masked).
func hostFlow(s kernel.Selector) kernel.Selector {
	if s.Src.IsValid() {
		s.Src = s.Src.Masked()
	}
	if s.Dst.IsValid() {
		s.Dst = s.Dst.Masked()
	}
	return s
}

func boolToUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
