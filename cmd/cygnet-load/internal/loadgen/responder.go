package loadgen

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// ResponderConfig is an IKEv2 responder made of cygnet's core (actors/ike) and this
// package's event loops: no actor tree, no kernel. It answers IKE_SA_INIT and IKE_AUTH
// (RFC 7296 §1.2), CREATE_CHILD_SA and INFORMATIONAL like cygnetd would, and counts.
// It exists so that cygnet-load can be tested, and the core measured, without cygnetd.
type ResponderConfig struct {
	// Listen are the IKE addresses (port 0: ephemeral). Each also gets a NAT-T socket
	// on NATTPort (0: ephemeral) for initiators that float (RFC 7296 §2.23).
	Listen   []netip.AddrPort
	NATTPort uint16

	IKEProposals, ESPProposals string // strongSwan syntax
	PSK                        []byte
	LocalID                    string // our identity (IDr)
	RemoteID                   string // required of initiators; default %any
	// LocalTS and RemoteTS are the Child SA's selectors (empty: dynamic, the outer
	// address of that side). RemoteTS must cover what initiators propose.
	LocalTS, RemoteTS []netip.Prefix

	// CookieThreshold: above this many half-open IKE SAs, IKE_SA_INIT requests must
	// carry a COOKIE (RFC 7296 §2.6). Zero never demands one.
	CookieThreshold int
	// HalfOpenTimeout bounds how long an IKE SA may wait for IKE_AUTH (default 30 s).
	HalfOpenTimeout time.Duration

	Shards, Workers int
}

// Responder is a running in-process responder.
type Responder struct {
	cfg   ResponderConfig
	e     *engine
	conns []*ike.Connection
	opts  ike.Options
	live  atomic.Int64
	addrs []netip.AddrPort
	natt  []netip.AddrPort
}

// ResponderStats are a responder's counters.
type ResponderStats struct {
	Established uint64 `json:"established"` // IKE SAs that completed IKE_AUTH (not rekeys)
	IKEUp       int64  `json:"ike_up"`      // IKE SAs up now
	ChildUp     int64  `json:"children_up"` // Child SAs up now
	Families    int64  `json:"families"`    // families alive (half-open included)
	HalfOpen    int64  `json:"half_open"`
	CookiesSent uint64 `json:"cookies_sent"`
	Dropped     uint64 `json:"dropped"`
	IKERekeys   uint64 `json:"ike_rekeys"`
	ChildRekeys uint64 `json:"child_rekeys"`
}

// NewResponder binds the sockets. Start begins answering; Close stops.
func NewResponder(cfg ResponderConfig) (*Responder, error) {
	if len(cfg.Listen) == 0 {
		return nil, errors.New("responder: no listen address")
	}
	if cfg.RemoteID == "" {
		cfg.RemoteID = "%any"
	}
	ikeProps, err := proposal.Parse(wire.ProtoIKE, cfg.IKEProposals)
	if err != nil {
		return nil, fmt.Errorf("responder: IKE proposals: %w", err)
	}
	espProps, err := proposal.Parse(wire.ProtoESP, cfg.ESPProposals)
	if err != nil {
		return nil, fmt.Errorf("responder: ESP proposals: %w", err)
	}
	localID, err := ike.ParseIdentity(cfg.LocalID)
	if err != nil {
		return nil, fmt.Errorf("responder: local identity: %w", err)
	}
	remoteID, err := ike.ParseIdentity(cfg.RemoteID)
	if err != nil {
		return nil, fmt.Errorf("responder: remote identity: %w", err)
	}
	ts := func(ps []netip.Prefix) []ike.TrafficSelector {
		var out []ike.TrafficSelector
		for _, p := range ps {
			out = append(out, ike.TSFromPrefix(p))
		}
		return out
	}
	conn := &ike.Connection{
		Name: "responder", Proposals: ikeProps,
		Local:  ike.AuthConfig{ID: localID, Auth: ike.AuthPSK},
		Remote: ike.AuthConfig{ID: remoteID, Auth: ike.AuthPSK},
		PSK:    ike.Secret(cfg.PSK), HalfOpenTimeout: cfg.HalfOpenTimeout,
		Children: []ike.ChildConfig{{Name: "child", ESPProposals: espProps,
			LocalTS: ts(cfg.LocalTS), RemoteTS: ts(cfg.RemoteTS)}},
	}
	if err := conn.Validate(); err != nil {
		return nil, fmt.Errorf("responder: %w", err)
	}
	e, err := newEngine(cfg.Shards, cfg.Workers, newStats())
	if err != nil {
		return nil, err
	}
	r := &Responder{cfg: cfg, e: e, conns: []*ike.Connection{conn}}
	e.resp = r
	var secret [32]byte
	if _, err := crand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("responder: cookie secret: %w", err)
	}
	// Every shard checks cookies with the same secret; a request and its retry with
	// the cookie hash to the same shard anyway.
	for _, sh := range e.shards {
		sh.cookies = ike.NewCookies(secret[:])
	}
	for _, l := range cfg.Listen {
		s, err := e.listen(l, false, nil)
		if err != nil {
			e.stop()
			return nil, fmt.Errorf("responder: %w", err)
		}
		r.addrs = append(r.addrs, s.local)
		n, err := e.listen(netip.AddrPortFrom(l.Addr(), cfg.NATTPort), true, nil)
		if err != nil {
			e.stop()
			return nil, fmt.Errorf("responder: NAT-T: %w", err)
		}
		r.natt = append(r.natt, n.local)
	}
	r.opts = ike.Options{NATTPort: r.natt[0].Port()}
	return r, nil
}

