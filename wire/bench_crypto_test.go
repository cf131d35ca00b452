package wire_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// BenchmarkOpenIKEAuthAESGCM and BenchmarkSealIKEAuthAESGCM: strongSwan's IKE_AUTH request
// (S1 frame 3, aes256gcm16) decoded, opened with the logged SK_ei and decoded inside;
// and the same inner chain sealed again. wire's framing plus the real AEAD.

func benchAuthFrame(b *testing.B) (msg []byte, c wire.SKCipher) {
	b.Helper()
	raw, err := os.ReadFile("testdata/strongswan/S1-x25519-gcm/vectors.json")
	if err != nil {
		b.Fatalf("benchmark input: %v", err)
	}
	var v struct {
		Frames []struct {
			Frame      int    `json:"frame"`
			IKEMessage string `json:"ike_message"`
		} `json:"frames"`
		IKESAs []struct {
			SKei string `json:"SK_ei"`
		} `json:"ike_sas"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		b.Fatal(err)
	}
	var resp []byte
	for _, f := range v.Frames {
		switch f.Frame {
		case 2:
			resp, _ = hex.DecodeString(f.IKEMessage)
		case 3:
			msg, _ = hex.DecodeString(f.IKEMessage)
		}
	}
	m, err := wire.DecodeMessage(resp)
	if err != nil {
		b.Fatal(err)
	}
	sa, _ := wire.First[*wire.SAPayload](m.Payloads)
	suite, err := ikecrypto.IKESuiteFromProposal(sa.Proposals[0])
	if err != nil {
		b.Fatal(err)
	}
	key, _ := hex.DecodeString(v.IKESAs[0].SKei)
	if c, err = ikecrypto.NewSKCipher(suite, key, nil); err != nil {
		b.Fatal(err)
	}
	return msg, c
}

func BenchmarkOpenIKEAuthAESGCM(b *testing.B) {
	msg, c := benchAuthFrame(b)
	var m wire.Message
	plain := make([]byte, 0, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Decode(msg); err != nil {
			b.Fatal(err)
		}
		var err error
		if plain, err = m.Open(plain[:0], c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealIKEAuthAESGCM(b *testing.B) {
	msg, c := benchAuthFrame(b)
	m, err := wire.DecodeMessage(msg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Open(nil, c); err != nil {
		b.Fatal(err)
	}
	iv := make([]byte, c.IVSize())
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = wire.AppendProtected(buf[:0], m.Header, m.Inner, c, iv); err != nil {
			b.Fatal(err)
		}
	}
}
