package wire

import (
	"errors"
	"strconv"
)

// Answer says what a receiver does about a message that failed to decode or verify
// (RFC 7296 §2.21, §2.5, §3.2). It is the only part of a decode error the protocol core
// needs to branch on.
type Answer uint8

const (
	// AnswerDrop: discard the message silently and count it. Nothing in it can be
	// trusted (no integrity yet, or integrity failed, or a fragment that does not fit).
	AnswerDrop Answer = iota
	// AnswerInvalidSyntax: the message is malformed. Answer a request with an
	// INVALID_SYNTAX notify ONLY if the message passed its integrity check and the
	// message-ID window check (RFC 7296 §2.21.2, §3.10.1); otherwise drop it. For a
	// response, the exchange failed (§2.21). Decoding an outer payload chain of a
	// protected exchange never yields this answer (nothing there is authenticated); the
	// inner chain of an opened SK payload and the payloads of IKE_SA_INIT can.
	AnswerInvalidSyntax
	// AnswerUnsupportedCriticalPayload: a payload of unknown type had the critical bit
	// set (§2.5, §3.2). The request is rejected with an UNSUPPORTED_CRITICAL_PAYLOAD
	// notify whose data is the payload type (DecodeError.PayloadType), under the same
	// integrity conditions as AnswerInvalidSyntax.
	AnswerUnsupportedCriticalPayload
	// AnswerInvalidMajorVersion: the header's major version is above 2 (§2.5). A request
	// may be answered with an unprotected INVALID_MAJOR_VERSION notify carrying version 2.0.
	AnswerInvalidMajorVersion
)

var answerNames = map[Answer]string{
	AnswerDrop:                       "drop",
	AnswerInvalidSyntax:              "INVALID_SYNTAX",
	AnswerUnsupportedCriticalPayload: "UNSUPPORTED_CRITICAL_PAYLOAD",
	AnswerInvalidMajorVersion:        "INVALID_MAJOR_VERSION",
}

func (a Answer) String() string { return name(answerNames, a, "Answer") }

// Notify is the error notify type the answer implies, false for AnswerDrop.
func (a Answer) Notify() (NotifyType, bool) {
	switch a {
	case AnswerInvalidSyntax:
		return NotifyInvalidSyntax, true
	case AnswerUnsupportedCriticalPayload:
		return NotifyUnsupportedCriticalPayload, true
	case AnswerInvalidMajorVersion:
		return NotifyInvalidMajorVersion, true
	}
	return 0, false
}

// Sentinel errors. A *DecodeError wraps exactly one of them (errors.Is works through it).
var (
	ErrShort            = errors.New("truncated")                                  // fewer octets than a field or length needs
	ErrLength           = errors.New("length field does not match the data")       // a length field disagrees with its container
	ErrMajorVersion     = errors.New("unsupported major version")                  // header version is not 2.x
	ErrCriticalPayload  = errors.New("unsupported critical payload")               // unknown type with the critical bit
	ErrSubstructure     = errors.New("malformed substructure")                     // proposal/transform/attribute/selector framing
	ErrCount            = errors.New("count does not match the substructures")     // number of transforms/SPIs/selectors
	ErrTrailing         = errors.New("octets after the last payload")              // chain ended before the data did
	ErrSKPlacement      = errors.New("SK/SKF payload misplaced")                   // not last, nested, or both
	ErrIntegrity        = errors.New("integrity check failed")                     // SKCipher.Open failed
	ErrPadding          = errors.New("invalid SK padding")                         // pad length beyond the plaintext
	ErrNotProtected     = errors.New("message has no SK or SKF payload")           // Open on a plain message
	ErrInvalid          = errors.New("invalid value")                              // Verify: a meaning check failed
	ErrFragment         = errors.New("invalid fragment")                           // number/total/next payload out of range
	ErrFragmentDup      = errors.New("duplicate fragment")                         // already have this fragment number
	ErrFragmentMismatch = errors.New("fragment does not belong to this message")   // header or total inconsistent
	ErrFragmentLimit    = errors.New("fragment limits exceeded")                   // too many fragments or octets
	ErrTooLong          = errors.New("too long to encode")                         // a length or count field would overflow
	ErrCipher           = errors.New("SK cipher returned an unexpected length")    // an SKCipher broke its contract
	ErrIVSize           = errors.New("IV length does not match the cipher's size") // AppendProtected/AppendFragments
)

// DecodeError is the only error type returned by decoding, verifying, opening and
// reassembling. Answer says what to do; PayloadType is the payload being decoded (for
// AnswerUnsupportedCriticalPayload, the unsupported type to put in the notify); Offset is
// the octet offset into the buffer being decoded (the message for the header and outer
// chain, the decrypted plaintext for an inner chain) where the problem was found; Err is
// one of the sentinel errors above, possibly wrapped with more context.
type DecodeError struct {
	Answer      Answer
	PayloadType PayloadType
	Offset      int
	Err         error
}

func (e *DecodeError) Error() string {
	s := "ike: "
	if e.PayloadType != PayloadNone {
		s += e.PayloadType.String() + " payload: "
	}
	return s + e.Err.Error() + " at offset " + strconv.Itoa(e.Offset) + " (" + e.Answer.String() + ")"
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Notify builds the error notify that answers the failed request, or nil when the answer
// is to drop it. For UNSUPPORTED_CRITICAL_PAYLOAD the data is the one-octet payload type
// (RFC 7296 §3.10.1). The caller still checks the integrity/window rule of AnswerInvalidSyntax.
func (e *DecodeError) Notify() *NotifyPayload {
	t, ok := e.Answer.Notify()
	if !ok {
		return nil
	}
	n := &NotifyPayload{NotifyType: t}
	if e.Answer == AnswerUnsupportedCriticalPayload {
		n.Data = []byte{byte(e.PayloadType)}
	}
	return n
}

// AnswerOf returns the answer an error from this package implies, AnswerDrop for any
// other error (or nil).
func AnswerOf(err error) Answer {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Answer
	}
	return AnswerDrop
}

func errAt(a Answer, pt PayloadType, off int, err error) *DecodeError {
	return &DecodeError{Answer: a, PayloadType: pt, Offset: off, Err: err}
}