// Addrs are the bound IKE addresses; NATTAddrs the NAT-T ones, in the same order.
func (r *Responder) Addrs() []netip.AddrPort     { return r.addrs }
func (r *Responder) NATTAddrs() []netip.AddrPort { return r.natt }

// Start begins answering.
func (r *Responder) Start() { r.e.start() }

// Close stops answering and releases the sockets. Families are dropped silently, as a
// crashed responder's would be.
func (r *Responder) Close() { r.e.stop() }

// Stats reads the counters.
func (r *Responder) Stats() ResponderStats {
	st := r.e.stats
	return ResponderStats{Established: st.Established.Load(), IKEUp: st.IKEUp.Load(), ChildUp: st.ChildUp.Load(),
		Families: r.live.Load(), HalfOpen: st.HalfOpen.Load(), CookiesSent: st.CookiesSent.Load(),
		Dropped: st.Dropped.Load(), IKERekeys: st.IKERekeys.Load(), ChildRekeys: st.ChildRekeys.Load()}
}

// newSA handles an IKE_SA_INIT request without a responder SPI on its shard: a
// retransmission goes to the half-open family; otherwise cookies are checked when
// needed (RFC 7296 §2.6) and a responder family is created.
func (r *Responder) newSA(sh *shard, pkt ike.PacketReceived, spiI ike.SPI) {
	st := r.e.stats
	key := halfKey{pkt.Remote, spiI}
	if fm := sh.halfOpen[key]; fm != nil && !fm.dead {
		sh.step(fm, pkt)
		return
	}
	if r.cfg.CookieThreshold > 0 && st.HalfOpen.Load() >= int64(r.cfg.CookieThreshold) {
		verdict, resp, err := sh.cookies.Check(pkt.Data, pkt.Remote.Addr())
		if err != nil {
			st.Dropped.Add(1)
			st.count(st.drops, string(telemetry.DropMalformed))
			return
		}
		if verdict != ike.CookieValid {
			if verdict == ike.CookieInvalid {
				st.count(st.drops, string(telemetry.DropInvalidCookie))
			}
			st.CookiesSent.Add(1)
			sh.send(pkt.Local, pkt.Remote, resp)
			return
		}
	}
	f, effects, err := ike.NewResponder(time.Now(), r.conns, env{sh}, r.opts, pkt)
	if err != nil {
		st.Dropped.Add(1)
		st.count(st.drops, string(telemetry.DropMalformed))
		return
	}
	fm := sh.add(f)
	fm.half, fm.isHalf = key, true
	sh.halfOpen[key] = fm
	st.HalfOpen.Add(1)
	r.live.Add(1)
	sh.apply(fm, effects)
}

func (r *Responder) releaseHalf(sh *shard, fm *fam) {
	if fm.isHalf {
		fm.isHalf = false
		if sh.halfOpen[fm.half] == fm {
			delete(sh.halfOpen, fm.half)
		}
		r.e.stats.HalfOpen.Add(-1)
	}
}

func (r *Responder) established(sh *shard, fm *fam) {
	r.e.stats.Established.Add(1)
	fm.established = true
	r.releaseHalf(sh, fm)
}

func (r *Responder) ended(sh *shard, fm *fam, _ ike.FamilyDone) {
	r.releaseHalf(sh, fm)
	r.live.Add(-1)
}
