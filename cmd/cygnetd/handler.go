package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// handler implements the control API (cmd/internal/control.Handler) over the actor
// tree. IKE SA unique IDs are family IDs: an IKE SA keeps its ID across IKE rekeys.
// Child SA unique IDs come from the daemon's childIDs table.
type handler struct{ d *daemon }

var (
	_ control.Handler = handler{}
	_ control.Killer  = handler{}
)

// initiateTimeout bounds Initiate when the client gave no deadline: the initiator's
// retransmission schedule with default settings gives up after about 2 minutes; an
// operator waiting at a prompt wants an answer sooner.
const initiateTimeout = 30 * time.Second

func (h handler) ListConns(ctx context.Context, emit func(*control.Conn) error) error {
	for _, c := range h.d.cfg.Load().Connections {
		if err := emit(control.ConnFromConfig(c)); err != nil {
			return err
		}
	}
	return nil
}

// ListSAs lists the IKE SAs with their Child SAs (swanctl --list-sas). Each Child SA's
// reqid and byte/packet counters come from one dump of the kernel's SAD taken before the
// listing (readSATableFor; a listing of a few Child SAs reads just their SAs), joined on
// SPI; if the read fails the SAs are listed without them and the log says why.
func (h handler) ListSAs(ctx context.Context, filter control.SAFilter, emit func(*control.IKESA) error) error {
	var rec control.IKESA
	all := h.d.m.ListSAs()
	sas := all[:0]
	for _, sa := range all {
		if filter.IKE != "" && sa.Conn != filter.IKE {
			continue
		}
		if filter.IKEID != 0 && uint64(sa.Family) != filter.IKEID {
			continue
		}
		if len(sa.IKE) == 0 {
			continue
		}
		sas = append(sas, sa)
	}
	var ksas *saTable
	if anyChildren(sas) {
		var err error
		if ksas, err = readSATableFor(ctx, h.d.backend.k, sas); err != nil {
			h.d.logs.Logger(logging.Kernel).Warn("list-sas: the kernel's SAs could not be read; reqids and counters are left out", zap.Error(err))
		}
	}
	for i := range sas {
		ikeRecord(&rec, &sas[i], h.d.ids, ksas)
		if err := emit(&rec); err != nil {
			return err
		}
	}
	return nil
}

// anyChildren reports whether some family has a Child SA (else the kernel is not read).
func anyChildren(sas []actors.SA) bool {
	for i := range sas {
		if len(sas[i].Children) > 0 {
			return true
		}
	}
	return false
}

// ikeRecord fills rec with family sa's current IKE SA and its Child SAs. An old IKE SA
// that was rekeyed and waits for its deletion (RFC 7296 §2.8) is not listed: the
// family's unique ID names one IKE SA at a time. ksas (nil: none) gives each Child SA's
// reqid and counters: inbound is the SA with SPIIn towards the local address, outbound
// the one with SPIOut towards the peer.
func ikeRecord(rec *control.IKESA, sa *actors.SA, ids *childIDs, ksas *saTable) {
	in := &sa.IKE[0]
	*rec = control.IKESA{
		Conn: sa.Conn, UniqueID: uint64(sa.Family), State: in.State.String(), Initiator: in.Initiator,
		SPIi: control.SPI64(in.SPIi), SPIr: control.SPI64(in.SPIr),
		LocalHost: addrString(in.Local.Addr()), LocalPort: in.Local.Port(), LocalID: in.LocalID.String(),
		RemoteHost: addrString(in.Remote.Addr()), RemotePort: in.Remote.Port(), RemoteID: in.RemoteID.String(),
		NATLocal: in.NATLocal, NATRemote: in.NATPeer,
		Established: unix(in.EstablishedAt), RekeyAt: unix(in.RekeyAt),
		Proposal: ikeProposal(in.Suite), Children: rec.Children[:0],
	}
	if rec.Conn == "" {
		rec.Conn = in.Name
	}
	for j := range sa.Children {
		c := &sa.Children[j]
		rec.Children = append(rec.Children, control.ChildSA{
			Name: c.Name, UniqueID: ids.id(sa.Family, c.Ref), State: c.State.String(),
			Mode: strings.ToUpper(c.Mode.String()), Protocol: "ESP",
			SPIIn: control.SPI32(c.SPIIn), SPIOut: control.SPI32(c.SPIOut),
			Encap: c.Encap, Proposal: espProposal(c.Suite),
			Installed: unix(c.InstalledAt), RekeyAt: unix(c.RekeyAt), ExpireAt: unix(c.ExpireAt),
			LocalTS: tsStrings(c.LocalTS), RemoteTS: tsStrings(c.RemoteTS),
		})
		ch := &rec.Children[len(rec.Children)-1]
		kin, inOK := ksas.lookup(in.Local.Addr(), c.SPIIn)
		kout, outOK := ksas.lookup(in.Remote.Addr(), c.SPIOut)
		if inOK {
			ch.ReqID, ch.BytesIn, ch.PacketsIn = uint32(kin.reqid), kin.counters.Bytes, kin.counters.Packets
		}
		if outOK {
			if !inOK {
				ch.ReqID = uint32(kout.reqid)
			}
			ch.BytesOut, ch.PacketsOut = kout.counters.Bytes, kout.counters.Packets
		}
	}
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func tsStrings(ts []ike.TrafficSelector) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = tsString(t)
	}
	return out
}

