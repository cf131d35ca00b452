package sockets

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// keepaliveSlots spreads the registered flows over the interval: each tick (interval /
// keepaliveSlots) serves one slot, so 100,000 flows registered in the same second do not
// send their keepalives in the same burst.
const keepaliveSlots = 20

// flow is one NAT-T path that needs keepalives: our NAT-T address and the peer's.
type flow struct{ local, remote netip.AddrPort }

type keepalives struct {
	set      *Set
	interval time.Duration
	seed     maphash.Seed

	mu    sync.Mutex
	refs  map[flow]int
	slots [keepaliveSlots]map[flow]struct{}
}

func newKeepalives(s *Set, interval time.Duration) *keepalives {
	k := &keepalives{set: s, interval: interval, seed: maphash.MakeSeed(), refs: map[flow]int{}}
	for i := range k.slots {
		k.slots[i] = map[flow]struct{}{}
	}
	return k
}

func (k *keepalives) slot(f flow) int {
	var h maphash.Hash
	h.SetSeed(k.seed)
	b, _ := f.local.MarshalBinary()
	h.Write(b)
	b, _ = f.remote.MarshalBinary()
	h.Write(b)
	return int(h.Sum64() % keepaliveSlots)
}

// KeepAlive registers the flow from our NAT-T address local to the peer's NAT-T
// address remote for NAT keepalives (RFC 3948 §2.3). Registrations are counted: the
// flow is served until as many StopKeepAlive calls.
func (s *Set) KeepAlive(local, remote netip.AddrPort) {
	k := s.ka
	f := flow{local, remote}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refs[f]++
	if k.refs[f] == 1 {
		k.slots[k.slot(f)][f] = struct{}{}
	}
}

// StopKeepAlive undoes one KeepAlive.
func (s *Set) StopKeepAlive(local, remote netip.AddrPort) {
	k := s.ka
	f := flow{local, remote}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch k.refs[f] {
	case 0:
		return
	case 1:
		delete(k.refs, f)
		delete(k.slots[k.slot(f)], f)
	default:
		k.refs[f]--
	}
}

func (k *keepalives) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.refs)
}

var keepalivePacket = []byte{keepaliveOctet}

// run is the keepalive goroutine: every tick it sends a keepalive on each flow of the
// next slot, so every flow gets one per interval.
func (k *keepalives) run() {
	defer k.set.wg.Done()
	t := time.NewTicker(k.interval / keepaliveSlots)
	defer t.Stop()
	var batch []flow
	for i := 0; ; i = (i + 1) % keepaliveSlots {
		select {
		case <-k.set.stop:
			return
		case <-t.C:
		}
		k.mu.Lock()
		batch = batch[:0]
		for f := range k.slots[i] {
			batch = append(batch, f)
		}
		k.mu.Unlock()
		for _, f := range batch {
			sk, err := k.set.lookup(f.local, f.remote.Addr())
			if err == nil {
				err = sk.write(f.local.Addr(), f.remote, keepalivePacket)
			}
			if err != nil {
				k.set.log.Debug("NAT keepalive not sent", zap.Stringer("local", f.local), zap.Stringer("peer", f.remote), zap.Error(err))
				continue
			}
			k.set.n.keepalivesOut.Add(1)
		}
	}
}
