package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// toyCipher is a test-only SKCipher: a SHA-256 counter-mode keystream and a truncated
// HMAC-SHA-256 over the message prefix, IV and ciphertext. It is deterministic and has
// configurable IV, ICV and block sizes, so the framing code (padding, offsets, lengths)
// is exercised as a block cipher and as an AEAD would exercise it.
type toyCipher struct {
	key                   []byte
	iv, icv, block        int
	sealed, opened, fails int
}

var errToyICV = errors.New("toy: ICV mismatch")

func newToy(iv, icv, block int) *toyCipher {
	return &toyCipher{key: []byte("toy key for wire tests"), iv: iv, icv: icv, block: block}
}

func (c *toyCipher) IVSize() int    { return c.iv }
func (c *toyCipher) ICVSize() int   { return c.icv }
func (c *toyCipher) BlockSize() int { return c.block }

func (c *toyCipher) xor(dst, src, iv []byte) {
	var ctr [8]byte
	for i := 0; i < len(src); i += sha256.Size {
		binary.BigEndian.PutUint64(ctr[:], uint64(i/sha256.Size))
		h := sha256.New()
		h.Write(c.key)
		h.Write(iv)
		h.Write(ctr[:])
		ks := h.Sum(nil)
		for j := 0; j < sha256.Size && i+j < len(src); j++ {
			dst[i+j] = src[i+j] ^ ks[j]
		}
	}
}

func (c *toyCipher) mac(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)[:c.icv]
}

func (c *toyCipher) Seal(msg, iv, plaintext []byte) []byte {
	if len(plaintext)%c.block != 0 {
		panic("toy: plaintext not a multiple of the block size")
	}
	c.sealed++
	start := len(msg)
	msg = append(msg, iv...)
	ct := len(msg)
	msg = append(msg, plaintext...)
	c.xor(msg[ct:], msg[ct:], iv)
	_ = start
	return append(msg, c.mac(msg)...)
}

func (c *toyCipher) Open(dst, msg []byte, body int) ([]byte, error) {
	if body < 0 || body > len(msg) || len(msg)-body < c.iv+c.icv {
		return dst, errors.New("toy: short body")
	}
	c.opened++
	end := len(msg) - c.icv
	if !hmac.Equal(c.mac(msg[:end]), msg[end:]) {
		c.fails++
		return dst, errToyICV
	}
	ct := msg[body+c.iv : end]
	if len(ct)%c.block != 0 {
		return dst, errors.New("toy: ciphertext not a multiple of the block size")
	}
	n := len(dst)
	dst = append(dst, ct...)
	c.xor(dst[n:], ct, msg[body:body+c.iv])
	return dst, nil
}

var _ SKCipher = (*toyCipher)(nil)
