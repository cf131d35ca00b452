package wire

import (
	"fmt"
	"io"
)

// IKEv2 fragmentation (RFC 7383). A message too large for the path is sent as several
// messages, each with the same header (exchange, message ID, flags) and one SKF payload
// carrying a piece of the inner payload chain's encoding, each piece padded and sealed on
// its own. Fragment 1 carries the inner first payload type; the others carry 0.

// fragOverhead is the size of an SKF fragment message without IV, ciphertext and ICV:
// the IKE header, the SKF generic header, and the fragment number and total fields.
const fragOverhead = HeaderLen + 4 + 4

// MaxFragments is the largest Total Fragments value (a 16-bit field, RFC 7383 §2.5).
const MaxFragments = 0xffff

// AppendFragments splits the inner payload chain of a protected message into SKF
// fragment messages (RFC 7383 §2.5) no longer than maxSize octets each (the IKE message:
// UDP payload without the non-ESP marker, which the caller subtracts), and seals each
// with c, reading a fresh IV for each from ivs. h is the header of the message (exchange,
// flags, message ID, SPIs). The fragments are returned in order (Fragment Number 1 first),
// sharing one allocation; each has its capacity clipped.
//
// Every fragment carries the same amount of inner chain except perhaps the last. The
// caller decides whether to fragment at all (only when both peers sent
// IKEV2_FRAGMENTATION_SUPPORTED, never IKE_SA_INIT); a chain that fits yields one fragment.
func AppendFragments(h Header, inner []Payload, c SKCipher, maxSize int, ivs io.Reader) ([][]byte, error) {
	bp := plainPool.Get().(*[]byte)
	defer plainPool.Put(bp)
	chain, err := AppendPayloads((*bp)[:0], inner)
	if err != nil {
		return nil, err
	}
	*bp = chain[:0]
	next := PayloadNone
	if len(inner) > 0 {
		next = inner[0].Type()
	}
	return fragmentChain(h, next, chain, c, maxSize, ivs)
}

// fragmentChain seals chain (the encoding of an inner payload chain starting with type
// next) into fragments.
func fragmentChain(h Header, next PayloadType, chain []byte, c SKCipher, maxSize int, ivs io.Reader) ([][]byte, error) {
	bs := max(c.BlockSize(), 1)
	// The largest plaintext (chunk ‖ padding ‖ pad length) that fits: a multiple of the
	// block size. A chunk is that minus the pad length octet, with no padding needed.
	room := maxSize - fragOverhead - c.IVSize() - c.ICVSize()
	if room > 0xffff-8-c.IVSize()-c.ICVSize() {
		room = 0xffff - 8 - c.IVSize() - c.ICVSize()
	}
	chunk := room/bs*bs - 1
	if chunk < 1 {
		return nil, fmt.Errorf("fragment size %d leaves no room for data with IV %d, ICV %d, block %d: %w",
			maxSize, c.IVSize(), c.ICVSize(), bs, ErrTooLong)
	}
	n := max((len(chain)+chunk-1)/chunk, 1)
	if n > MaxFragments {
		return nil, fmt.Errorf("%d fragments: %w", n, ErrTooLong)
	}
	// One allocation for all fragments: every fragment but the last has a full chunk.
	size := func(data int) int {
		plain := data + 1
		plain += (bs - plain%bs) % bs
		return fragOverhead + c.IVSize() + plain + c.ICVSize()
	}
	last := len(chain) - (n-1)*chunk
	buf := make([]byte, 0, (n-1)*size(chunk)+size(last))
	plain := make([]byte, 0, chunk+bs)
	iv := make([]byte, c.IVSize())
	out := make([][]byte, 0, n)
	for i := range n {
		data := chain[i*chunk : min((i+1)*chunk, len(chain))]
		if _, err := io.ReadFull(ivs, iv); err != nil {
			return nil, fmt.Errorf("fragment %d IV: %w", i+1, err)
		}
		plain = appendPadding(append(plain[:0], data...), bs)
		fnext := PayloadNone
		if i == 0 {
			fnext = next
		}
		var fieldsBuf [4]byte
		fields := appendU16(appendU16(fieldsBuf[:0], uint16(i+1)), uint16(n))
		start := len(buf)
		var err error
		if buf, err = seal(buf, h, PayloadSKF, fnext, fields, plain, c, iv); err != nil {
			return nil, fmt.Errorf("fragment %d: %w", i+1, err)
		}
		out = append(out, buf[start:len(buf):len(buf)])
	}
	return out, nil
}

// Reassembler collects the fragments of one message (RFC 7383 §2.6), with bounded
// memory. The caller keeps one per message it is receiving (per message ID and
// direction), decides how long to wait, and discards it (or calls Reset) on timeout.
//
// Fragments are verified and decrypted before they are stored; a fragment that fails
// integrity changes nothing. Rejected fragments (AnswerDrop): not an SKF message, number
// 0 or beyond the total, a non-first fragment with a Next Payload, a header (SPIs,
// exchange, flags, message ID) that differs from the first stored fragment's, a total
// smaller than the stored one, a duplicate, more than MaxFragments fragments, or more
// than MaxBytes of plaintext. A larger total than before means the peer re-fragmented
// for a smaller path MTU: what was stored is dropped and reassembly starts over (§2.6.2).
// Memory held is about twice MaxBytes at most (the pieces, then the assembled chain).
// The zero value has both limits 0 and refuses every fragment: use NewReassembler.
type Reassembler struct {
	MaxFragments int // most fragments accepted for one message
	MaxBytes     int // most plaintext octets stored for one message

	started bool
	done    bool
	hdr     Header
	total   uint16
	next    PayloadType
	spans   []fragSpan // by fragment number - 1
	count   int
	stored  int
	buf     []byte // the pieces, in arrival order
	whole   []byte // the assembled inner chain
}

