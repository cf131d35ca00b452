package wire

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Benchmarks on strongSwan's own messages (testdata/strongswan/S1-x25519-gcm): frame 1
// is an IKE_SA_INIT request (SA KE No N N N N N), frame 3 an IKE_AUTH request whose
// inner chain is IDi N(INITIAL_CONTACT) IDr AUTH SA TSi TSr N N N.

type benchFrames struct {
	initMsg   []byte
	authMsg   []byte
	authFirst PayloadType
	authChain []byte
}

func loadBenchFrames(b *testing.B) benchFrames {
	b.Helper()
	raw, err := os.ReadFile("testdata/strongswan/S1-x25519-gcm/vectors.json")
	if err != nil {
		b.Fatalf("benchmark input: %v", err)
	}
	var v struct {
		Frames []struct {
			Frame      int    `json:"frame"`
			IKEMessage string `json:"ike_message"`
			Decrypted  string `json:"decrypted_payloads"`
			FirstInner uint8  `json:"first_inner_payload"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		b.Fatal(err)
	}
	var f benchFrames
	for _, fr := range v.Frames {
		switch fr.Frame {
		case 1:
			f.initMsg, _ = hex.DecodeString(fr.IKEMessage)
		case 3:
			f.authMsg, _ = hex.DecodeString(fr.IKEMessage)
			f.authChain, _ = hex.DecodeString(fr.Decrypted)
			f.authFirst = PayloadType(fr.FirstInner)
		}
	}
	if len(f.initMsg) == 0 || len(f.authChain) == 0 {
		b.Fatal("frames 1 and 3 missing from the S1 vectors")
	}
	return f
}

func BenchmarkDecodeIKEAuthChain(b *testing.B) {
	f := loadBenchFrames(b)
	ps := make([]Payload, 0, 16)
	b.SetBytes(int64(len(f.authChain)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if ps, err = DecodePayloads(ps[:0], f.authFirst, f.authChain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyIKEAuthChain(b *testing.B) {
	f := loadBenchFrames(b)
	ps, err := DecodePayloads(nil, f.authFirst, f.authChain)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyPayloads(ps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIKEAuthChain(b *testing.B) {
	f := loadBenchFrames(b)
	ps, err := DecodePayloads(nil, f.authFirst, f.authChain)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(f.authChain)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendPayloads(buf[:0], ps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeIKESAInit(b *testing.B) {
	f := loadBenchFrames(b)
	var m Message
	b.SetBytes(int64(len(f.initMsg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Decode(f.initMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIKESAInit(b *testing.B) {
	f := loadBenchFrames(b)
	m, err := DecodeMessage(f.initMsg)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(f.initMsg)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = m.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProtectIKEAuth / BenchmarkOpenIKEAuth: the framing cost of a whole IKE_AUTH
// message with a trivial cipher (no encryption), so that only wire's work is measured.
// wire_test's BenchmarkOpenIKEAuthAESGCM measures it with the real suite.

type nullCipher struct{ iv, icv int }

func (c nullCipher) IVSize() int    { return c.iv }
func (c nullCipher) ICVSize() int   { return c.icv }
func (c nullCipher) BlockSize() int { return 1 }
func (c nullCipher) Seal(msg, iv, plaintext []byte) []byte {
	msg = append(append(msg, iv...), plaintext...)
	return append(msg, make([]byte, c.icv)...)
}
func (c nullCipher) Open(dst, msg []byte, body int) ([]byte, error) {
	return append(dst, msg[body+c.iv:len(msg)-c.icv]...), nil
}

func BenchmarkProtectIKEAuth(b *testing.B) {
	f := loadBenchFrames(b)
	m, err := DecodeMessage(f.authMsg)
	if err != nil {
		b.Fatal(err)
	}
	inner, err := DecodePayloads(nil, f.authFirst, f.authChain)
	if err != nil {
		b.Fatal(err)
	}
	c, iv := nullCipher{8, 16}, make([]byte, 8)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendProtected(buf[:0], m.Header, inner, c, iv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenIKEAuth(b *testing.B) {
	f := loadBenchFrames(b)
	m, err := DecodeMessage(f.authMsg)
	if err != nil {
		b.Fatal(err)
	}
	inner, _ := DecodePayloads(nil, f.authFirst, f.authChain)
	c := nullCipher{8, 16}
	msg, err := AppendProtected(nil, m.Header, inner, c, make([]byte, 8))
	if err != nil {
		b.Fatal(err)
	}
	plain := make([]byte, 0, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Decode(msg); err != nil {
			b.Fatal(err)
		}
		if plain, err = m.Open(plain[:0], c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFragmentReassemble(b *testing.B) {
	f := loadBenchFrames(b)
	inner, _ := DecodePayloads(nil, f.authFirst, f.authChain)
	inner = append(inner, &CertPayload{Encoding: CertX509Sig, Data: make([]byte, 3000)})
	c := nullCipher{8, 16}
	r := NewReassembler(16, 8192)
	ivs := zeroReader{}
	var m Message
	b.ReportAllocs()
	for b.Loop() {
		frags, err := AppendFragments(Header{Exchange: ExchangeIKEAuth, MsgID: 1}, inner, c, 1280, ivs)
		if err != nil {
			b.Fatal(err)
		}
		r.Reset()
		for _, fr := range frags {
			if err := m.Decode(fr); err != nil {
				b.Fatal(err)
			}
			if _, err := r.Add(&m, c); err != nil {
				b.Fatal(err)
			}
		}
		if !r.Complete() {
			b.Fatal("not complete")
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
