package proposal

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// ErrNoProposalChosen is matched (errors.Is) by every *NoProposalChosenError.
var ErrNoProposalChosen = errors.New("NO_PROPOSAL_CHOSEN")

// NoProposalChosenError reports that no offered proposal is acceptable: the responder
// answers with a NO_PROPOSAL_CHOSEN notify (RFC 7296 §2.7, §3.10.1).
type NoProposalChosenError struct {
	Protocol wire.ProtocolID
	Local    string // our proposals, in Format's syntax
	Offered  string // the peer's proposals
}

func (e *NoProposalChosenError) Error() string {
	return fmt.Sprintf("NO_PROPOSAL_CHOSEN for %s: offered %s, configured %s", e.Protocol, orNone(e.Offered), orNone(e.Local))
}

// Notify is the error notify the responder sends.
func (e *NoProposalChosenError) Notify() wire.NotifyType { return wire.NotifyNoProposalChosen }

// Is makes errors.Is(err, ErrNoProposalChosen) true.
func (e *NoProposalChosenError) Is(target error) bool { return target == ErrNoProposalChosen }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ErrBadChoice is wrapped by CheckChosen errors: the responder's answer is not one of
// the choices offered.
var ErrBadChoice = errors.New("responder chose a proposal that was not offered")

// Options steers Select and CheckChosen.
type Options struct {
	// PreferPeer walks the peer's proposals (and, inside a proposal, its transforms) in
	// the peer's order, taking the first acceptable; otherwise ours come first. RFC 7296
	// §2.7 leaves the choice to the responder; strongSwan prefers its own order unless
	// "prefer_configured_proposals = no", and so does cygnet by default.
	PreferPeer bool
	// IgnoreKE drops the KE and ADDKE transform types from both sides before matching:
	// the first Child SA, made in IKE_AUTH, has no key exchange (RFC 7296 §1.2), and
	// peers (strongSwan among them) leave the KE transforms out of its SA payload.
	IgnoreKE bool
}

// typesOf returns the transform types of a proposal in the order they first appear.
func typesOf(p wire.Proposal, ignoreKE bool) []wire.TransformType {
	var ts []wire.TransformType
	for _, t := range p.Transforms {
		if ignoreKE && t.Type.IsKE() {
			continue
		}
		if !slices.Contains(ts, t.Type) {
			ts = append(ts, t.Type)
		}
	}
	return ts
}

func ofType(p wire.Proposal, typ wire.TransformType) []wire.Transform {
	var ts []wire.Transform
	for _, t := range p.Transforms {
		if t.Type == typ {
			ts = append(ts, t)
		}
	}
	return ts
}

// optional reports whether a transform type may be absent on one side when the other
// lists NONE: KE for ESP/AH (no PFS) and the additional key exchanges (RFC 9370 §2.1).
func optional(protocol wire.ProtocolID, typ wire.TransformType) bool {
	if typ == wire.TransformKE {
		return protocol != wire.ProtoIKE
	}
	return typ >= wire.TransformADDKE1 && typ <= wire.TransformADDKE7
}