type fragSpan struct {
	off, n int
	ok     bool
}

// NewReassembler returns a Reassembler with the given limits.
func NewReassembler(maxFragments, maxBytes int) *Reassembler {
	return &Reassembler{MaxFragments: maxFragments, MaxBytes: maxBytes}
}

// Reset forgets all fragments, keeping the buffers for reuse.
func (r *Reassembler) Reset() {
	r.started, r.done, r.hdr, r.total, r.next = false, false, Header{}, 0, PayloadNone
	r.spans, r.count, r.stored = r.spans[:0], 0, 0
	r.buf, r.whole = r.buf[:0], r.whole[:0]
}

// Received reports how many distinct fragments are stored and the total expected (0
// before the first).
func (r *Reassembler) Received() (got, total int) { return r.count, int(r.total) }

// Complete reports whether every fragment has arrived.
func (r *Reassembler) Complete() bool { return r.done }

// Plaintext returns the reassembled inner chain and its first payload type, once Complete.
// It stays valid until Reset.
func (r *Reassembler) Plaintext() (PayloadType, []byte) {
	if !r.done {
		return PayloadNone, nil
	}
	return r.next, r.whole
}

// Add verifies, decrypts and stores the fragment in m (a decoded message whose last
// payload is SKF). It returns true when this fragment completed the message; it then
// also decodes the reassembled inner chain into m.Inner (pointing into the Reassembler's
// buffer, valid until Reset), and a decode error there answers AnswerInvalidSyntax or
// AnswerUnsupportedCriticalPayload like Message.Open. Every other error is AnswerDrop,
// except a bad pad length in a fragment that passed integrity (AnswerInvalidSyntax).
func (r *Reassembler) Add(m *Message, c SKCipher) (bool, error) {
	drop := func(off int, err error) (bool, error) { return false, errAt(AnswerDrop, PayloadSKF, off, err) }
	f, ok := m.Protected().(*FragmentPayload)
	if !ok || m.raw == nil {
		return drop(0, ErrNotProtected)
	}
	bodyOff := len(m.raw) - len(f.Body)
	switch {
	case f.Number == 0 || f.Number > f.Total:
		return drop(bodyOff-4, fmt.Errorf("%w: number %d of %d", ErrFragment, f.Number, f.Total))
	case f.Number > 1 && f.NextPayload != PayloadNone:
		return drop(bodyOff-8, fmt.Errorf("%w: fragment %d has next payload %v", ErrFragment, f.Number, f.NextPayload))
	case int(f.Total) > r.MaxFragments:
		return drop(bodyOff-2, fmt.Errorf("%w: %d fragments, at most %d", ErrFragmentLimit, f.Total, r.MaxFragments))
	}
	if r.started {
		h, g := r.hdr, m.Header
		switch {
		case h.SPIi != g.SPIi || h.SPIr != g.SPIr || h.Exchange != g.Exchange || h.Flags != g.Flags || h.MsgID != g.MsgID:
			return drop(0, fmt.Errorf("%w: header %v, reassembling %v", ErrFragmentMismatch, g, h))
		case r.done:
			return drop(bodyOff-4, fmt.Errorf("%w: message already complete", ErrFragmentDup))
		case f.Total < r.total:
			return drop(bodyOff-2, fmt.Errorf("%w: total %d, reassembling %d", ErrFragmentMismatch, f.Total, r.total))
		case f.Total == r.total && r.spans[f.Number-1].ok:
			return drop(bodyOff-4, fmt.Errorf("%w: number %d", ErrFragmentDup, f.Number))
		}
	}
	restart := !r.started || f.Total > r.total
	stored := r.stored
	if restart {
		stored = 0
	}
	// The piece is the ciphertext minus at least the pad length octet and at most 255
	// octets of padding: refuse before decrypting what cannot fit whatever the padding.
	if least := len(f.Body) - c.IVSize() - c.ICVSize() - 256; stored+least > r.MaxBytes {
		return drop(bodyOff, fmt.Errorf("%w: %d octets stored, at least %d more, at most %d", ErrFragmentLimit, stored, least, r.MaxBytes))
	}
	// Decrypt after the stored pieces; only on success does the state change.
	out, err := openBody(r.buf, m.raw, f.Body, c, PayloadSKF)
	if err != nil {
		return false, err
	}
	piece := out[len(r.buf):]
	if stored+len(piece) > r.MaxBytes {
		return drop(bodyOff, fmt.Errorf("%w: %d octets stored, %d more, at most %d", ErrFragmentLimit, stored, len(piece), r.MaxBytes))
	}
	if restart {
		r.Reset()
		r.buf = append(r.buf[:0], piece...) // memmove: piece lies after buf's start
		r.started, r.hdr, r.total = true, m.Header, f.Total
		for range int(f.Total) {
			r.spans = append(r.spans, fragSpan{})
		}
	} else {
		r.buf = out
	}
	r.spans[f.Number-1] = fragSpan{off: len(r.buf) - len(piece), n: len(piece), ok: true}
	if f.Number == 1 {
		r.next = f.NextPayload
	}
	r.count++
	r.stored += len(piece)
	if r.count < int(r.total) {
		return false, nil
	}
	r.done = true
	r.whole = r.whole[:0]
	for _, s := range r.spans {
		r.whole = append(r.whole, r.buf[s.off:s.off+s.n]...)
	}
	m.Inner, err = decodeChain(m.Inner[:0], r.next, r.whole, 0, false)
	if err != nil {
		m.Inner = nil
	}
	return true, err
}
