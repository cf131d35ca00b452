package wire

// This file fixes the shape of the SA payload (RFC 7296 §3.3) and the transform registry
// (IANA "Internet Key Exchange Version 2 (IKEv2) Parameters", Transform Type Values).
// Other packages (wire/ikecrypto, wire/proposal, actors/ike) build on these names.

// ProtocolID is the Protocol ID of a proposal or a notify/delete (RFC 7296 §3.3.1).
type ProtocolID uint8

const (
	ProtoIKE ProtocolID = 1
	ProtoAH  ProtocolID = 2
	ProtoESP ProtocolID = 3
)

// TransformType is the Transform Type of a transform substructure (RFC 7296 §3.3.2,
// RFC 9370 for the additional key exchanges).
type TransformType uint8

const (
	TransformENCR   TransformType = 1 // Encryption Algorithm
	TransformPRF    TransformType = 2 // Pseudorandom Function
	TransformINTEG  TransformType = 3 // Integrity Algorithm
	TransformKE     TransformType = 4 // Key Exchange Method (was Diffie-Hellman Group)
	TransformESN    TransformType = 5 // Extended Sequence Numbers
	TransformADDKE1 TransformType = 6 // Additional Key Exchange 1 (RFC 9370)
	TransformADDKE2 TransformType = 7
	TransformADDKE3 TransformType = 8
	TransformADDKE4 TransformType = 9
	TransformADDKE5 TransformType = 10
	TransformADDKE6 TransformType = 11
	TransformADDKE7 TransformType = 12
)

// TransformID is a Transform ID; its meaning depends on the TransformType.
type TransformID uint16

// Encryption algorithms (Transform Type 1).
const (
	EncrAESCBC           TransformID = 12 // RFC 3602, key length attribute required
	EncrAESCTR           TransformID = 13
	EncrAESGCM8          TransformID = 18 // RFC 4106/5282, 8-octet ICV
	EncrAESGCM12         TransformID = 19
	EncrAESGCM16         TransformID = 20 // 16-octet ICV
	EncrChaCha20Poly1305 TransformID = 28 // RFC 7634
)

// Pseudorandom functions (Transform Type 2).
const (
	PRFHMACSHA1     TransformID = 2
	PRFHMACSHA2_256 TransformID = 5 // RFC 4868
	PRFHMACSHA2_384 TransformID = 6
	PRFHMACSHA2_512 TransformID = 7
)

// Integrity algorithms (Transform Type 3).
const (
	IntegNone             TransformID = 0
	IntegHMACSHA1_96      TransformID = 2
	IntegHMACSHA2_256_128 TransformID = 12 // RFC 4868
	IntegHMACSHA2_384_192 TransformID = 13
	IntegHMACSHA2_512_256 TransformID = 14
)

// Key exchange methods (Transform Types 4 and 6–12).
const (
	KENone       TransformID = 0
	KEMODP2048   TransformID = 14 // RFC 3526
	KEMODP3072   TransformID = 15
	KEMODP4096   TransformID = 16
	KEECP256     TransformID = 19 // RFC 5903
	KEECP384     TransformID = 20
	KEECP521     TransformID = 21
	KECurve25519 TransformID = 31 // RFC 8031
	KEMLKEM512   TransformID = 35 // draft-ietf-ipsecme-ikev2-mlkem
	KEMLKEM768   TransformID = 36
	KEMLKEM1024  TransformID = 37
)

// Extended Sequence Numbers (Transform Type 5).
const (
	ESNNo  TransformID = 0
	ESNYes TransformID = 1
)

// AttrKeyLength is the only transform attribute defined by RFC 7296 (§3.3.5), TV format.
const AttrKeyLength uint16 = 14

// SAPayload is the Security Association payload: a list of proposals (RFC 7296 §3.3).
type SAPayload struct {
	Proposals []Proposal
}

// Proposal is one Proposal substructure (RFC 7296 §3.3.1). Num starts at 1 and
// increases by one per proposal. SPI is empty for IKE_SA_INIT, 8 octets for an IKE SA
// rekey, 4 octets for ESP/AH. On decode, SPI points into the input.
type Proposal struct {
	Num        uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is one Transform substructure (RFC 7296 §3.3.2). KeyLength is the Key
// Length attribute in bits (0 when absent).
//
// OtherAttrs holds, in their wire encoding, any attributes other than a non-zero Key
// Length (§3.3.5): unknown attribute types, a TLV-form or zero Key Length, a repeated one.
// It is empty in every transform cygnet understands; a responder must not select a
// transform with attributes it does not understand (§3.3.6), so proposal selection treats
// a non-empty OtherAttrs as unsupported. It is a string (copied on decode, which only
// happens for such odd transforms) so that Transform stays comparable with ==.
type Transform struct {
	Type       TransformType
	ID         TransformID
	KeyLength  uint16
	OtherAttrs string
}