// match picks one transform of each type from two proposals of the same protocol, the
// first of prefer's list that other also lists (same ID and attributes). It returns the
// chosen transforms in TypeOrder, NONE choices left out except for ESN.
func match(prefer, other wire.Proposal, ignoreKE bool) ([]wire.Transform, bool) {
	types := typesOf(prefer, ignoreKE)
	for _, t := range typesOf(other, ignoreKE) {
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	slices.SortFunc(types, func(a, b wire.TransformType) int { return typeRank(a) - typeRank(b) })
	var chosen []wire.Transform
	skipInteg := false
	for _, typ := range types {
		if typ == wire.TransformINTEG && skipInteg {
			continue
		}
		a, b := ofType(prefer, typ), ofType(other, typ)
		var pick wire.Transform
		found := false
		switch {
		case len(a) == 0 || len(b) == 0:
			// One side lacks the type: acceptable only for an optional type where the
			// other side offers NONE, or for INTEG NONE beside an AEAD (handled above).
			rest := a
			if len(a) == 0 {
				rest = b
			}
			found = optional(prefer.Protocol, typ) && slices.ContainsFunc(rest, func(t wire.Transform) bool { return t.ID == wire.KENone })
			if !found && typ == wire.TransformINTEG {
				found = slices.ContainsFunc(rest, func(t wire.Transform) bool { return t.ID == wire.IntegNone })
			}
			pick = wire.Transform{Type: typ}
		default:
			for _, ta := range a {
				if slices.Contains(b, ta) {
					pick, found = ta, true
					break
				}
			}
		}
		if !found {
			return nil, false
		}
		if typ == wire.TransformENCR && isAEAD(pick.ID) {
			skipInteg = true
		}
		if pick.ID == 0 && typ != wire.TransformESN {
			continue // NONE: the type is not negotiated
		}
		chosen = append(chosen, pick)
	}
	return chosen, true
}

// Select is the responder's choice among the peer's proposals (RFC 7296 §2.7): the
// first pair (ours, peer's) of the same protocol, walked in the preferred order, for
// which every transform type offered by either side has a common transform. The result
// has one transform of each negotiated type in TypeOrder, and the peer's
// proposal number and SPI, ready for the answer's SA payload. When nothing fits, the
// error is a *NoProposalChosenError.
func Select(local, offered []wire.Proposal, opt Options) (wire.Proposal, error) {
	outer, inner := local, offered
	if opt.PreferPeer {
		outer, inner = offered, local
	}
	for _, po := range outer {
		for _, pi := range inner {
			if po.Protocol != pi.Protocol {
				continue
			}
			chosen, ok := match(po, pi, opt.IgnoreKE)
			if !ok {
				continue
			}
			peer := pi
			if opt.PreferPeer {
				peer = po
			}
			return wire.Proposal{Num: peer.Num, Protocol: peer.Protocol, SPI: peer.SPI, Transforms: chosen}, nil
		}
	}
	protocol := wire.ProtocolID(0)
	if len(local) > 0 {
		protocol = local[0].Protocol
	} else if len(offered) > 0 {
		protocol = offered[0].Protocol
	}
	return wire.Proposal{}, &NoProposalChosenError{Protocol: protocol, Local: Format(local), Offered: Format(offered)}
}

// CheckChosen is the initiator's check of the responder's SA payload (RFC 7296 §2.7):
// exactly one proposal, whose number and protocol are those of one we offered, with
// exactly one transform of each type that proposal offered (a type may be left out when
// we offered NONE for it, and INTEG beside an AEAD), each transform one we offered. It
// returns the chosen proposal.
func CheckChosen(offered []wire.Proposal, answer []wire.Proposal, opt Options) (wire.Proposal, error) {
	if len(answer) != 1 {
		return wire.Proposal{}, fmt.Errorf("%w: %d proposals in the answer, want 1", ErrBadChoice, len(answer))
	}
	a := answer[0]
	i := slices.IndexFunc(offered, func(p wire.Proposal) bool { return p.Num == a.Num })
	if i < 0 {
		return wire.Proposal{}, fmt.Errorf("%w: proposal number %d was not offered", ErrBadChoice, a.Num)
	}
	o := offered[i]
	if o.Protocol != a.Protocol {
		return wire.Proposal{}, fmt.Errorf("%w: proposal %d is %v, we offered %v", ErrBadChoice, a.Num, a.Protocol, o.Protocol)
	}
	seen := map[wire.TransformType]bool{}
	aead := false
	for _, t := range a.Transforms {
		if opt.IgnoreKE && t.Type.IsKE() {
			if t.ID != wire.KENone {
				return wire.Proposal{}, fmt.Errorf("%w: %v in an exchange without key exchange", ErrBadChoice, t)
			}
			continue
		}
		if seen[t.Type] {
			return wire.Proposal{}, fmt.Errorf("%w: more than one %v transform", ErrBadChoice, t.Type)
		}
		seen[t.Type] = true
		if !slices.Contains(o.Transforms, t) {
			return wire.Proposal{}, fmt.Errorf("%w: %v was not offered in proposal %d", ErrBadChoice, t, o.Num)
		}
		if t.Type == wire.TransformENCR && isAEAD(t.ID) {
			aead = true
		}
	}
	for _, typ := range typesOf(o, opt.IgnoreKE) {
		if seen[typ] {
			continue
		}
		offeredNone := slices.ContainsFunc(ofType(o, typ), func(t wire.Transform) bool { return t.ID == 0 })
		if (typ == wire.TransformINTEG && aead) || (offeredNone && typ != wire.TransformESN) {
			continue
		}
		return wire.Proposal{}, fmt.Errorf("%w: no %v transform chosen", ErrBadChoice, typ)
	}
	return a, nil
}

// KEGroups returns the key exchange methods (Transform Type 4) of the proposals in
// preference order, each once, without NONE. The first is the initiator's KE payload
// guess; an INVALID_KE_PAYLOAD asking for a group not in the list is refused (RFC 7296
// §1.2, §1.3).
func KEGroups(props []wire.Proposal) []wire.TransformID {
	var ids []wire.TransformID
	for _, p := range props {
		for _, t := range p.Transforms {
			if t.Type == wire.TransformKE && t.ID != wire.KENone && !slices.Contains(ids, t.ID) {
				ids = append(ids, t.ID)
			}
		}
	}
	return ids
}

// WithoutKE returns copies of the proposals with the KE and ADDKE transforms removed,
// for the SA payload of IKE_AUTH, which carries no key exchange (RFC 7296 §1.2).
func WithoutKE(props []wire.Proposal) []wire.Proposal {
	out := make([]wire.Proposal, len(props))
	for i, p := range props {
		p.Transforms = slices.DeleteFunc(slices.Clone(p.Transforms), func(t wire.Transform) bool { return t.Type.IsKE() })
		out[i] = p
	}
	return out
}
