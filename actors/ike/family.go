package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// Options are a family's settings outside its Connection: daemon-wide ones (strongSwan
// keeps them in charon.*) and what the shell knows when it creates the family.
type Options struct {
	// NATTPort is the local port IKE moves to when a NAT is detected (RFC 7296 §2.23;
	// charon.port_nat_t). Default 4500. The remote side moves to its NAT-T port, which
	// is 4500 unless the connection's RemotePort is not 500 (then it stays).
	NATTPort uint16
	// RemoteNATTPort is the peer's NAT-T port (default 4500). Tests on loopback with
	// ephemeral ports set it.
	RemoteNATTPort uint16
	// NoInitialContact keeps INITIAL_CONTACT out of an initiator's IKE_AUTH (RFC 7296
	// §2.4). By default the first IKE_AUTH carries it: this IKE SA is the only one
	// between the two authenticated identities, and the peer may delete every other
	// (they are left over from before a restart). The shell sets NoInitialContact when
	// it creates an initiator while it holds another IKE family for the same connection
	// and peer, whose IKE SA must survive, and feeds NotFirstContact when such a family
	// comes up later, before this one's IKE_AUTH. Responders ignore it.
	NoInitialContact bool
}

func (o Options) withDefaults() Options {
	if o.NATTPort == 0 {
		o.NATTPort = DefaultNATTPort
	}
	if o.RemoteNATTPort == 0 {
		o.RemoteNATTPort = DefaultNATTPort
	}
	return o
}

// Family is one IKE family: an IKE SA, the IKE SAs that replace it by rekeying, and all
// their Child SAs. See the package documentation for the contract.
type Family struct {
	cfg        *Connection   // the connection (responder: the chosen one once IKE_AUTH is done)
	candidates []*Connection // responder: the connections that may accept the peer
	env        Env
	rand       io.Reader
	opts       Options

	now  time.Time
	out  []Effect
	done bool

	ike      *ikeSA   // the current IKE SA
	old      []*ikeSA // IKE SAs replaced by a rekey or lost in a collision, until deleted
	children []*childSA
	nextRef  ChildRef

	// queue holds local requests waiting for the current IKE SA's window (RFC 7296
	// §2.3: one outstanding request with window size 1).
	queue []task

	work      []pendingWork // continuations of Work effects not yet done (few: nil when idle)
	nextToken uint64

	timerGen uint64
	timerAt  time.Time

	initiated bool // Initiate / InitiateChild / Acquire was seen (initiator)

	injectAnswer wire.NotifyType // AnswerRequestsWith
	injectCount  int

	// peerDeletedSPIs are SPIs the peer deleted that matched no Child SA of ours: a
	// replacement the peer created (and then deleted) while its CREATE_CHILD_SA response
	// to us was still on its way. finishInitiatorChild consults it.
	peerDeletedSPIs []uint32

	// keGroup overrides the key exchange method of IKE rekeys ("" key) and of PFS for
	// child definitions (by name) after the peer asked for another with
	// INVALID_KE_PAYLOAD (RFC 7296 §1.3).
	keGroup map[string]wire.TransformID
}

// pendingWork is the continuation of one Work effect.
type pendingWork struct {
	token uint64
	cont  func(result any)
}

// preferGroup records that the peer wants group for key exchanges of kind ("" for the
// IKE SA, else a child definition name), if we offer it.
func (f *Family) preferGroup(kind string, group wire.TransformID, offered []wire.Proposal) bool {
	if group == 0 || !slices.Contains(proposal.KEGroups(offered), group) || f.keGroup[kind] == group {
		return false
	}
	if f.keGroup == nil {
		f.keGroup = map[string]wire.TransformID{}
	}
	f.keGroup[kind] = group
	return true
}

// AnswerRequestsWith makes the family answer the next n requests it receives (after
// the integrity and window checks) with the error notify t alone instead of processing
// them. It is a fault-injection aid for the simulator and chaos tests (a peer answering
// INVALID_SYNTAX, say); the daemon never calls it.
func (f *Family) AnswerRequestsWith(t wire.NotifyType, n int) { f.injectAnswer, f.injectCount = t, n }

// NewInitiator creates a family that will initiate an IKE SA for cfg when it receives
// Initiate, InitiateChild or Acquire. It emits nothing until then.
func NewInitiator(cfg *Connection, env Env, opts Options) (*Family, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new initiator: %w", err)
	}
	return &Family{cfg: cfg.shared(), env: env, rand: env.Rand(), opts: opts.withDefaults()}, nil
}

