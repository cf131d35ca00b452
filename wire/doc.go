// Package wire encodes and decodes IKEv2 messages and payloads (RFC 7296 §3), protects
// them with the SK payload (§3.14) and fragments them with SKF (RFC 7383). It does no
// I/O, keeps no state beyond a Reassembler, and imports no sockets, actors or loggers;
// the cryptography behind SK sits behind the SKCipher interface (package wire/ikecrypto).
//
// # Receiving
//
//	m, err := wire.DecodeMessage(datagram)      // header + outer payload chain, syntax only
//	plain, err = m.Open(plainBuf[:0], cipher)    // SK: verify, decrypt, unpad, decode m.Inner
//	err = m.Verify()                             // meaning checks (nonce size, SPI sizes, TS ranges…)
//
// A protected message whose last payload is SKF goes to a Reassembler instead of Open;
// when its last fragment arrives, Add fills m.Inner the same way.
//
// # Sending
//
//	b, err := (&wire.Message{Header: h, Payloads: ps}).AppendTo(buf[:0])  // IKE_SA_INIT
//	b, err := wire.AppendProtected(buf[:0], h, inner, cipher, iv)         // everything else
//	frags, err := wire.AppendFragments(h, inner, cipher, maxSize, ivs)    // RFC 7383
//
// Encoders append to the caller's buffer and compute every length, count, Last
// Substruc and Next Payload field; the header's NextPayload and Length are patched at the
// end. On error the buffer is returned unchanged.
//
// # Buffers: zero-copy decoding
//
// Decoding copies nothing: every []byte in a decoded payload (nonces, KE data, SPIs,
// notify data, SK bodies, …) is a subslice of the buffer that was decoded — the datagram
// for the outer chain, the plaintext buffer passed to Open for the inner chain, the
// Reassembler's buffer for a reassembled chain. The caller owns those buffers and must
// keep them unmodified for as long as it uses the decoded values, and copy what it keeps
// longer (a nonce kept for key derivation, an SPI kept in a table). Subslices have their
// capacity clipped, so appending to one never writes into the buffer. The only copies
// are Transform.OtherAttrs and TrafficSelector.Opaque, strings filled only for odd input.
//
// # Errors: what a decode failure implies
//
// Every error from decoding, verifying, opening and reassembling is a *DecodeError whose
// Answer tells the protocol core what to do (RFC 7296 §2.21):
//
//   - AnswerDrop: discard silently and count. Short or truncated datagrams, a header
//     Length that does not match the datagram, IKEv1, anything wrong outside the SK
//     payload of a protected exchange (it is unauthenticated), an integrity failure, and
//     every fragment the Reassembler rejects.
//   - AnswerInvalidSyntax: the message is malformed. A request is answered with
//     INVALID_SYNTAX only if it passed the integrity check and the message-ID window
//     check; decode cannot know the window, so the caller applies that rule.
//   - AnswerUnsupportedCriticalPayload: an unknown payload type had the critical bit set;
//     DecodeError.PayloadType is the type to return in the notify (DecodeError.Notify
//     builds it). Non-critical unknown payloads decode to *UnknownPayload and are skipped.
//   - AnswerInvalidMajorVersion: major version above 2; the header is still returned.
//
// Syntax (lengths, counts, framing) is checked while decoding; meaning (nonce 16..256
// octets, non-empty KE data, SPI sizes per protocol, TS start <= end, …) only by Verify,
// whose failures are AnswerInvalidSyntax. Policy decisions (which proposal, which
// selectors, which TS type) are never errors here: they are the core's notifies
// (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE), never INVALID_SYNTAX.
//
// Malformed input never panics; fuzz targets in this package hold that line.
package wire
