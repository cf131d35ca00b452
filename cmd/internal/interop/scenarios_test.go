package interop

// The scenarios of issue 7, written against Peer only. A is "our side" (cygnetd,
// or charon standing in for it in TestCharonCharon), B is always charon. Every scenario runs in
// both directions: A initiates the IKE SA, or B does. docs/interop.md is the table
// of what each asserts.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/interop/pcap"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// scenario is one row of the table.
type scenario struct {
	name string
	// optsA and optsB start the peers.
	optsA, optsB PeerOptions
	run          func(t *testing.T, e *env)
}

// env is one run of one scenario.
type env struct {
	ctx  context.Context
	pair *netns.Pair
	// A is our side, B charon; I and R are A and B in this run's roles.
	A, B, I, R Peer
	cap        *Capture
}

// direction says who initiates the IKE SA.
type direction int

const (
	aInitiates direction = iota
	bInitiates
)

func (d direction) String() string {
	if d == aInitiates {
		return "A-initiates"
	}
	return "B-initiates"
}

// runScenarios runs every scenario in both directions, in parallel, with A made
// by factA and B by factB.
func runScenarios(t *testing.T, factA, factB Factory, scs []scenario) {
	for _, sc := range scs {
		for _, dir := range []direction{aInitiates, bInitiates} {
			t.Run(sc.name+"/"+dir.String(), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, factA, factB, sc.optsA, sc.optsB, dir)
				sc.run(t, e)
			})
		}
	}
}

// newEnv makes a namespace pair, starts the capture on A's veth, then A and B.
// On failure the capture is written to the test output.
func newEnv(t *testing.T, factA, factB Factory, optsA, optsB PeerOptions, dir direction) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	pair := netns.NewPair(t)
	e := &env{ctx: ctx, pair: pair}
	e.cap = StartCapture(t, pair.A)
	e.A = factA(t, "A", pair.A, optsA)
	e.B = factB(t, "B", pair.B, optsB)
	e.I, e.R = e.A, e.B
	if dir == bInitiates {
		e.I, e.R = e.B, e.A
	}
	t.Cleanup(func() {
		if t.Failed() {
			ps, err := e.cap.Packets()
			t.Logf("capture on %s (err %v):\n%s", pair.A.Link, err, FormatPackets(ps))
		}
	})
	return e
}

func (e *env) other(p Peer) Peer {
	if p == e.A {
		return e.B
	}
	return e.A
}

// conn is DefaultConn from p's point of view.
func (e *env) conn(p Peer) charon.Conn { return DefaultConn(p.NS(), e.other(p).NS()) }

func (e *env) load(t *testing.T, p Peer, c charon.Conn) {
	t.Helper()
	if err := p.LoadConn(e.ctx, c); err != nil {
		t.Fatal(err)
	}
}

// loadDefault loads DefaultConn on both sides, each modified by mod (if not nil).
func (e *env) loadDefault(t *testing.T, mod func(p Peer, c *charon.Conn)) {
	t.Helper()
	for _, p := range []Peer{e.A, e.B} {
		c := e.conn(p)
		if mod != nil {
			mod(p, &c)
		}
		e.load(t, p, c)
	}
}

// settle waits until both peers hold the one IKE SA of "ab" with want installed
// Child SAs and agree on it.
func (e *env) settle(t *testing.T, want int) (charon.IKESA, charon.IKESA) {
	t.Helper()
	return e.settleWhere(t, fmt.Sprintf("one IKE SA with %d children", want), want, nil)
}