// protocolNames are the IP protocols list-sas names, as strongSwan prints them.
var protocolNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}

// tsString prints a traffic selector (RFC 7296 §3.13.1) as strongSwan's list-sas
// does: the address range as a prefix (or "a..b"), then "[protocol/port]", the
// protocol by name, the port or range only when not any: "198.51.100.1/32[udp/5000]",
// "198.51.100.1/32[icmp]".
func tsString(t ike.TrafficSelector) string {
	var s string
	if p, ok := t.Prefix(); ok {
		s = p.String()
	} else {
		s = t.Start.String() + ".." + t.End.String()
	}
	anyPort := t.StartPort == 0 && t.EndPort == 0xffff
	if t.Protocol == 0 && anyPort {
		return s
	}
	s += "["
	if n, ok := protocolNames[t.Protocol]; ok {
		s += n
	} else if t.Protocol != 0 {
		s += strconv.Itoa(int(t.Protocol))
	}
	switch {
	case anyPort:
	case t.StartPort == t.EndPort:
		s += "/" + strconv.Itoa(int(t.StartPort))
	default:
		s += "/" + strconv.Itoa(int(t.StartPort)) + "-" + strconv.Itoa(int(t.EndPort))
	}
	return s + "]"
}

// resolve finds the connection a by-name target means: IKE names it, or Child names a
// child (child names are unique in a configuration).
func (h handler) resolve(t control.Target) (conn, child string, err error) {
	cfg := h.d.cfg.Load()
	if t.Child != "" {
		c, _, ok := cfg.Child(t.Child)
		if !ok {
			return "", "", control.Errorf(control.CodeUnknownChild, "no child named %q", t.Child)
		}
		if t.IKE != "" && t.IKE != c.Name {
			return "", "", control.Errorf(control.CodeUnknownChild, "connection %q has no child %q", t.IKE, t.Child)
		}
		return c.Name, t.Child, nil
	}
	if _, ok := cfg.Connection(t.IKE); !ok {
		return "", "", control.Errorf(control.CodeUnknownConnection, "no connection named %q", t.IKE)
	}
	return t.IKE, "", nil
}

// Initiate starts a connection's IKE SA (with its start children) or one child, and
// waits until it is up or has failed (RFC 7296 §1.2, §1.3.1).
func (h handler) Initiate(ctx context.Context, t control.Target) (control.Done, error) {
	if t.IKEID != 0 || t.ChildID != 0 {
		return control.Done{}, control.Errorf(control.CodeBadRequest, "initiate takes a connection or child name, not an SA id")
	}
	conn, child, err := h.resolve(t)
	if err != nil {
		return control.Done{}, err
	}
	if h.d.stopping.Load() {
		return control.Done{}, control.Errorf(control.CodeShuttingDown, "cygnetd is shutting down")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, initiateTimeout)
		defer cancel()
	}
	sub := h.d.m.Subscribe(256)
	defer sub.Close()
	if err := h.d.m.Initiate(ctx, conn, child); err != nil {
		return control.Done{}, control.Errorf(control.CodeFailed, "initiate %s: %v", t, err)
	}
	for {
		select {
		case <-ctx.Done():
			return control.Done{}, control.Errorf(control.CodeFailed, "initiate %s: not established in time (%v)", t, context.Cause(ctx))
		case ev, ok := <-sub.C:
			if !ok {
				return control.Done{}, control.Errorf(control.CodeShuttingDown, "cygnetd is shutting down")
			}
			if ev.Conn != conn {
				continue
			}
			switch {
			case child == "" && ev.Kind == actors.EventIKEUp,
				child != "" && ev.Kind == actors.EventChildUp && ev.Child.Name == child:
				return control.Done{Count: 1}, nil
			case child != "" && ev.Kind == actors.EventChildFailed && ev.Child.Name == child:
				return control.Done{}, control.Errorf(control.CodeFailed, "initiate %s: the Child SA failed: %s (the IKE SA is kept)", t, ev.Reason)
			case ev.Kind == actors.EventFamilyDone:
				return control.Done{}, control.Errorf(control.CodeFailed, "initiate %s: the IKE SA failed: %s", t, ev.Reason)
			}
		}
	}
}

