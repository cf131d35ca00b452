package interop

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/interop/pcap"
)

// The IKE messages charon sends, kept as seed corpus for the wire fuzzers and as
// decode regression inputs (wire/testdata/charon/README.md). A normal run replays
// the sequences and checks that charon still sends the same exchanges
// (MANIFEST.txt); -update-corpus rewrites the files from that run.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite wire/testdata/charon from a fresh charon<->charon run")

const corpusDir = "../../../wire/testdata/charon"

// corpusStep is one action and the number of IKE messages it puts on the wire
// (retransmissions, which charon sends byte for byte, are not counted).
type corpusStep struct {
	name string
	msgs int
	do   func(t *testing.T, e *env)
}

type corpusSeq struct {
	name         string
	optsA, optsB PeerOptions
	load         func(t *testing.T, e *env)
	steps        []corpusStep
}

// corpusMsg is one captured IKE message with its label.
type corpusMsg struct {
	seq, step string
	pcap.Packet
	fromA bool
}

func (m corpusMsg) file(idx int) string {
	kind := "req"
	if m.Header.Response() {
		kind = "resp"
	}
	dir := "b2a"
	if m.fromA {
		dir = "a2b"
	}
	return fmt.Sprintf("%02d-%s-%s-%s-%s.bin", idx, m.step, strings.ToLower(m.Header.Exchange.String()), kind, dir)
}

// manifestLine describes a message by what must stay the same from run to run.
func (m corpusMsg) manifestLine(idx int) string {
	flags := ""
	if m.Header.Initiator() {
		flags += "I"
	}
	if m.Header.Response() {
		flags += "R"
	}
	if flags == "" {
		flags = "-"
	}
	var notifies []string
	for _, n := range pcap.Notifies(m.IKE) {
		notifies = append(notifies, fmt.Sprint(n))
	}
	if len(notifies) == 0 {
		notifies = []string{"-"}
	}
	return fmt.Sprintf("%s/%s %s msgid=%d flags=%s first=%d notifies=%s",
		m.seq, m.file(idx), m.Header.Exchange, m.Header.MsgID, flags, m.Header.NextPayload, strings.Join(notifies, ","))
}

