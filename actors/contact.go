package actors

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// INITIAL_CONTACT (RFC 7296 §2.4) in the shell.
//
// As receiver: a peer whose authenticated IKE_AUTH carries INITIAL_CONTACT says the new
// IKE SA is the only one it holds between the two identities (it restarted, say). The
// manager keeps the families indexed by the identities of their IKE SA (filed when the
// family's first IKE SA comes up) and ends every other family of the same identities
// that was established before the reporting family was created — without a DELETE
// exchange, as the peer no longer knows those IKE SAs. The "before" matters: when both
// ends initiate at once, each end's INITIAL_CONTACT would otherwise end the other's
// surviving IKE SA.
//
// As sender: an initiator family carries INITIAL_CONTACT in its first IKE_AUTH unless the
// manager holds another family of the same connection when it is spawned, or one comes up
// before its IKE_AUTH goes out (ike.NotFirstContact).

// identified tells the manager the identities of a family's first IKE SA.
type identified struct {
	e             *familyEntry
	local, remote ike.Identity
	initiatorConn string // the connection of an initiator family, "" for a responder
}

// initialContact relays the core's ike.InitialContact to the manager.
type initialContact struct {
	e  *familyEntry
	ev ike.InitialContact
}

// contactEnd ends a family whose IKE SA the peer forgot (INITIAL_CONTACT of a newer one).
type contactEnd struct{}

// identityKey is the index key of an identity pair: a hash of type and length-prefixed
// data of each (8 octets per family instead of a copy of both identities). Families
// that share a key are told apart by their listing summary's identities.
func (m *manager) identityKey(local, remote ike.Identity) uint64 {
	var h maphash.Hash
	h.SetSeed(m.idSeed)
	var hdr [3]byte
	for _, id := range [2]ike.Identity{local, remote} {
		hdr[0] = byte(id.Type)
		binary.BigEndian.PutUint16(hdr[1:], uint16(len(id.Data)))
		h.Write(hdr[:])
		h.Write(id.Data)
	}
	return h.Sum64() | 1 // never 0: 0 marks a family not filed
}

// sameIdentities reports whether o's IKE SA joins local and remote.
func sameIdentities(o *familyEntry, local, remote ike.Identity) bool {
	s := o.summary.Load()
	return s != nil && len(s.IKE) > 0 && s.IKE[0].LocalID.Equal(local) && s.IKE[0].RemoteID.Equal(remote)
}

// fileIdentity indexes a family under its IKE SA's identities; its establishment is
// stamped with the manager's family counter, so that "established before family X was
// created" reads contactAt < X.id.
func (m *manager) fileIdentity(ctx actor.Context, msg identified) {
	e := msg.e
	if e.idKey != 0 || m.t.reg.get(e.id) != e {
		return // filed already, or gone
	}
	if m.byID == nil {
		m.byID = map[uint64]*familySet{}
		m.idSeed = maphash.MakeSeed()
	}
	e.idKey = m.identityKey(msg.local, msg.remote)
	e.contactAt = m.nextID
	set := m.byID[e.idKey]
	if set == nil {
		set = &familySet{}
		m.byID[e.idKey] = set
	}
	set.add(e)
	if msg.initiatorConn == "" {
		return
	}
	// Initiators of the same connection not yet past IKE_AUTH must not claim to be the
	// only IKE SA any more.
	m.byConn[msg.initiatorConn].each(func(o *familyEntry) bool {
		if o != e && o.idKey == 0 {
			if pid := o.pid.Load(); pid != nil {
				ctx.Send(pid, ike.NotFirstContact{})
			}
		}
		return true
	})
}

// unfileIdentity drops a family from the identity index.
func (m *manager) unfileIdentity(e *familyEntry) {
	if e.idKey == 0 {
		return
	}
	if set := m.byID[e.idKey]; set != nil && set.remove(e) {
		delete(m.byID, e.idKey)
	}
}

// contact acts on a peer's INITIAL_CONTACT.
func (m *manager) contact(ctx actor.Context, msg initialContact) {
	if m.byID == nil {
		return
	}
	key := m.identityKey(msg.ev.LocalID, msg.ev.RemoteID)
	var ended int
	m.byID[key].each(func(o *familyEntry) bool {
		if o != msg.e && o.contactAt < msg.e.id && sameIdentities(o, msg.ev.LocalID, msg.ev.RemoteID) {
			if pid := o.pid.Load(); pid != nil {
				ctx.Send(pid, contactEnd{})
				ended++
			}
		}
		return true
	})
	if ended > 0 {
		m.t.log.Info("INITIAL_CONTACT: ending the peer's older IKE SAs",
			zap.Uint64("family", uint64(msg.e.id)), zap.Stringer("peer", msg.ev.Remote),
			zap.Int("families", ended))
	}
}

// endByContact stops a family whose peer forgot it: no DELETE exchange, its Child SAs
// leave the kernel as it stops.
func (f *family) endByContact(ctx actor.Context) {
	f.logger().Info("IKE SA ended: the peer made a new one with INITIAL_CONTACT")
	f.stop(ctx, telemetry.StopNormal)
}