// target translates a control target into the actor tree's.
func (h handler) target(t control.Target) (actors.Target, error) {
	switch {
	case t.ChildID != 0:
		k, ok := h.d.ids.lookup(t.ChildID)
		if !ok {
			return actors.Target{}, control.Errorf(control.CodeUnknownSA, "no Child SA #%d", t.ChildID)
		}
		for _, sa := range h.d.m.ListSAs() {
			if sa.Family != k.family {
				continue
			}
			for _, c := range sa.Children {
				if c.Ref == k.ref && (c.SPIIn != 0 || c.SPIOut != 0) {
					spi := c.SPIIn
					if spi == 0 {
						spi = c.SPIOut
					}
					return actors.Target{Family: k.family, ChildSPI: spi}, nil
				}
			}
		}
		return actors.Target{}, control.Errorf(control.CodeUnknownSA, "no Child SA #%d", t.ChildID)
	case t.IKEID != 0:
		return actors.Target{Family: kernel.FamilyID(t.IKEID), Child: t.Child}, nil
	}
	conn, child, err := h.resolve(t)
	if err != nil {
		// A removed connection may still have SAs going away: let the tree decide.
		if t.Child == "" && control.IsCode(err, control.CodeUnknownConnection) {
			return actors.Target{Conn: t.IKE}, nil
		}
		return actors.Target{}, err
	}
	return actors.Target{Conn: conn, Child: child}, nil
}

func (h handler) command(t control.Target, verb string, f func(actors.Target) (int, error)) (control.Done, error) {
	tg, err := h.target(t)
	if err != nil {
		return control.Done{}, err
	}
	n, err := f(tg)
	if err != nil {
		if t.IKE != "" && t.Child == "" {
			if _, ok := h.d.cfg.Load().Connection(t.IKE); !ok {
				return control.Done{}, control.Errorf(control.CodeUnknownConnection, "no connection named %q", t.IKE)
			}
		}
		return control.Done{}, control.Errorf(control.CodeUnknownSA, "%s %s: %v", verb, t, err)
	}
	return control.Done{Count: n}, nil
}

// Terminate deletes the targeted SAs with the peer (RFC 7296 §1.4.1).
func (h handler) Terminate(ctx context.Context, t control.Target) (control.Done, error) {
	return h.command(t, "terminate", h.d.m.Terminate)
}

// Rekey rekeys the targeted SAs (RFC 7296 §1.3.2 IKE SA, §1.3.3 Child SA).
func (h handler) Rekey(ctx context.Context, t control.Target) (control.Done, error) {
	return h.command(t, "rekey", h.d.m.Rekey)
}

func (h handler) Reload(ctx context.Context) (*control.ReloadResult, error) {
	return h.d.reload(ctx)
}