// NewResponder creates a responder family from the first IKE_SA_INIT request it must
// answer (the manager has checked, via Peek, that first is one, and any COOKIE policy).
// candidates are the connections that may accept this peer, in preference order: the
// IKE_SA_INIT proposal is chosen with the first one whose proposals match and IKE_AUTH
// picks the one matching the peer's identity. The returned effects are those of
// processing first (valid until the next Step). An error means first is not an
// acceptable IKE_SA_INIT request: nothing was created; count it as dropped.
func NewResponder(now time.Time, candidates []*Connection, env Env, opts Options, first PacketReceived) (*Family, []Effect, error) {
	if len(candidates) == 0 {
		return nil, nil, errors.New("new responder: no candidate connections")
	}
	cands := make([]*Connection, 0, len(candidates))
	for _, c := range candidates {
		if err := c.Validate(); err != nil {
			return nil, nil, fmt.Errorf("new responder: %w", err)
		}
		cands = append(cands, c.shared())
	}
	f := &Family{cfg: cands[0], candidates: cands, env: env, rand: env.Rand(), opts: opts.withDefaults()}
	f.now = now
	if err := f.respondInit(first); err != nil {
		return nil, nil, fmt.Errorf("new responder: %w", err)
	}
	f.finishStep()
	return f, f.out, nil
}

// Step feeds one event into the family and returns the effects the caller must carry
// out, in order. The returned slice (and the Data of SendDatagram effects, which is
// shared with the retransmission cache) is valid until the next call of Step; copy what
// must outlive it. After FamilyDone, Step returns nothing.
func (f *Family) Step(now time.Time, ev Event) []Effect {
	// The last turn's effects (keys in InstallChild, datagrams) must not stay reachable
	// from the kept array while the family idles.
	clear(f.out)
	f.out = f.out[:0]
	if f.done {
		return nil
	}
	if now.After(f.now) {
		f.now = now
	}
	switch e := ev.(type) {
	case PacketReceived:
		f.onPacket(e)
	case TimerFired:
		if e.Gen == f.timerGen && !f.timerAt.IsZero() {
			f.timerAt = time.Time{}
			f.onTimer()
		}
	case Initiate:
		f.onInitiate("")
	case InitiateChild:
		f.onInitiate(e.Name)
	case Acquire:
		f.onAcquire(e.Name)
	case RekeyChild:
		if c := f.child(e.Ref); c != nil {
			f.queueRekeyChild(c)
		}
	case RekeyIKE:
		f.queueRekeyIKE()
	case DeleteChild:
		if c := f.child(e.Ref); c != nil {
			f.queueDeleteChild(c, telemetry.ReasonTerminated)
		}
	case Terminate:
		f.onTerminate()
	case ChildInstalled:
		f.onChildInstalled(e.Ref, nil)
	case ChildInstallFailed:
		err := e.Err
		if err == nil {
			err = errors.New("install failed")
		}
		f.onChildInstalled(e.Ref, err)
	case ChildExpired:
		f.onChildExpired(e.Ref, e.Hard)
	case ChildDied:
		f.onChildDied(e.Ref)
	case NotFirstContact:
		f.opts.NoInitialContact = true
	case WorkDone:
		if i := slices.IndexFunc(f.work, func(w pendingWork) bool { return w.token == e.Token }); i >= 0 {
			cont := f.work[i].cont
			f.work = slices.Delete(f.work, i, i+1)
			if len(f.work) == 0 {
				f.work = nil
			}
			cont(e.Result)
		}
	}
	f.finishStep()
	return f.out
}

// finishStep starts queued requests and arms the timer for the earliest deadline.
func (f *Family) finishStep() {
	if f.done {
		return
	}
	f.expireHeld()
	f.runQueue()
	if f.done {
		return
	}
	at := f.nextDeadline()
	if !at.Equal(f.timerAt) {
		f.timerGen++
		f.timerAt = at
		f.emit(ArmTimer{At: at, Gen: f.timerGen})
	}
}

// Done reports whether the family has ended (it emitted FamilyDone).
func (f *Family) Done() bool { return f.done }

// Connection returns the family's connection (for a responder, the one chosen so far).
func (f *Family) Connection() *Connection { return f.cfg }

func (f *Family) emit(e Effect) { f.out = append(f.out, e) }

func (f *Family) log(level LogLevel, msg string, kv ...string) {
	fields := make([]Field, 0, len(kv)/2+1)
	fields = append(fields, Field{"conn", f.cfg.Name})
	for i := 0; i+1 < len(kv); i += 2 {
		fields = append(fields, Field{kv[i], kv[i+1]})
	}
	f.emit(Log{Level: level, Msg: msg, Fields: fields})
}