func corpusSeqs() []corpusSeq {
	pfsChild := func(e *env, p Peer) charon.Child {
		c := NetChild(p.NS().Inner, e.other(p).NS().Inner, "aes256gcm16-x25519")
		c.Name = "pfs"
		c.LocalTS = []string{netip.PrefixFrom(p.NS().Inner, 32).String() + "[udp/5000]"}
		c.RemoteTS = []string{netip.PrefixFrom(e.other(p).NS().Inner, 32).String() + "[udp/5000]"}
		return c
	}
	noSAs := func(t *testing.T, e *env) {
		for _, p := range []Peer{e.A, e.B} {
			ctx, cancel := context.WithTimeout(e.ctx, Settle)
			_, err := WaitSAs(ctx, p, "no IKE SA", NoSAs)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return []corpusSeq{
		{
			name: "exchanges", optsA: PeerOptions{LogKeys: true}, optsB: PeerOptions{LogKeys: true},
			load: func(t *testing.T, e *env) {
				e.loadDefault(t, func(p Peer, c *charon.Conn) { c.Children = append(c.Children, pfsChild(e, p)) })
			},
			steps: []corpusStep{
				{"init-auth", 4, func(t *testing.T, e *env) { e.establish(t) }},
				{"child-rekey", 4, func(t *testing.T, e *env) {
					old := firstInstalled(t, e.mustOne(t, e.A))
					if err := e.A.Rekey(e.ctx, charon.Target{Child: "net"}); err != nil {
						t.Fatal(err)
					}
					e.settleChange(t, 1, func(i charon.IKESA) bool { return installed(i)[0].SPIIn != old.SPIIn })
				}},
				{"create-child-pfs", 2, func(t *testing.T, e *env) {
					if err := e.A.Initiate(e.ctx, "ab", "pfs"); err != nil {
						t.Fatal(err)
					}
					e.settle(t, 2)
				}},
				{"ike-rekey-by-b", 4, func(t *testing.T, e *env) {
					old := e.mustOne(t, e.A)
					if err := e.B.Rekey(e.ctx, charon.Target{IKE: "ab"}); err != nil {
						t.Fatal(err)
					}
					e.settleChange(t, 2, func(i charon.IKESA) bool { return i.SPIi != old.SPIi })
				}},
				{"delete-child", 2, func(t *testing.T, e *env) {
					if err := e.A.Terminate(e.ctx, charon.Target{Child: "pfs"}); err != nil {
						t.Fatal(err)
					}
					e.settle(t, 1)
				}},
				{"delete-ike-by-b", 2, func(t *testing.T, e *env) {
					if err := e.B.Terminate(e.ctx, charon.Target{IKE: "ab"}); err != nil {
						t.Fatal(err)
					}
					noSAs(t, e)
				}},
			},
		},
		{
			// B demands a COOKIE (a decoy holds a half-open SA there) and prefers
			// ecp256 while A guesses x25519. (B still takes x25519 alone: the decoy
			// offers only that, and must be accepted to leave a half-open SA.)
			name: "cookie-invalid-ke", optsB: PeerOptions{CookieThreshold: 1},
			load: func(t *testing.T, e *env) {
				e.loadDefault(t, func(p Peer, c *charon.Conn) {
					c.Proposals = []string{"aes256gcm16-prfsha256-ecp256", "aes256gcm16-prfsha256-x25519"}
					if p == e.A {
						c.Proposals = []string{"aes256gcm16-prfsha256-x25519-ecp256"}
					}
				})
				e.sendDecoyInit(t)
			},
			steps: []corpusStep{
				{"init-auth", 8, func(t *testing.T, e *env) { e.establish(t) }},
			},
		},
		{
			name:  "fragments",
			optsA: PeerOptions{FragmentSize: 576}, optsB: PeerOptions{FragmentSize: 576},
			load: func(t *testing.T, e *env) {
				e.loadDefault(t, func(p Peer, c *charon.Conn) {
					c.Fragmentation = "yes"
					c.Children[0].LocalTS = manyTS(p.NS().Inner)
					c.Children[0].RemoteTS = manyTS(e.other(p).NS().Inner)
				})
			},
			steps: []corpusStep{
				{"init-auth", 6, func(t *testing.T, e *env) { e.establish(t) }},
			},
		},
		{
			name: "no-proposal",
			load: func(t *testing.T, e *env) {
				e.loadDefault(t, func(p Peer, c *charon.Conn) {
					if p == e.A {
						c.Proposals = []string{"aes128-sha256-modp2048"}
					}
				})
			},
			steps: []corpusStep{
				{"init", 2, func(t *testing.T, e *env) {
					if err := e.A.Initiate(e.ctx, "ab", "net"); err == nil {
						t.Fatal("initiate succeeded without a common proposal")
					}
				}},
			},
		},
	}
}

func (e *env) mustOne(t *testing.T, p Peer) charon.IKESA {
	t.Helper()
	sas, err := p.ListSAs(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := onlyEstablished("ab", sas)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runCorpusSeq runs one sequence with A initiating and returns the labelled IKE
// messages between the peers' IKE ports (a decoy's are left out), retransmissions
// dropped, and the SPIs of every IKE SA A held, by charon's unique ID.
func runCorpusSeq(t *testing.T, sq corpusSeq) ([]corpusMsg, *env, map[uint32]charon.IKESA) {
	e := newEnv(t, NewCharonPeer, NewCharonPeer, sq.optsA, sq.optsB, aInitiates)
	sq.load(t, e)
	seen := 0 // messages already labelled (after filtering)
	var out []corpusMsg
	ikeSAs := map[uint32]charon.IKESA{}
	for _, st := range sq.steps {
		st.do(t, e)
		if sas, err := e.A.ListSAs(e.ctx); err == nil {
			for _, s := range sas {
				ikeSAs[s.UniqueID] = s
			}
		}
		var msgs []pcap.Packet
		ctx, cancel := context.WithTimeout(e.ctx, Settle)
		for {
			ps, err := e.cap.Packets()
			if err != nil {
				t.Fatal(err)
			}
			msgs = peerMessages(pcap.IKEMessages(ps))
			if len(msgs) >= seen+st.msgs || ctx.Err() != nil {
				break
			}
			e.waitIKE(t, len(pcap.IKEMessages(ps))+1)
		}
		cancel()
		if len(msgs) != seen+st.msgs {
			t.Fatalf("%s/%s: %d new IKE messages, want %d:\n%s", sq.name, st.name, len(msgs)-seen, st.msgs, FormatPackets(msgs[seen:]))
		}
		for _, m := range msgs[seen:] {
			out = append(out, corpusMsg{seq: sq.name, step: st.name, Packet: m, fromA: e.from(m) == e.A})
		}
		seen = len(msgs)
	}
	return out, e, ikeSAs
}

// peerMessages keeps messages between IKE ports on both sides and drops
// retransmissions (byte-identical to an earlier message).
func peerMessages(ms []pcap.Packet) []pcap.Packet {
	var out []pcap.Packet
	for _, m := range ms {
		ports := []uint16{m.Src.Port(), m.Dst.Port()}
		if slices.ContainsFunc(ports, func(p uint16) bool { return p != pcap.PortIKE && p != pcap.PortNATT }) {
			continue
		}
		if slices.ContainsFunc(out, func(o pcap.Packet) bool { return bytes.Equal(o.IKE, m.IKE) }) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func TestCharonCorpus(t *testing.T) {
	var lines []string
	type result struct {
		msgs   []corpusMsg
		keys   string
		seqDir string
	}
	var results []result
	for _, sq := range corpusSeqs() {
		t.Run(sq.name, func(t *testing.T) {
			msgs, e, ikeSAs := runCorpusSeq(t, sq)
			for i, m := range msgs {
				lines = append(lines, m.manifestLine(i+1))
			}
			keys := ""
			if sq.optsA.LogKeys {
				keys = keyReport(t, e.A.(*CharonPeer), ikeSAs)
				checkCorpusKeys(t, msgs, e.A.(*CharonPeer))
			}
			results = append(results, result{msgs, keys, filepath.Join(corpusDir, sq.name)})
		})
	}
	if t.Failed() {
		return
	}
	manifest := strings.Join(lines, "\n") + "\n"
	path := filepath.Join(corpusDir, "MANIFEST.txt")
	if *updateCorpus {
		for _, r := range results {
			if err := os.RemoveAll(r.seqDir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(r.seqDir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, m := range r.msgs {
				if err := os.WriteFile(filepath.Join(r.seqDir, m.file(i+1)), m.IKE, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if r.keys != "" {
				if err := os.WriteFile(filepath.Join(r.seqDir, "keys.txt"), []byte(r.keys), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-corpus to create it)", err)
	}
	if string(want) != manifest {
		t.Errorf("charon's exchanges differ from %s (rerun with -update-corpus if charon changed on purpose):\n--- want\n%s--- got\n%s", path, want, manifest)
	}
	// The stored files are the ones the manifest names, and decode to it.
	for _, l := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		f := strings.Fields(l)[0]
		b, err := os.ReadFile(filepath.Join(corpusDir, f))
		if err != nil {
			t.Errorf("manifest names %s: %v", f, err)
			continue
		}
		h, ok := pcap.ParseIKEHeader(b)
		if !ok || int(h.Length) != len(b) || !strings.Contains(l, " "+h.Exchange.String()+" ") {
			t.Errorf("%s: header %v does not match its manifest line %q", f, h, l)
		}
	}
}

// keyReport renders the keys charon A logged: per IKE SA its SPIs and SK_*, per
// Child SA its SPIs (as A sees them) and the keys charon labels by the exchange
// initiator's direction.
func keyReport(t *testing.T, a *CharonPeer, ikeSAs map[uint32]charon.IKESA) string {
	t.Helper()
	log := a.Log()
	dumps := charon.ParseHexDumps(log)
	var b strings.Builder
	b.WriteString("# Keys charon A (initiator of IKE SA 1) logged at level 4, hex. AEAD keys are\n")
	b.WriteString("# key || 4-byte salt; empty SK_a* means an AEAD suite. spi_i/spi_r are the IKE\n")
	b.WriteString("# SA's SPIs; a child's spi_in is the SPI A chose. encr_i/encr_r protect traffic\n")
	b.WriteString("# from the initiator/responder of the exchange that made the Child SA.\n")
	ids := make([]uint32, 0, len(ikeSAs))
	for id := range ikeSAs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	first := func(ctx, name string) string {
		if k := charon.KeysOf(dumps, ctx, name); len(k) > 0 {
			return hex.EncodeToString(k[0])
		}
		return ""
	}
	for _, id := range ids {
		s := ikeSAs[id]
		ctx := fmt.Sprintf("ab|%d", id)
		fmt.Fprintf(&b, "ike %s spi_i=%016x spi_r=%016x initiator=%v", ctx, s.SPIi, s.SPIr, s.Initiator)
		for _, k := range []string{"Sk_d", "Sk_ai", "Sk_ar", "Sk_ei", "Sk_er", "Sk_pi", "Sk_pr"} {
			fmt.Fprintf(&b, " %s=%s", strings.ToLower(k), first(ctx, k+" secret"))
		}
		b.WriteString("\n")
		if first(ctx, "Sk_ei secret") == "" {
			t.Errorf("no Sk_ei for IKE SA %s in charon A's log", ctx)
		}
	}
	for _, c := range charon.ParseChildKeys(log) {
		fmt.Fprintf(&b, "child %s %s{%d} spi_in=%08x spi_out=%08x encr_i=%x encr_r=%x integ_i=%x integ_r=%x\n",
			c.Context, c.Name, c.UniqueID, c.SPIIn, c.SPIOut, c.EncrI, c.EncrR, c.IntegI, c.IntegR)
	}
	return b.String()
}

// checkCorpusKeys proves the logged keys are the ones on the wire: the first
// IKE_AUTH request and response decrypt with SK_ei and SK_er of IKE SA 1.
func checkCorpusKeys(t *testing.T, msgs []corpusMsg, a *CharonPeer) {
	t.Helper()
	dumps := charon.ParseHexDumps(a.Log())
	ei, er := charon.KeysOf(dumps, "ab|1", "Sk_ei secret"), charon.KeysOf(dumps, "ab|1", "Sk_er secret")
	if len(ei) != 1 || len(er) != 1 {
		t.Fatalf("SK_ei/SK_er of ab|1: %d/%d in charon A's log", len(ei), len(er))
	}
	var checked int
	for _, m := range msgs {
		if m.Header.Exchange != pcap.IKEAuth {
			continue
		}
		key := ei[0]
		if m.Header.Response() {
			key = er[0]
		}
		inner, err := OpenSKAESGCM(key, m.IKE)
		if err != nil {
			t.Errorf("%s: %v", m.file(0), err)
			continue
		}
		if len(inner) < 4 {
			t.Errorf("%s: %d bytes inside SK", m.file(0), len(inner))
		}
		checked++
	}
	if checked != 2 {
		t.Errorf("decrypted %d IKE_AUTH messages, want 2", checked)
	}
}
