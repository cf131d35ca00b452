package wire_test

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// An IKE_AUTH-style request sealed with AES-GCM-256 and opened on the other side.
func Example() {
	suite := ikecrypto.IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 256, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519}
	skEi := bytes.Repeat([]byte{0x42}, 36) // key ‖ salt
	out, err := ikecrypto.NewSKCipher(suite, skEi, nil)
	if err != nil {
		panic(err)
	}
	in, _ := ikecrypto.NewSKCipher(suite, skEi, nil)

	h := wire.Header{SPIi: 0x1122334455667788, SPIr: 0x99aabbccddeeff00, Exchange: wire.ExchangeIKEAuth, Flags: wire.FlagInitiator, MsgID: 1}
	inner := []wire.Payload{
		&wire.IDPayload{ID: wire.IdentityFromAddr(netip.MustParseAddr("192.0.2.1"))},
		&wire.AuthPayload{Method: wire.AuthPSK, Data: bytes.Repeat([]byte{0xaa}, 32)},
		&wire.TSPayload{Selectors: []wire.TrafficSelector{wire.TSFromPrefix(netip.MustParsePrefix("198.51.100.0/24"))}},
		&wire.TSPayload{Responder: true, Selectors: []wire.TrafficSelector{wire.TSFromPrefix(netip.MustParsePrefix("203.0.113.0/24"))}},
	}
	datagram, err := wire.AppendProtected(nil, h, inner, out, make([]byte, out.IVSize()))
	if err != nil {
		panic(err)
	}

	m, err := wire.DecodeMessage(datagram)
	if err != nil {
		panic(err) // wire.AnswerOf(err) says what to do
	}
	if _, err := m.Open(nil, in); err != nil {
		panic(err)
	}
	if err := m.Verify(); err != nil {
		panic(err)
	}
	fmt.Println(m.Header)
	for _, p := range m.Inner {
		switch p := p.(type) {
		case *wire.IDPayload:
			fmt.Println(p.Type(), p.ID)
		case *wire.TSPayload:
			fmt.Println(p.Type(), p.Selectors[0])
		default:
			fmt.Println(p.Type())
		}
	}
	// Output:
	// IKE_AUTH request 1 [I] 1122334455667788_i 99aabbccddeeff00_r
	// IDi 192.0.2.1
	// AUTH
	// TSi 198.51.100.0/24
	// TSr 203.0.113.0/24
}

// What a receiver does with a decode error: the answer, and the notify it implies.
func ExampleDecodeError() {
	// An IKE_SA_INIT request with an unknown payload type 99 marked critical.
	req := []byte{
		1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, // SPIi, SPIr
		99, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 32, // next 99, v2.0, IKE_SA_INIT, I, msgID 0, length 32
		0, 0x80, 0, 4, // payload 99: last, critical, length 4
	}
	_, err := wire.DecodeMessage(req)
	fmt.Println(wire.AnswerOf(err))
	if de, ok := err.(*wire.DecodeError); ok {
		n := de.Notify()
		fmt.Println(n.NotifyType, n.Data)
	}
	// Output:
	// UNSUPPORTED_CRITICAL_PAYLOAD
	// UNSUPPORTED_CRITICAL_PAYLOAD [99]
}
