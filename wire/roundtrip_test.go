package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// Round-trip properties: for every payload type, a chain of them, a plain message, a
// protected message and a fragmented one, encode → decode gives back the same values,
// Verify accepts them, and re-encoding gives the same octets.

func TestPayloadRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genPayload().Draw(t, "payload")
		if err := VerifyPayloads([]Payload{p}); err != nil {
			t.Fatalf("generated payload fails Verify: %v", err)
		}
		b, err := AppendPayloads(nil, []Payload{p})
		if err != nil {
			t.Fatalf("encode %T: %v", p, err)
		}
		if got := int(b[2])<<8 | int(b[3]); got != len(b) || b[0] != 0 {
			t.Fatalf("generic header %x for %d octets", b[:4], len(b))
		}
		got, err := DecodePayloads(nil, p.Type(), b)
		if err != nil {
			t.Fatalf("decode %T %x: %v", p, b, err)
		}
		if d := cmp.Diff([]Payload{p}, got, cmpOpts); d != "" {
			t.Fatalf("round trip (-sent +decoded):\n%s", d)
		}
		if err := VerifyPayloads(got); err != nil {
			t.Fatalf("decoded payload fails Verify: %v", err)
		}
		b2, err := AppendPayloads(nil, got)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("re-encode differs (err %v)\n%x\n%x", err, b, b2)
		}
	})
}

func TestChainRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := genChain().Draw(t, "chain")
		b, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatal(err)
		}
		first := PayloadNone
		if len(ps) > 0 {
			first = ps[0].Type()
		}
		got, err := DecodePayloads(nil, first, b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(ps) == 0 {
			ps = nil
		}
		if len(got) == 0 {
			got = nil
		}
		if d := cmp.Diff(ps, got, cmpOpts); d != "" {
			t.Fatalf("round trip (-sent +decoded):\n%s", d)
		}
	})
}

func TestMessageRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHeader().Draw(t, "header")
		h.Exchange = ExchangeIKESAInit
		m := &Message{Header: h, Payloads: genChain().Draw(t, "chain")}
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "prefix")
		b, err := m.AppendTo(bytes.Clone(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatal("AppendTo changed the caller's prefix")
		}
		b = b[len(prefix):]
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		want := h
		want.Length = uint32(len(b))
		if len(m.Payloads) > 0 {
			want.NextPayload = m.Payloads[0].Type()
		}
		if got.Header != want {
			t.Fatalf("header %+v, want %+v", got.Header, want)
		}
		if len(m.Payloads) == 0 {
			m.Payloads = nil
		}
		if len(got.Payloads) == 0 {
			got.Payloads = nil
		}
		if d := cmp.Diff(m.Payloads, got.Payloads, cmpOpts); d != "" {
			t.Fatalf("payloads (-sent +decoded):\n%s", d)
		}
		if err := got.Verify(); err != nil {
			t.Fatalf("verify: %v", err)
		}
		b2, err := got.AppendTo(nil)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("re-encode differs (err %v)", err)
		}
	})
}

func genCipher() *rapid.Generator[*toyCipher] {
	return rapid.Custom(func(t *rapid.T) *toyCipher {
		return newToy(
			rapid.SampledFrom([]int{0, 8, 16}).Draw(t, "iv"),
			rapid.SampledFrom([]int{8, 12, 16, 32}).Draw(t, "icv"),
			rapid.SampledFrom([]int{1, 8, 16}).Draw(t, "block"))
	})
}

func TestProtectedRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHeader().Draw(t, "header")
		inner := genChain().Draw(t, "inner")
		c := genCipher().Draw(t, "cipher")
		iv := rapid.SliceOfN(rapid.Byte(), c.iv, c.iv).Draw(t, "ivbytes")
		b, err := AppendProtected(nil, h, inner, c, iv)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		sk, ok := m.Protected().(*EncryptedPayload)
		if !ok || len(m.Payloads) != 1 || m.Header.NextPayload != PayloadSK {
			t.Fatalf("outer chain %v", m.Payloads)
		}
		if (len(sk.Body)-c.iv-c.icv)%c.block != 0 {
			t.Fatalf("ciphertext of %d octets for block %d", len(sk.Body)-c.iv-c.icv, c.block)
		}
		plain, err := m.Open(make([]byte, 0, 3), c)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		want := inner
		if len(want) == 0 {
			want = nil
		}
		gotInner := m.Inner
		if len(gotInner) == 0 {
			gotInner = nil
		}
		if d := cmp.Diff(want, gotInner, cmpOpts); d != "" {
			t.Fatalf("inner (-sent +opened):\n%s", d)
		}
		if err := m.Verify(); err != nil {
			t.Fatalf("verify: %v", err)
		}
		if chain, _ := AppendPayloads(nil, inner); !bytes.Equal(chain, plain) {
			t.Fatalf("plaintext is not the inner chain")
		}
		// Any single changed octet outside the version field makes the message drop.
		i := rapid.IntRange(0, len(b)-1).Draw(t, "tamper")
		if i == 17 {
			return
		}
		bad := bytes.Clone(b)
		bad[i] ^= byte(rapid.IntRange(1, 255).Draw(t, "xor"))
		m2, err := DecodeMessage(bad)
		if err == nil {
			_, err = m2.Open(nil, c)
		}
		if err == nil {
			t.Fatalf("octet %d changed, message still opens", i)
		}
		if a := AnswerOf(err); a != AnswerDrop {
			t.Fatalf("octet %d changed: answer %v (%v), want drop", i, a, err)
		}
	})
}

func TestFragmentRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHeader().Draw(t, "header")
		inner := genChain().Draw(t, "inner")
		c := genCipher().Draw(t, "cipher")
		maxSize := rapid.IntRange(fragOverhead+c.iv+c.icv+c.block+1, 1500).Draw(t, "max")
		seed := rapid.Uint64().Draw(t, "seed")
		ivs := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
		frags, err := AppendFragments(h, inner, c, maxSize, ivs)
		if err != nil {
			t.Fatalf("fragment: %v", err)
		}
		chain, _ := AppendPayloads(nil, inner)
		msgs := make([]*Message, len(frags))
		for i, f := range frags {
			if len(f) > maxSize {
				t.Fatalf("fragment %d is %d octets, max %d", i+1, len(f), maxSize)
			}
			m, err := DecodeMessage(f)
			if err != nil {
				t.Fatalf("decode fragment %d: %v", i+1, err)
			}
			fp, ok := m.Protected().(*FragmentPayload)
			if !ok || int(fp.Number) != i+1 || int(fp.Total) != len(frags) {
				t.Fatalf("fragment %d: %+v", i+1, m.Payloads)
			}
			if err := m.Verify(); err != nil {
				t.Fatalf("verify fragment %d: %v", i+1, err)
			}
			if h2 := m.Header; h2.MsgID != h.MsgID || h2.Exchange != h.Exchange || h2.Flags != h.Flags {
				t.Fatalf("fragment %d header %v", i+1, h2)
			}
			msgs[i] = m
		}
		r := NewReassembler(len(frags), len(chain))
		order := rapid.Permutation(msgs).Draw(t, "order")
		seen := map[*Message]bool{}
		for k, m := range order {
			if k > 0 && rapid.IntRange(0, 3).Draw(t, "dup") == 0 {
				d := order[rapid.IntRange(0, k-1).Draw(t, "which")]
				if done, err := r.Add(d, c); done || !errors.Is(err, ErrFragmentDup) || AnswerOf(err) != AnswerDrop {
					t.Fatalf("duplicate: done %v err %v", done, err)
				}
			}
			done, err := r.Add(m, c)
			seen[m] = true
			if err != nil {
				t.Fatalf("add fragment: %v", err)
			}
			if done != (len(seen) == len(msgs)) {
				t.Fatalf("done=%v after %d of %d", done, len(seen), len(msgs))
			}
			if done {
				want := inner
				if len(want) == 0 {
					want = nil
				}
				got := m.Inner
				if len(got) == 0 {
					got = nil
				}
				if d := cmp.Diff(want, got, cmpOpts); d != "" {
					t.Fatalf("reassembled (-sent +got):\n%s", d)
				}
				first, plain := r.Plaintext()
				if !bytes.Equal(plain, chain) || (len(inner) > 0 && first != inner[0].Type()) {
					t.Fatal("reassembled plaintext differs")
				}
			}
		}
	})
}