func (f *Family) drop(reason telemetry.DropReason, detail string) {
	f.emit(Dropped{Reason: reason, Detail: detail})
}

// randBytes reads n bytes from the injected randomness. A failing source is a broken
// environment: the family dies rather than use predictable values.
func (f *Family) randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(f.rand, b); err != nil {
		panic(fmt.Sprintf("ike: random source failed: %v", err))
	}
	return b
}

func (f *Family) randUint64() uint64 { return binary.BigEndian.Uint64(f.randBytes(8)) }

// jitter returns a random duration in [0, max).
func (f *Family) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(f.randUint64() % uint64(max))
}

// newSPI returns a fresh non-zero IKE SPI.
func (f *Family) newSPI() SPI {
	for {
		if s := SPI(f.randUint64()); s != 0 {
			return s
		}
	}
}

// runWork emits a Work effect and remembers what to do with its result.
func (f *Family) runWork(run func() any, cont func(any)) {
	f.nextToken++
	f.work = append(f.work, pendingWork{token: f.nextToken, cont: cont})
	f.emit(Work{Token: f.nextToken, Run: run})
}

// die ends the family: every Child SA is removed, every established IKE SA closed.
func (f *Family) die(reason string, err error) {
	if f.done {
		return
	}
	for _, c := range f.children {
		f.removeChildState(c, reason)
	}
	f.children = nil
	for _, ike := range f.allIKE() {
		f.closeIKE(ike, reason)
	}
	lvl := LevelInfo
	if err != nil {
		lvl = LevelWarn
	}
	kv := []string{"reason", reason}
	if err != nil {
		kv = append(kv, "error", err.Error())
	}
	f.log(lvl, "IKE family ends", kv...)
	f.emit(FamilyDone{Reason: reason, Err: err})
	f.done = true
	if !f.timerAt.IsZero() {
		f.timerGen++
		f.timerAt = time.Time{}
		f.emit(ArmTimer{Gen: f.timerGen})
	}
}

// allIKE lists the current IKE SA and the old ones.
func (f *Family) allIKE() []*ikeSA {
	out := make([]*ikeSA, 0, 1+len(f.old))
	if f.ike != nil {
		out = append(out, f.ike)
	}
	return append(out, f.old...)
}

// closeIKE emits IKEClosed for an established IKE SA (once) and marks it dead.
func (f *Family) closeIKE(ike *ikeSA, reason string) {
	if ike.announced && !ike.closed {
		f.emit(IKEClosed{SPIi: ike.spiI, SPIr: ike.spiR, Reason: reason})
	}
	ike.closed = true
	ike.state = IKEStateDead
}

// forgetIKE removes an old IKE SA from the family (it was deleted) and unroutes it.
func (f *Family) forgetIKE(ike *ikeSA, reason string) {
	f.closeIKE(ike, reason)
	f.old = slices.DeleteFunc(f.old, func(o *ikeSA) bool { return o == ike })
	if ike.routed {
		f.emit(UnrouteSPI{SPI: ike.localSPI()})
		ike.routed = false
	}
}

// Snapshot is a copy of a family's state for listings, the simulator and invariant
// checks.
type Snapshot struct {
	// IKE lists the family's IKE SAs, current first.
	IKE      []IKEInfo
	Children []ChildInfo
	Done     bool
}

// Snapshot returns the family's current state.
func (f *Family) Snapshot() Snapshot {
	s := Snapshot{Done: f.done}
	for _, ike := range f.allIKE() {
		s.IKE = append(s.IKE, f.ikeInfo(ike))
	}
	for _, c := range f.children {
		s.Children = append(s.Children, c.info())
	}
	return s
}

func (f *Family) ikeInfo(ike *ikeSA) IKEInfo {
	return IKEInfo{
		Name: f.cfg.Name, SPIi: ike.spiI, SPIr: ike.spiR, Initiator: ike.initiator,
		Local: ike.local, Remote: ike.remote, LocalID: f.cfg.Local.ID, RemoteID: ike.peerID,
		NATLocal: ike.natLocal, NATPeer: ike.natPeer, State: ike.state,
		EstablishedAt: ike.establishedAt, RekeyAt: ike.rekeyAt, ExpiresAt: ike.expireAt,
		NextMsgIDOut: ike.nextReqID, NextMsgIDIn: ike.nextPeerID,
		Outstanding: ike.active != nil || ike.busy, Suite: ike.suite,
	}
}
