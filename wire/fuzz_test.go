package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fuzz targets. Each asserts that malformed input never panics, that every error is a
// *DecodeError, and that decode → encode → decode is stable. Run them with
// `go test -fuzz=FuzzX ./wire/`; corpus entries that found bugs live in testdata/fuzz.

// seedMessages are the strongSwan frames of testdata/strongswan and testdata/charon.
func seedMessages(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	files, _ := filepath.Glob("testdata/strongswan/*/vectors.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var v struct {
			Frames []struct {
				IKEMessage string `json:"ike_message"`
				Decrypted  string `json:"decrypted_payloads"`
			} `json:"frames"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			f.Fatal(err)
		}
		for _, fr := range v.Frames {
			if m, err := hex.DecodeString(fr.IKEMessage); err == nil && len(m) > 0 {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		f.Fatal("no strongSwan frames found under testdata/strongswan for the fuzz seeds")
	}
	// The messages charon sent in the interop runs (testdata/charon, see its README).
	for _, cm := range loadCharonCorpus(f) {
		m, err := os.ReadFile(cm.path)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func sampleInner() []Payload {
	return []Payload{
		&IDPayload{ID: IdentityFromAddr(netip.MustParseAddr("192.0.2.1"))},
		NewNotify(NotifyInitialContact, nil),
		&AuthPayload{Method: AuthPSK, Data: bytes.Repeat([]byte{0xaa}, 32)},
		&SAPayload{Proposals: []Proposal{{Num: 1, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256}, {Type: TransformESN, ID: ESNNo}}}}},
		&TSPayload{Selectors: []TrafficSelector{TSFromPrefix(netip.MustParsePrefix("198.51.100.0/24")), TSFromPrefix(netip.MustParsePrefix("2001:db8::/32"))}},
		&TSPayload{Responder: true, Selectors: []TrafficSelector{TSFromPrefix(netip.MustParsePrefix("203.0.113.1/32"))}},
		&CPPayload{CFGType: CPRequest, Attributes: []CPAttribute{{Type: CPInternalIP4Address}, {Type: CPInternalIP4DNS}}},
		NewDeleteChild(ProtoESP, 0x11223344),
		&EAPPayload{Data: []byte{2, 1, 0, 5, 1}},
		&UnknownPayload{PayloadType: 99, Body: []byte{1}},
	}
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v is a %T, not a *DecodeError", err, err)
	}
	if de.Err == nil || de.Error() == "" {
		t.Fatalf("DecodeError without a cause: %#v", de)
	}
	if _, ok := answerNames[de.Answer]; !ok {
		t.Fatalf("answer %d out of range", de.Answer)
	}
}

// exercise calls the printing and helper methods that look at decoded values.
func exercise(ps []Payload) {
	for _, p := range ps {
		_ = p.Type().String()
		switch q := p.(type) {
		case *SAPayload:
			for _, pr := range q.Proposals {
				for _, tr := range pr.Transforms {
					_ = tr.String()
				}
			}
		case *IDPayload:
			_ = q.ID.String()
			q.ID.Addr()
		case *TSPayload:
			for _, ts := range q.Selectors {
				_ = ts.String()
				ts.Prefix()
			}
		case *NotifyPayload:
			_ = q.NotifyType.String()
			q.ChildSPI()
		case *DeletePayload:
			q.ChildSPIs(nil)
			for i := range q.Count() {
				q.SPI(i)
			}
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range seedMessages(f) {
		f.Add(m)
	}
	plain, _ := (&Message{Header: Header{Exchange: ExchangeIKESAInit}, Payloads: sampleInner()}).AppendTo(nil)
	f.Add(plain)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		_ = m.Header.String()
		exercise(m.Payloads)
		if err := m.Verify(); err != nil {
			checkDecodeError(t, err)
		}
		b2, err := m.AppendTo(nil)
		if err != nil {
			t.Fatalf("re-encode of a decoded message: %v", err)
		}
		m2, err := DecodeMessage(b2)
		if err != nil {
			t.Fatalf("decode of re-encoded message: %v\n%x", err, b2)
		}
		h1, h2 := m.Header, m2.Header
		h1.Length, h2.Length = 0, 0
		if h1 != h2 {
			t.Fatalf("header changed: %v / %v", h1, h2)
		}
		if d := cmp.Diff(m.Payloads, m2.Payloads, cmpOpts); d != "" {
			t.Fatalf("decode → encode → decode changed the payloads:\n%s", d)
		}
		b3, _ := m2.AppendTo(nil)
		if !bytes.Equal(b2, b3) {
			t.Fatal("encoding is not stable")
		}
	})
}

func FuzzPayloadChain(f *testing.F) {
	chain, _ := AppendPayloads(nil, sampleInner())
	f.Add(uint8(PayloadIDi), chain)
	for _, m := range seedMessages(f) {
		if len(m) > HeaderLen {
			f.Add(m[16], m[HeaderLen:])
		}
	}
	f.Fuzz(func(t *testing.T, first uint8, b []byte) {
		ps, err := DecodePayloads(nil, PayloadType(first), b)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		exercise(ps)
		if err := VerifyPayloads(ps); err != nil {
			checkDecodeError(t, err)
		}
		b2, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		next := PayloadNone
		if len(ps) > 0 {
			next = ps[0].Type()
		}
		ps2, err := DecodePayloads(nil, next, b2)
		if err != nil {
			t.Fatalf("decode of re-encoded chain: %v", err)
		}
		if d := cmp.Diff(ps, ps2, cmpOpts); d != "" {
			t.Fatalf("decode → encode → decode changed the chain:\n%s", d)
		}
	})
}

// FuzzOpenSK seals fuzzed plaintexts (so that they pass integrity and reach the padding
// and inner-chain checks) and opens fuzzed raw messages (which mostly fail integrity).
func FuzzOpenSK(f *testing.F) {
	chain, _ := AppendPayloads(nil, sampleInner())
	f.Add(uint8(PayloadIDi), uint8(16), appendPadding(bytes.Clone(chain), 16), []byte(nil))
	f.Add(uint8(0), uint8(1), []byte{0}, []byte(nil))
	c0 := newToy(8, 16, 1)
	good, _ := AppendProtected(nil, Header{Exchange: ExchangeIKEAuth}, sampleInner(), c0, make([]byte, 8))
	f.Add(uint8(0), uint8(1), []byte(nil), good)
	f.Fuzz(func(t *testing.T, next, block uint8, plain, raw []byte) {
		bs := []int{1, 8, 16}[int(block)%3]
		c := newToy(8, 16, bs)
		if len(raw) > 0 {
			// A raw datagram: decode and open with the toy key.
			if m, err := DecodeMessage(raw); err == nil {
				if _, err := m.Open(nil, newToy(8, 16, 1)); err != nil {
					checkDecodeError(t, err)
				}
			}
		}
		plain = plain[:len(plain)/bs*bs]
		h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeInformational}
		b, err := seal(nil, h, PayloadSK, PayloadType(next), nil, plain, c, make([]byte, 8))
		if err != nil {
			return // too long for one SK payload
		}
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode of a sealed message: %v", err)
		}
		out, err := m.Open(nil, c)
		if err != nil {
			checkDecodeError(t, err)
			if AnswerOf(err) == AnswerDrop {
				t.Fatalf("authentic message answered drop: %v", err)
			}
			return
		}
		exercise(m.Inner)
		// Re-seal the decoded inner chain and open it again: same payloads.
		b2, err := AppendProtected(nil, h, m.Inner, c, make([]byte, 8))
		if err != nil {
			t.Fatalf("re-seal: %v", err)
		}
		m2, err := DecodeMessage(b2)
		if err == nil {
			_, err = m2.Open(nil, c)
		}
		if err != nil {
			t.Fatalf("open re-sealed: %v", err)
		}
		if d := cmp.Diff(m.Inner, m2.Inner, cmpOpts); d != "" {
			t.Fatalf("open → seal → open changed the chain:\n%s", d)
		}
		_ = out
	})
}

// FuzzReassemble feeds a Reassembler a script: the fragments of a message (sized by the
// fuzzer), in an order, with duplicates, tampered copies and authentic but re-numbered
// copies, as the script's octets say. An octet's low nibble picks the fragment; its high
// nibble the operation: 1 tamper, 2 renumber, 3 change the total, anything else add it
// as it is.
func FuzzReassemble(f *testing.F) {
	f.Add(uint16(200), uint8(8), []byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add(uint16(120), uint8(3), []byte{3, 0x13, 2, 0x22, 1, 0x41, 0, 0x80, 5})
	f.Add(uint16(1000), uint8(1), []byte{0})
	f.Fuzz(func(t *testing.T, maxSize uint16, maxFrags uint8, script []byte) {
		c := newToy(8, 16, 16)
		h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MsgID: 1}
		inner := sampleInner()
		chain, _ := AppendPayloads(nil, inner)
		frags, err := AppendFragments(h, inner, c, int(maxSize), rand.NewChaCha8([32]byte{}))
		if err != nil {
			return // no room in maxSize
		}
		msgs := make([]*Message, len(frags))
		for i, b := range frags {
			if msgs[i], err = DecodeMessage(b); err != nil {
				t.Fatal(err)
			}
		}
		r := NewReassembler(int(maxFrags), len(chain)+int(maxSize)%64)
		seen := map[int]bool{}
		forged := false
		for k, op := range script {
			i := int(op&0x0f) % len(msgs)
			m := msgs[i]
			switch op >> 4 {
			case 1: // tampered copy: must be dropped
				b := bytes.Clone(m.raw)
				b[int(op)%len(b)] ^= 0x5a
				if m, err = DecodeMessage(b); err != nil {
					continue
				}
			case 2, 3: // authentic but renumbered or retotaled copy
				f := m.Protected().(*FragmentPayload)
				num, tot := f.Number, f.Total
				if op>>4 == 2 {
					num = uint16(k)
				} else {
					tot = uint16(k) + 1
				}
				plainPiece, err := openBody(nil, m.raw, f.Body, c, PayloadSKF)
				if err != nil {
					t.Fatal(err)
				}
				b, err := seal(nil, m.Header, PayloadSKF, f.NextPayload, appendU16(appendU16(nil, num), tot), appendPadding(plainPiece, 16), c, make([]byte, 8))
				if err != nil {
					t.Fatal(err)
				}
				if m, err = DecodeMessage(b); err != nil {
					t.Fatal(err)
				}
				forged = true
			}
			done, err := r.Add(m, c)
			if err != nil {
				checkDecodeError(t, err)
			}
			got, total := r.Received()
			if got > total || total > int(maxFrags) || r.stored > r.MaxBytes {
				t.Fatalf("state out of bounds: %d of %d, %d octets (limits %d, %d)", got, total, r.stored, maxFrags, r.MaxBytes)
			}
			if genuine := op>>4 == 0 || op>>4 > 3; genuine && err == nil {
				seen[i] = true
			}
			if done && !forged {
				if len(seen) != len(msgs) {
					t.Fatalf("complete after %d of %d genuine fragments", len(seen), len(msgs))
				}
				if _, p := r.Plaintext(); !bytes.Equal(p, chain) {
					t.Fatal("reassembled plaintext differs")
				}
				if d := cmp.Diff(inner, m.Inner, cmpOpts); d != "" {
					t.Fatalf("reassembled chain differs:\n%s", d)
				}
			}
		}
		if !forged && len(seen) == len(msgs) && !r.Complete() {
			t.Fatalf("all %d fragments accepted but not complete", len(msgs))
		}
	})
}