func (h handler) Stats(ctx context.Context) (*control.Stats, error) {
	st := &control.Stats{
		Version: version(), Started: h.d.started.Unix(), Kernel: h.d.backend.name, Chaos: h.d.chaos,
		Connections:   len(h.d.cfg.Load().Connections),
		HalfOpen:      h.d.m.Stats().HalfOpen,
		Goroutines:    runtime.NumGoroutine(),
		Retransmits:   h.d.rec.retransmits.Load(),
		Dropped:       h.d.rec.dropped.Load(),
		ChildFailures: h.d.rec.childFailures.Load(),
	}
	for _, sa := range h.d.m.ListSAs() {
		if len(sa.IKE) > 0 && established(sa.IKE[0].State) {
			st.IKESAs++
		}
		for _, c := range sa.Children {
			if c.State == ike.ChildStateUp || c.State == ike.ChildStateRekeying {
				st.ChildSAs++
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapBytes = ms.HeapAlloc
	return st, nil
}

func established(s ike.IKEState) bool {
	return s == ike.IKEStateEstablished || s == ike.IKEStateRekeying
}

// Watch streams SA events. An IKE SA that comes up again in a family that was already
// up is an IKE rekey (RFC 7296 §2.18).
func (h handler) Watch(ctx context.Context, emit func(*control.Event) error) error {
	sub := h.d.m.Subscribe(1024)
	defer sub.Close()
	up := map[kernel.FamilyID]bool{}
	for _, sa := range h.d.m.ListSAs() {
		if len(sa.IKE) > 0 && established(sa.IKE[0].State) {
			up[sa.Family] = true
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			e, ok := h.event(ev, up)
			if !ok {
				continue
			}
			if err := emit(e); err != nil {
				return err
			}
		}
	}
}

func (h handler) event(ev actors.Event, up map[kernel.FamilyID]bool) (*control.Event, bool) {
	e := &control.Event{Time: time.Now().UnixNano(), Conn: ev.Conn, IKEID: uint64(ev.Family), Reason: ev.Reason,
		SPIi: control.SPI64(ev.IKE.SPIi), SPIr: control.SPI64(ev.IKE.SPIr), Remote: addrString(ev.IKE.Remote.Addr())}
	switch ev.Kind {
	case actors.EventIKEUp:
		e.Type = control.EventIKEUp
		if up[ev.Family] {
			e.Type = control.EventIKERekeyed
		}
		up[ev.Family] = true
	case actors.EventIKEDown:
		e.Type = control.EventIKEDown
	case actors.EventChildUp:
		e.Type = control.EventChildUp
	case actors.EventChildDown:
		e.Type = control.EventChildDown
	case actors.EventChildFailed:
		e.Type = control.EventChildFailed
	case actors.EventFamilyDone:
		delete(up, ev.Family)
		return nil, false
	default:
		return nil, false
	}
	if e.Conn == "" {
		e.Conn = ev.IKE.Name
	}
	if ev.Kind == actors.EventChildUp || ev.Kind == actors.EventChildDown || ev.Kind == actors.EventChildFailed {
		e.Child = ev.Child.Name
		if ev.Child.Ref != 0 {
			e.ChildID = h.d.ids.id(ev.Family, ev.Child.Ref)
		}
	}
	return e, true
}

// DebugKill stops a named actor as if it had crashed. Actors are named as the actor
// tree names them ("f<id>" a family, "f<id>/c<ref>" a Child SA actor) or by the unique
// IDs list-sas shows: "ike:<id>" the IKE SA's family, "child:<id>" the Child SA's actor.
// The control server offers it only with chaos enabled.
func (h handler) DebugKill(ctx context.Context, name string) error {
	actorName := name
	if v, ok := strings.CutPrefix(name, "ike:"); ok {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return control.Errorf(control.CodeBadRequest, "debug-kill %s: expected ike:<IKE SA id>", name)
		}
		actorName = "f" + strconv.FormatUint(id, 10)
	} else if v, ok := strings.CutPrefix(name, "child:"); ok {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return control.Errorf(control.CodeBadRequest, "debug-kill %s: expected child:<Child SA id>", name)
		}
		k, ok := h.d.ids.lookup(id)
		if !ok {
			return control.Errorf(control.CodeUnknownActor, "debug-kill %s: no Child SA #%d", name, id)
		}
		actorName = fmt.Sprintf("f%d/c%d", uint64(k.family), uint64(k.ref))
	}
	if err := h.d.m.KillActor(ctx, actorName, false); err != nil {
		return control.Errorf(control.CodeUnknownActor, "debug-kill %s: %v", name, err)
	}
	h.d.log.Warn("debug-kill: actor stopped on request (chaos testing)", zap.String("actor", actorName))
	return nil
}

var _ control.KernelDebugger = handler{}

// DebugKernelSAs lists the in-memory kernel's SAD with keys (chaos testing: a test
// decrypts captured ESP with them). The control server offers it only with chaos
// enabled; with the XFRM backend it is refused.
func (h handler) DebugKernelSAs(ctx context.Context, emit func(*control.KernelSA) error) error {
	mem := h.d.backend.mem
	if mem == nil {
		return control.Errorf(control.CodeUnknownCommand, "debug-kernel-sas needs the in-memory kernel (running: %s)", h.d.backend.name)
	}
	tables, err := mem.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("debug-kernel-sas: %w", err)
	}
	for _, e := range tables.SAs {
		sa := &e.SA
		rec := &control.KernelSA{SPI: uint32(sa.SPI), Src: addrString(sa.Src), Dst: addrString(sa.Dst),
			Reqid: uint32(sa.Reqid), Encr: sa.Encr.String(), EncrKey: hex.EncodeToString(sa.EncrKey),
			Encap: sa.Encap != nil}
		if sa.Integ != kernel.IntegNone {
			rec.Integ, rec.IntegKey = sa.Integ.String(), hex.EncodeToString(sa.IntegKey)
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// DebugKernelFail makes the in-memory kernel refuse its next installs installs
// (chaos testing of the failure rule "local kernel refuses a Child SA"); 0 clears the
// faults.
func (h handler) DebugKernelFail(ctx context.Context, installs int) error {
	mem := h.d.backend.mem
	if mem == nil {
		return control.Errorf(control.CodeUnknownCommand, "debug-kernel-fail needs the in-memory kernel (running: %s)", h.d.backend.name)
	}
	if installs == 0 {
		mem.ClearFaults()
	} else {
		mem.FailInstalls(installs)
	}
	h.d.log.Warn("debug-kernel-fail: the in-memory kernel refuses installs on request (chaos testing)", zap.Int("installs", installs))
	return nil
}