// settleWhere polls both peers until each holds one settled IKE SA of "ab" with
// want installed children, the two agree, and changed (if set) holds for the
// initiator's view. Both sides are listed on every round, so a state that is
// still moving (a retransmitted rekey) is waited out, not reported.
func (e *env) settleWhere(t *testing.T, what string, want int, changed func(charon.IKESA) bool) (charon.IKESA, charon.IKESA) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, Settle)
	defer cancel()
	var isas, rsas []charon.IKESA
	var last error
	for {
		var err error
		if isas, err = e.I.ListSAs(ctx); err == nil {
			rsas, err = e.R.ListSAs(ctx)
		}
		if err == nil {
			err = Settled("ab", want)(isas)
			if err != nil {
				err = fmt.Errorf("initiator: %w", err)
			} else if err = Settled("ab", want)(rsas); err != nil {
				err = fmt.Errorf("responder: %w", err)
			}
		}
		if err == nil {
			var i, r charon.IKESA
			if i, r, err = CheckAgree("ab", isas, rsas); err == nil {
				if changed == nil || changed(i) {
					return i, r
				}
				err = errors.New("not changed yet")
			}
		}
		if ctx.Err() == nil || last == nil {
			last = err // the deadline cutting the last listing short says nothing new
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v\ninitiator %s:\n%sresponder %s:\n%s", what, last,
				e.I.Label(), charon.FormatSAs(isas), e.R.Label(), charon.FormatSAs(rsas))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// establish has I initiate child "net" and waits until both agree on it.
func (e *env) establish(t *testing.T) (charon.IKESA, charon.IKESA) {
	t.Helper()
	if err := e.I.Initiate(e.ctx, "ab", "net"); err != nil {
		t.Fatal(err)
	}
	return e.settle(t, 1)
}

// ping proves traffic flows through the Child SA both ways, where both peers have
// a data plane.
func (e *env) ping(t *testing.T) {
	t.Helper()
	if !e.A.DataPlane() || !e.B.DataPlane() {
		return
	}
	if err := e.pair.A.Ping(e.ctx, e.pair.A.Inner, e.pair.B.Inner, 2); err != nil {
		t.Fatal(err)
	}
	if err := e.pair.B.Ping(e.ctx, e.pair.B.Inner, e.pair.A.Inner, 2); err != nil {
		t.Fatal(err)
	}
}

// from names the sender of a captured packet.
func (e *env) from(p pcap.Packet) Peer {
	if p.Src.Addr() == e.A.NS().Outer.Addr() {
		return e.A
	}
	return e.B
}

// waitIKE waits until the capture holds at least n IKE messages: tcpdump hands
// packets over a moment after they crossed, so a check must wait for what it
// knows was sent.
func (e *env) waitIKE(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, Settle)
	defer cancel()
	if _, err := e.cap.WaitIKE(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// waitESP waits until the capture holds ESP packets with every one of spis.
func (e *env) waitESP(t *testing.T, spis ...uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, Settle)
	defer cancel()
	for {
		ps, err := e.cap.Packets()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint32]bool{}
		for _, p := range ps {
			if p.Kind == pcap.KindESP {
				seen[p.ESPSPI] = true
			}
		}
		missing := slices.DeleteFunc(slices.Clone(spis), func(spi uint32) bool { return seen[spi] })
		if len(missing) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no UDP-encapsulated ESP with SPIs %08x on the wire:\n%s", missing, FormatPackets(ps))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ikeFrom returns the captured IKE messages p sent of exchange x between the
// peers' IKE ports, retransmissions (byte-identical repeats) left out.
func (e *env) ikeFrom(t *testing.T, p Peer, x pcap.Exchange) []pcap.Packet {
	t.Helper()
	ps, err := e.cap.Packets()
	if err != nil {
		t.Fatal(err)
	}
	var out []pcap.Packet
	for _, m := range peerMessages(pcap.IKEMessages(ps)) {
		if e.from(m) == p && m.Header.Exchange == x {
			out = append(out, m)
		}
	}
	return out
}

// logMarkers are the log words that show a peer noticed something, per
// implementation. charon abbreviates notify names in its message summaries.
// cygnetd (log level debug) logs each notify sent or received by name
// ("notify received {"notify": "INVALID_KE_PAYLOAD"}"), a failed Child SA with its
// reason, and the end of an IKE family with its reason.
var logMarkers = map[string]map[string][]string{
	"charon": {
		"no-proposal":   {"NO_PROPOSAL_CHOSEN", "N(NO_PROP)"},
		"ts-unaccept":   {"TS_UNACCEPTABLE", "N(TS_UNACCEPT)"},
		"invalid-ke":    {"INVALID_KE_PAYLOAD", "N(INVAL_KE)"},
		"cookie":        {"N(COOKIE)"},
		"kernel-refuse": {"unable to add SAD entry"},
		"unreachable":   {"giving up after"},
	},
	"cygnet": {
		"no-proposal":   {`"NO_PROPOSAL_CHOSEN"`},
		"ts-unaccept":   {`"TS_UNACCEPTABLE"`},
		"invalid-ke":    {`"notify": "INVALID_KE_PAYLOAD"`},
		"cookie":        {`"notify": "COOKIE"`},
		"kernel-refuse": {"kernel refused Child SA"},
		"unreachable":   {`IKE family ends	{"conn": "ab", "reason": "timeout"`},
	},
}

func requireLog(t *testing.T, p Peer, marker string) {
	t.Helper()
	words := logMarkers[p.Impl()][marker]
	for _, w := range words {
		if p.LogContains(w) {
			return
		}
	}
	t.Errorf("%s: log mentions none of %q (%s)", p.Label(), words, marker)
}

// suite is one row of scenario 2's matrix, with the names charon reports.
type suite struct {
	ike, esp                 string
	encr, integ, prf, dh     string
	childEncr, childInteg    string
	encrKeysize, childKeyLen int
}

var suites = []suite{
	{"aes256-sha256-modp2048", "aes256-sha256", "AES_CBC", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048", "AES_CBC", "HMAC_SHA2_256_128", 256, 256},
	{"aes256-sha384-ecp384", "aes256-sha384", "AES_CBC", "HMAC_SHA2_384_192", "PRF_HMAC_SHA2_384", "ECP_384", "AES_CBC", "HMAC_SHA2_384_192", 256, 256},
	{"aes256-sha512-modp3072", "aes256-sha512", "AES_CBC", "HMAC_SHA2_512_256", "PRF_HMAC_SHA2_512", "MODP_3072", "AES_CBC", "HMAC_SHA2_512_256", 256, 256},
	{"aes256-sha256-ecp256", "aes256-sha256", "AES_CBC", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "ECP_256", "AES_CBC", "HMAC_SHA2_256_128", 256, 256},
	{"chacha20poly1305-prfsha256-x25519", "chacha20poly1305", "CHACHA20_POLY1305", "", "PRF_HMAC_SHA2_256", "CURVE_25519", "CHACHA20_POLY1305", "", 0, 0}, // charon reports no key size for ChaCha20-Poly1305
}

func checkSuite(t *testing.T, s suite, i charon.IKESA) {
	t.Helper()
	got := fmt.Sprintf("%s-%d/%s/%s/%s", i.EncrAlg, i.EncrKeysize, i.IntegAlg, i.PRFAlg, i.DHGroup)
	want := fmt.Sprintf("%s-%d/%s/%s/%s", s.encr, s.encrKeysize, s.integ, s.prf, s.dh)
	if got != want {
		t.Errorf("IKE SA algorithms %s, want %s", got, want)
	}
	for _, c := range installed(i) {
		got := fmt.Sprintf("%s-%d/%s", c.EncrAlg, c.EncrKeysize, c.IntegAlg)
		want := fmt.Sprintf("%s-%d/%s", s.childEncr, s.childKeyLen, s.childInteg)
		if got != want {
			t.Errorf("Child SA %s algorithms %s, want %s", c.Name, got, want)
		}
	}
}

// otherHost is an address next to p's peer's inner address that nobody
// configured: a traffic selector for it is unacceptable.
func (e *env) otherHost(p Peer) netip.Prefix {
	return netip.PrefixFrom(e.other(p).NS().Inner.Next(), 32)
}

// badChild is a child whose remote selector the peer never accepts.
func (e *env) badChild(p Peer) charon.Child {
	c := NetChild(p.NS().Inner, e.other(p).NS().Inner, "aes256gcm16")
	c.Name = "bad"
	c.RemoteTS = []string{e.otherHost(p).String()}
	return c
}

// firstInstalled returns the one installed Child SA of an IKE SA.
func firstInstalled(t *testing.T, s charon.IKESA) charon.ChildSA {
	t.Helper()
	c := installed(s)
	if len(c) != 1 {
		t.Fatalf("%d installed Child SAs in %s, want 1", len(c), s)
	}
	return c[0]
}

// scenarioTable is every scenario of issue 7, as it runs with charon as B. With
// charon as A too, scenario 9's cookie is demanded by charon (threshold 1 and a
// decoy half-open SA) and scenario 10's keys come from charon A's log.
func scenarioTable() []scenario {
	var scs []scenario

	// 1. PSK, aes256gcm16-prfsha256-x25519, ESP aes256gcm16.
	scs = append(scs, scenario{name: "1-psk-gcm-x25519", run: func(t *testing.T, e *env) {
		e.loadDefault(t, nil)
		i, _ := e.establish(t)
		checkSuite(t, suite{encr: "AES_GCM_16", encrKeysize: 256, prf: "PRF_HMAC_SHA2_256", dh: "CURVE_25519",
			childEncr: "AES_GCM_16", childKeyLen: 256}, i)
		c := firstInstalled(t, i)
		if got := strings.Join(c.LocalTS, ",") + "=" + strings.Join(c.RemoteTS, ","); got !=
			netip.PrefixFrom(e.I.NS().Inner, 32).String()+"="+netip.PrefixFrom(e.R.NS().Inner, 32).String() {
			t.Errorf("initiator's selectors %s", got)
		}
		e.ping(t)
	}})

	// 2. The suite matrix.
	for _, s := range suites {
		scs = append(scs, scenario{name: "2-suite-" + s.ike, run: func(t *testing.T, e *env) {
			e.loadDefault(t, func(p Peer, c *charon.Conn) {
				c.Proposals = []string{s.ike}
				c.Children[0].ESPProposals = []string{s.esp}
			})
			i, _ := e.establish(t)
			checkSuite(t, s, i)
			e.ping(t)
		}})
	}
	// 2. PFS: a second Child SA whose CREATE_CHILD_SA carries KE (RFC 7296 §1.3.1).
	scs = append(scs, scenario{name: "2-pfs-create-child", run: func(t *testing.T, e *env) {
		e.loadDefault(t, func(p Peer, c *charon.Conn) {
			pfs := NetChild(p.NS().Inner, e.other(p).NS().Inner, "aes256gcm16-x25519")
			pfs.Name = "pfs"
			pfs.LocalTS = []string{netip.PrefixFrom(p.NS().Inner, 32).String() + "[udp/5000]"}
			pfs.RemoteTS = []string{netip.PrefixFrom(e.other(p).NS().Inner, 32).String() + "[udp/5000]"}
			c.Children = append(c.Children, pfs)
		})
		e.establish(t)
		if err := e.I.Initiate(e.ctx, "ab", "pfs"); err != nil {
			t.Fatal(err)
		}
		i, _ := e.settle(t, 2)
		var pfs []charon.ChildSA
		for _, c := range installed(i) {
			if c.Name == "pfs" {
				pfs = append(pfs, c)
			}
		}
		if len(pfs) != 1 || pfs[0].DHGroup != "CURVE_25519" {
			t.Errorf("PFS child: %v, want one with DH CURVE_25519", pfs)
		}
		e.waitIKE(t, 6)
		if n := len(e.ikeFrom(t, e.I, pcap.CreateChildSA)); n != 1 {
			t.Errorf("%d CREATE_CHILD_SA requests from the initiator, want 1", n)
		}
		e.ping(t)
	}})
	// 2. Proposal mismatch: NO_PROPOSAL_CHOSEN in IKE_SA_INIT, nothing established.
	scs = append(scs, scenario{name: "2-proposal-mismatch", run: func(t *testing.T, e *env) {
		e.loadDefault(t, func(p Peer, c *charon.Conn) {
			if p == e.I {
				c.Proposals = []string{"aes128-sha256-modp2048"}
			}
		})
		if err := e.I.Initiate(e.ctx, "ab", "net"); err == nil {
			t.Fatal("initiate succeeded with no common proposal")
		}
		e.waitIKE(t, 2)
		resp := e.ikeFrom(t, e.R, pcap.IKESAInit)
		if len(resp) != 1 || !slices.Contains(pcap.Notifies(resp[0].IKE), pcap.NotifyNoProposalChosen) {
			t.Errorf("responder's IKE_SA_INIT: want one response with N(NO_PROPOSAL_CHOSEN), got\n%s", FormatPackets(resp))
		}
		for _, p := range []Peer{e.I, e.R} {
			ctx, cancel := context.WithTimeout(e.ctx, Settle)
			_, err := WaitSAs(ctx, p, "no IKE SA", NoSAs)
			cancel()
			if err != nil {
				t.Error(err)
			}
		}
		requireLog(t, e.A, "no-proposal")
	}})

	// 3. INVALID_KE_PAYLOAD: the initiator guesses x25519, the responder only takes
	// ecp256 (RFC 7296 §1.2).
	scs = append(scs, scenario{name: "3-invalid-ke", run: func(t *testing.T, e *env) {
		e.loadDefault(t, func(p Peer, c *charon.Conn) {
			if p == e.I {
				c.Proposals = []string{"aes256gcm16-prfsha256-x25519-ecp256"}
			} else {
				c.Proposals = []string{"aes256gcm16-prfsha256-ecp256"}
			}
		})
		i, _ := e.establish(t)
		if i.DHGroup != "ECP_256" {
			t.Errorf("DH group %s, want ECP_256", i.DHGroup)
		}
		e.waitIKE(t, 6)
		reqs, resps := e.ikeFrom(t, e.I, pcap.IKESAInit), e.ikeFrom(t, e.R, pcap.IKESAInit)
		if len(reqs) != 2 || len(resps) != 2 || !slices.Equal(pcap.Notifies(resps[0].IKE), []uint16{pcap.NotifyInvalidKEPayload}) {
			t.Errorf("want request, N(INVALID_KE_PAYLOAD), request, response; got\n%s%s", FormatPackets(reqs), FormatPackets(resps))
		}
		requireLog(t, e.A, "invalid-ke")
		e.ping(t)
	}})

	// 4. Rekeying, started by each side and by both at once.
	for _, by := range []string{"I", "R", "both"} {
		scs = append(scs, scenario{name: "4-child-rekey-by-" + by, run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			i0, _ := e.establish(t)
			old := firstInstalled(t, i0)
			for _, p := range e.rekeyers(by) {
				if err := p.Rekey(e.ctx, charon.Target{Child: "net"}); err != nil {
					t.Fatal(err)
				}
			}
			i1 := e.settleChange(t, 1, func(i charon.IKESA) bool {
				c := installed(i)
				return len(c) == 1 && c[0].SPIIn != old.SPIIn && c[0].SPIOut != old.SPIOut
			})
			if i1.SPIi != i0.SPIi || i1.SPIr != i0.SPIr {
				t.Errorf("IKE SA changed by a Child SA rekey: %s -> %s", i0, i1)
			}
			e.ping(t)
		}})
		scs = append(scs, scenario{name: "4-ike-rekey-by-" + by, run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			i0, _ := e.establish(t)
			child := firstInstalled(t, i0)
			for _, p := range e.rekeyers(by) {
				if err := p.Rekey(e.ctx, charon.Target{IKE: "ab"}); err != nil {
					t.Fatal(err)
				}
			}
			i1 := e.settleChange(t, 1, func(i charon.IKESA) bool { return i.SPIi != i0.SPIi && i.SPIr != i0.SPIr })
			// The Child SA moves to the new IKE SA untouched (RFC 7296 §2.8).
			if c := firstInstalled(t, i1); c.SPIIn != child.SPIIn || c.SPIOut != child.SPIOut {
				t.Errorf("Child SA changed by an IKE SA rekey: %s -> %s", child, c)
			}
			e.ping(t)
		}})
	}

	// 5. Deletes from each side; liveness.
	for _, by := range []string{"I", "R"} {
		scs = append(scs, scenario{name: "5-delete-child-by-" + by, run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			i0, _ := e.establish(t)
			if err := e.rekeyers(by)[0].Terminate(e.ctx, charon.Target{Child: "net"}); err != nil {
				t.Fatal(err)
			}
			i1, _ := e.settle(t, 0)
			if i1.SPIi != i0.SPIi {
				t.Errorf("IKE SA changed by a Child SA delete: %s -> %s", i0, i1)
			}
		}})
		scs = append(scs, scenario{name: "5-delete-ike-by-" + by, run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			e.establish(t)
			if err := e.rekeyers(by)[0].Terminate(e.ctx, charon.Target{IKE: "ab"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []Peer{e.I, e.R} {
				ctx, cancel := context.WithTimeout(e.ctx, Settle)
				_, err := WaitSAs(ctx, p, "no IKE SA", NoSAs)
				cancel()
				if err != nil {
					t.Error(err)
				}
			}
			e.waitIKE(t, 6)
			if n := len(e.ikeFrom(t, e.rekeyers(by)[0], pcap.Informational)); n != 1 {
				t.Errorf("%d INFORMATIONAL messages from the deleting side, want 1 (the DELETE)", n)
			}
		}})
	}
	scs = append(scs, scenario{name: "5-liveness-peer-silent",
		optsA: PeerOptions{RetransmitTries: 2, RetransmitTimeout: 0.5, RetransmitBase: 1.4},
		run: func(t *testing.T, e *env) {
			e.loadDefault(t, func(p Peer, c *charon.Conn) {
				if p == e.A {
					c.DPDDelay = time.Second
				}
			})
			e.establish(t)
			if err := e.pair.B.SetLinkUp(false); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(e.ctx, Settle)
			defer cancel()
			if _, err := WaitSAs(ctx, e.A, "family teardown after the peer went silent", NoSAs); err != nil {
				t.Fatal(err)
			}
			// The teardown came from the liveness check, not from anything else.
			requireLog(t, e.A, "unreachable")
			// What A sent after the link went down is not in the capture: without
			// carrier the veth drops it before tcpdump sees it.
		}})

	// 6. The failure rules with a real peer.
	scs = append(scs, scenario{name: "6a-first-child-ts-unacceptable", run: func(t *testing.T, e *env) {
		e.loadDefault(t, func(p Peer, c *charon.Conn) {
			if p == e.I {
				c.Children = append(c.Children, e.badChild(p))
			}
		})
		if err := e.I.Initiate(e.ctx, "ab", "bad"); err == nil {
			t.Error("initiating the mismatched child reported success")
		}
		i0, _ := e.settle(t, 0) // the IKE SA stays up on both ends, childless
		requireLog(t, e.A, "ts-unaccept")
		if err := e.I.Initiate(e.ctx, "ab", "net"); err != nil {
			t.Fatal(err)
		}
		i1, _ := e.settle(t, 1)
		if i1.SPIi != i0.SPIi || i1.SPIr != i0.SPIr {
			t.Errorf("IKE SA replaced: %s -> %s", i0, i1)
		}
		e.ping(t)
	}})
	scs = append(scs, scenario{name: "6b-second-child-ts-unacceptable", run: func(t *testing.T, e *env) {
		e.loadDefault(t, func(p Peer, c *charon.Conn) {
			if p == e.I {
				c.Children = append(c.Children, e.badChild(p))
			}
		})
		i0, _ := e.establish(t)
		c0 := firstInstalled(t, i0)
		if err := e.I.Initiate(e.ctx, "ab", "bad"); err == nil {
			t.Error("initiating the mismatched child reported success")
		}
		i1, _ := e.settle(t, 1)
		if c1 := firstInstalled(t, i1); i1.SPIi != i0.SPIi || c1.SPIIn != c0.SPIIn || c1.SPIOut != c0.SPIOut {
			t.Errorf("IKE SA or first Child SA touched: %s %s -> %s %s", i0, c0, i1, c1)
		}
		requireLog(t, e.A, "ts-unaccept")
		e.ping(t)
	}})
	scs = append(scs, scenario{name: "6c-peer-kernel-refuses-child",
		optsB: PeerOptions{RefuseChildSA: true},
		run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			_ = e.I.Initiate(e.ctx, "ab", "net") // charon reports the child's failure or not, by role
			i0, _ := e.settle(t, 0)
			requireLog(t, e.B, "kernel-refuse") // the precondition: B's kernel really refused
			// Our IKE SA is alive: it can still be rekeyed.
			if err := e.A.Rekey(e.ctx, charon.Target{IKE: "ab"}); err != nil {
				t.Fatal(err)
			}
			e.settleChange(t, 0, func(i charon.IKESA) bool { return i.SPIi != i0.SPIi })
		}})

	// 6c from our side: A's own kernel refuses every Child SA (the failure rule
	// "local kernel refuses a Child SA": as responder a Child-level error notify, as
	// initiator a DELETE for it); the IKE SA survives on both ends.
	scs = append(scs, scenario{name: "6c-own-kernel-refuses-child",
		optsA: PeerOptions{RefuseChildSA: true},
		run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			_ = e.I.Initiate(e.ctx, "ab", "net") // fails or not, by role
			i0, _ := e.settle(t, 0)
			requireLog(t, e.A, "kernel-refuse")
			if err := e.B.Rekey(e.ctx, charon.Target{IKE: "ab"}); err != nil {
				t.Fatal(err)
			}
			e.settleChange(t, 0, func(i charon.IKESA) bool { return i.SPIi != i0.SPIi })
		}})

	// 7. NAT traversal: kernel-libipsec fakes NAT detection (RFC 7296 §2.23).
	scs = append(scs, scenario{name: "7-nat-t-udp-encap", run: func(t *testing.T, e *env) {
		e.loadDefault(t, nil)
		i, r := e.establish(t)
		for _, s := range []charon.IKESA{i, r} {
			if s.LocalPort != pcap.PortNATT || s.RemotePort != pcap.PortNATT || !s.NATAny {
				t.Errorf("IKE SA not floated to 4500 with NAT detected: %s (nat-any %v)", s, s.NATAny)
			}
			if c := firstInstalled(t, s); !c.Encap {
				t.Errorf("Child SA %s without UDP encapsulation", c)
			}
		}
		e.ping(t)
		e.waitIKE(t, 4)
		if e.A.DataPlane() && e.B.DataPlane() {
			c := firstInstalled(t, i)
			e.waitESP(t, c.SPIIn, c.SPIOut)
		}
		ps, err := e.cap.Packets()
		if err != nil {
			t.Fatal(err)
		}
		var initPorts, laterPorts []string
		for _, p := range ps {
			switch {
			case p.Kind == pcap.KindIKE && p.Header.Exchange == pcap.IKESAInit:
				initPorts = append(initPorts, fmt.Sprint(p.Src.Port(), p.Dst.Port()))
			case p.Kind == pcap.KindIKE:
				laterPorts = append(laterPorts, fmt.Sprint(p.Src.Port(), p.Dst.Port()))
			case p.Kind == pcap.KindESP && (p.Src.Port() != pcap.PortNATT || p.Dst.Port() != pcap.PortNATT):
				t.Errorf("ESP on ports %v -> %v", p.Src, p.Dst)
			}
		}
		if len(initPorts) != 2 || initPorts[0] != "500 500" || initPorts[1] != "500 500" {
			t.Errorf("IKE_SA_INIT ports %v, want 500->500 both", initPorts)
		}
		if len(laterPorts) < 2 || slices.ContainsFunc(laterPorts, func(s string) bool { return s != "4500 4500" }) {
			t.Errorf("IKE ports after IKE_SA_INIT %v, want 4500->4500 with the non-ESP marker", laterPorts)
		}
	}})

	// 8. Fragmentation (RFC 7383): many selectors and a small fragment size make
	// IKE_AUTH larger than a fragment in both directions.
	scs = append(scs, scenario{name: "8-fragmentation",
		optsA: PeerOptions{FragmentSize: 576}, optsB: PeerOptions{FragmentSize: 576},
		run: func(t *testing.T, e *env) {
			e.loadDefault(t, func(p Peer, c *charon.Conn) {
				c.Fragmentation = "yes"
				c.Children[0].LocalTS = manyTS(p.NS().Inner)
				c.Children[0].RemoteTS = manyTS(e.other(p).NS().Inner)
			})
			e.establish(t)
			e.waitIKE(t, 6)
			for _, p := range []Peer{e.I, e.R} {
				var frags int
				for _, m := range e.ikeFrom(t, p, pcap.IKEAuth) {
					if m.Header.Fragment() {
						frags++
					}
				}
				if frags < 2 {
					t.Errorf("%s sent %d IKE_AUTH fragments (SKF), want at least 2", p.Label(), frags)
				}
			}
			e.ping(t)
		}})

	// 9. COOKIE (RFC 7296 §2.6), demanded by the responder. charon only demands
	// cookies while it holds a half-open IKE SA (its threshold cannot be 0), so a
	// decoy IKE_SA_INIT from another port makes one first.
	scs = append(scs, scenario{name: "9-cookie",
		optsA: PeerOptions{CookieThreshold: 1}, optsB: PeerOptions{CookieThreshold: 1},
		run: func(t *testing.T, e *env) {
			e.loadDefault(t, nil)
			e.sendDecoyInit(t)
			e.establish(t)
			e.waitIKE(t, 8) // decoy and answer, COOKIE round, IKE_SA_INIT, IKE_AUTH
			resps := e.ikeFrom(t, e.R, pcap.IKESAInit)
			var cookies int
			for _, m := range resps {
				if slices.Equal(pcap.Notifies(m.IKE), []uint16{pcap.NotifyCookie}) {
					cookies++
				}
			}
			if cookies == 0 {
				t.Errorf("no N(COOKIE) response from the responder:\n%s", FormatPackets(resps))
			}
			var echoed int
			for _, m := range e.ikeFrom(t, e.I, pcap.IKESAInit) {
				if n := pcap.Notifies(m.IKE); len(n) > 0 && n[0] == pcap.NotifyCookie {
					echoed++
				}
			}
			if echoed == 0 {
				t.Error("the initiator never repeated IKE_SA_INIT with the COOKIE first")
			}
			e.ping(t)
		}})
	// 10. Keys: traffic from B's side, through B's userspace ESP, decrypted with
	// the keys A says it derived.
	scs = append(scs, scenario{name: "10-keys-decrypt-esp", optsA: PeerOptions{LogKeys: true},
		run: func(t *testing.T, e *env) {
			ks, ok := e.A.(KeySource)
			if !ok {
				t.Fatalf("%s cannot report its keys", e.A.Label())
			}
			e.loadDefault(t, nil)
			i, r := e.establish(t)
			a := r
			if e.I == e.A {
				a = i
			}
			spi := firstInstalled(t, a).SPIIn // B -> A
			// A may have no data plane to answer: the echo requests are what counts.
			_, _ = e.pair.B.Run(e.ctx, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-w", "3",
				"-I", e.pair.B.Inner.String(), e.pair.A.Inner.String())
			e.waitESP(t, spi)
			keys, err := ks.ESPKeys(spi)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := e.cap.Packets()
			if err != nil {
				t.Fatal(err)
			}
			var opened int
			for _, p := range ps {
				if p.Kind != pcap.KindESP || p.ESPSPI != spi {
					continue
				}
				var inner []byte
				var next byte
				var openedBy int
				for _, k := range keys {
					if in, nh, err := OpenESPAESGCM(k, p.Payload); err == nil {
						inner, next = in, nh
						openedBy++
					}
				}
				if openedBy != 1 {
					t.Errorf("ESP #%d (SPI %08x): %d of A's %d keys open it, want exactly 1", p.Frame, spi, openedBy, len(keys))
					continue
				}
				src, dst := netip.AddrFrom4([4]byte(inner[12:16])), netip.AddrFrom4([4]byte(inner[16:20]))
				if next != 4 || inner[9] != 1 || src != e.pair.B.Inner || dst != e.pair.A.Inner || inner[20] != 8 {
					t.Errorf("ESP #%d: next header %d, inner %v -> %v protocol %d type %d; want an ICMP echo request %v -> %v",
						p.Frame, next, src, dst, inner[9], inner[20], e.pair.B.Inner, e.pair.A.Inner)
				}
				opened++
			}
			if opened == 0 {
				t.Error("no ESP packet from B decrypted")
			}
		}})
	return scs
}

// rekeyers returns the peers that start a rekey or delete: "I", "R" or "both".
func (e *env) rekeyers(by string) []Peer {
	switch by {
	case "I":
		return []Peer{e.I}
	case "R":
		return []Peer{e.R}
	}
	return []Peer{e.I, e.R}
}

// settleChange waits until both sides have settled on one IKE SA with want
// installed Child SAs for which changed holds, and agree.
func (e *env) settleChange(t *testing.T, want int, changed func(charon.IKESA) bool) charon.IKESA {
	t.Helper()
	i, _ := e.settleWhere(t, "the change", want, changed)
	return i
}

// manyTS returns 24 selectors for host: ICMP (for the ping), then UDP ports
// 1000-1022. None contains another (charon drops contained selectors), and every
// one holds a local address (or kernel-libipsec cannot route it).
func manyTS(host netip.Addr) []string {
	p := netip.PrefixFrom(host, 32).String()
	out := []string{p + "[icmp]"}
	for port := 1000; len(out) < 24; port++ {
		out = append(out, fmt.Sprintf("%s[udp/%d]", p, port))
	}
	return out
}
