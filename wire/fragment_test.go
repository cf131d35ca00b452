package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// fragmentsOf fragments inner for header h and decodes every fragment message.
func fragmentsOf(t *testing.T, h Header, inner []Payload, c SKCipher, maxSize int) []*Message {
	t.Helper()
	frags, err := AppendFragments(h, inner, c, maxSize, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*Message, len(frags))
	for i, f := range frags {
		if out[i], err = DecodeMessage(f); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// reframe re-encodes a fragment message after changing its SKF fields, re-sealing it so
// that only the changed field is wrong.
func reframe(t *testing.T, c *toyCipher, m *Message, number, total uint16, next PayloadType, h *Header) *Message {
	t.Helper()
	f := m.Protected().(*FragmentPayload)
	plain, err := openBody(nil, m.raw, f.Body, c, PayloadSKF)
	if err != nil {
		t.Fatal(err)
	}
	hdr := m.Header
	if h != nil {
		hdr = *h
	}
	b, err := seal(nil, hdr, PayloadSKF, next, appendU16(appendU16(nil, number), total), appendPadding(plain, c.block), c, make([]byte, c.iv))
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func bigInner() []Payload {
	return []Payload{
		&IDPayload{ID: IdentityFQDN("initiator.example.com")},
		&CertPayload{Encoding: CertX509Sig, Data: bytes.Repeat([]byte{0xc5}, 900)},
		&AuthPayload{Method: AuthPSK, Data: bytes.Repeat([]byte{0xa7}, 32)},
		&NoncePayload{Data: bytes.Repeat([]byte{0x11}, 32)},
	}
}

func TestFragmentSizes(t *testing.T) {
	c := newToy(16, 16, 16)
	h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MsgID: 1}
	inner := bigInner()
	chain, _ := AppendPayloads(nil, inner)
	for _, max := range []int{fragOverhead + 16 + 16 + 16, 100, 576, 1280, 1500, 70000} {
		frags := fragmentsOf(t, h, inner, c, max)
		room := min(max, 0xffff+HeaderLen) - fragOverhead - 32
		perFrag := room/16*16 - 1
		want := (len(chain) + perFrag - 1) / perFrag
		if len(frags) != want {
			t.Errorf("max %d: %d fragments, want %d", max, len(frags), want)
		}
		for i, m := range frags {
			if n := len(m.raw); n > max {
				t.Errorf("max %d: fragment %d is %d octets", max, i+1, n)
			}
			f := m.Protected().(*FragmentPayload)
			if (i == 0) != (f.NextPayload == PayloadIDi) || (i > 0 && f.NextPayload != PayloadNone) {
				t.Errorf("max %d: fragment %d next payload %v", max, i+1, f.NextPayload)
			}
		}
	}
	if _, err := AppendFragments(h, inner, c, fragOverhead+32+15, rand.NewChaCha8([32]byte{})); !errors.Is(err, ErrTooLong) {
		t.Errorf("no room for data: %v", err)
	}
	// An empty chain (an empty INFORMATIONAL) is one fragment with Next Payload 0.
	if frags := fragmentsOf(t, h, nil, c, 200); len(frags) != 1 || frags[0].Protected().(*FragmentPayload).NextPayload != PayloadNone {
		t.Errorf("empty chain: %d fragments", len(frags))
	}
	if _, err := AppendFragments(h, inner, c, 300, bytes.NewReader(make([]byte, 20))); err == nil {
		t.Error("IV source running dry was not reported")
	}
}

func TestReassemblerRejects(t *testing.T) {
	c := newToy(8, 16, 16)
	h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MsgID: 1}
	inner := bigInner()
	frags := fragmentsOf(t, h, inner, c, 300)
	n := uint16(len(frags))
	if n < 4 {
		t.Fatalf("%d fragments, want at least 4", n)
	}
	chain, _ := AppendPayloads(nil, inner)
	fresh := func() *Reassembler {
		r := NewReassembler(8, 4096)
		if done, err := r.Add(frags[1], c); done || err != nil {
			t.Fatalf("first fragment: %v %v", done, err)
		}
		return r
	}
	other := h
	other.MsgID = 2
	tampered := func(m *Message) *Message {
		b := bytes.Clone(m.raw)
		b[len(b)-1] ^= 1
		out, _ := DecodeMessage(b)
		return out
	}
	plain, _ := DecodeMessage(initMsg(t, nonce()))
	cases := []struct {
		name string
		r    func() *Reassembler
		m    *Message
		want error
	}{
		{"not a fragment", fresh, plain, ErrNotProtected},
		{"duplicate", fresh, frags[1], ErrFragmentDup},
		{"number 0", fresh, reframe(t, c, frags[0], 0, n, PayloadIDi, nil), ErrFragment},
		{"number beyond total", fresh, reframe(t, c, frags[3], n+1, n, 0, nil), ErrFragment},
		{"next payload on a later fragment", fresh, reframe(t, c, frags[2], 3, n, PayloadNonce, nil), ErrFragment},
		{"smaller total", fresh, reframe(t, c, frags[2], 3, n-1, 0, nil), ErrFragmentMismatch},
		{"other message ID", fresh, reframe(t, c, frags[2], 3, n, 0, &other), ErrFragmentMismatch},
		{"too many fragments", func() *Reassembler { return NewReassembler(int(n)-1, 4096) }, frags[0], ErrFragmentLimit},
		{"too many octets", func() *Reassembler { return NewReassembler(8, 100) }, frags[0], ErrFragmentLimit},
		{"integrity", fresh, tampered(frags[2]), ErrIntegrity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r()
			got0, _ := r.Received()
			done, err := r.Add(tc.m, c)
			if done || !errors.Is(err, tc.want) || AnswerOf(err) != AnswerDrop {
				t.Fatalf("Add: done %v err %v, want drop with %v", done, err, tc.want)
			}
			if got, _ := r.Received(); got != got0 {
				t.Fatalf("a rejected fragment was stored: %d -> %d", got0, got)
			}
			// The set still completes with the genuine fragments.
			if got0 == 0 {
				return
			}
			var last bool
			for i, m := range frags {
				if i == 1 {
					continue
				}
				if last, err = r.Add(m, c); err != nil {
					t.Fatalf("genuine fragment %d after rejection: %v", i+1, err)
				}
			}
			if _, p := r.Plaintext(); !last || !bytes.Equal(p, chain) {
				t.Fatal("message did not complete after a rejected fragment")
			}
		})
	}
	t.Run("larger total restarts", func(t *testing.T) {
		// The peer re-fragmented for a smaller MTU (RFC 7383 §2.6.2).
		r := NewReassembler(16, 4096)
		r.Add(frags[0], c)
		r.Add(frags[1], c)
		small := fragmentsOf(t, h, inner, c, 180)
		if len(small) <= len(frags) {
			t.Fatalf("%d fragments", len(small))
		}
		for i, m := range small {
			done, err := r.Add(m, c)
			if err != nil || done != (i == len(small)-1) {
				t.Fatalf("fragment %d of %d: done %v err %v", i+1, len(small), done, err)
			}
			if got, total := r.Received(); got != i+1 || total != len(small) {
				t.Fatalf("received %d of %d", got, total)
			}
		}
		// The old, smaller set is now inconsistent.
		if _, err := r.Add(frags[2], c); !errors.Is(err, ErrFragmentMismatch) && !errors.Is(err, ErrFragmentDup) {
			t.Fatalf("old fragment after restart: %v", err)
		}
	})
	t.Run("complete rejects more", func(t *testing.T) {
		r := NewReassembler(8, 4096)
		for _, m := range frags {
			r.Add(m, c)
		}
		if !r.Complete() {
			t.Fatal("not complete")
		}
		if _, err := r.Add(frags[0], c); !errors.Is(err, ErrFragmentDup) {
			t.Fatalf("after completion: %v", err)
		}
		r.Reset()
		if r.Complete() || func() int { g, _ := r.Received(); return g }() != 0 {
			t.Fatal("Reset kept state")
		}
		for i, m := range frags {
			if done, err := r.Add(m, c); err != nil || done != (i == len(frags)-1) {
				t.Fatalf("after Reset, fragment %d: %v %v", i+1, done, err)
			}
		}
	})
	t.Run("bad inner chain after reassembly", func(t *testing.T) {
		// Fragment 1 names SK as the first inner payload: not allowed inside SK.
		r := NewReassembler(8, 4096)
		r.Add(reframe(t, c, frags[0], 1, n, PayloadSK, nil), c)
		var done bool
		var err error
		for _, m := range frags[1:] {
			done, err = r.Add(m, c)
		}
		if !done || err == nil || AnswerOf(err) == AnswerDrop {
			t.Fatalf("done %v err %v, want a syntax answer", done, err)
		}
	})
}
