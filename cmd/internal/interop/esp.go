package interop

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
)

// ESP with AES-GCM (RFC 4303, RFC 4106): SPI, sequence number, 8-byte IV, then
// ciphertext and a 16-byte ICV; the AAD is SPI || sequence number (no ESN), the
// nonce salt || IV, the key AES key || 4-byte salt (RFC 4106 §8.1).
const (
	espHeaderLen = 8
	espIVLen     = 8
	gcmICVLen    = 16
	gcmSaltLen   = 4
)

// OpenESPAESGCM decrypts one ESP packet protected with AES-GCM-16 under key (AES
// key || salt) and returns the inner packet (the payload without ESP padding) and
// the Next Header (4 = IPv4 in tunnel mode). It fails if the ICV does not verify.
func OpenESPAESGCM(key, pkt []byte) ([]byte, byte, error) {
	if len(key) != 16+gcmSaltLen && len(key) != 24+gcmSaltLen && len(key) != 32+gcmSaltLen {
		return nil, 0, fmt.Errorf("esp: AES-GCM key of %d bytes, want 20, 28 or 36 (key || salt)", len(key))
	}
	if len(pkt) < espHeaderLen+espIVLen+gcmICVLen+2 {
		return nil, 0, fmt.Errorf("esp: packet of %d bytes too short", len(pkt))
	}
	block, err := aes.NewCipher(key[:len(key)-gcmSaltLen])
	if err != nil {
		return nil, 0, fmt.Errorf("esp: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, 0, fmt.Errorf("esp: %w", err)
	}
	nonce := append(append([]byte(nil), key[len(key)-gcmSaltLen:]...), pkt[espHeaderLen:espHeaderLen+espIVLen]...)
	plain, err := gcm.Open(nil, nonce, pkt[espHeaderLen+espIVLen:], pkt[:espHeaderLen])
	if err != nil {
		return nil, 0, fmt.Errorf("esp: SPI %08x seq %d: %w", binary.BigEndian.Uint32(pkt), binary.BigEndian.Uint32(pkt[4:]), err)
	}
	// Trailer: padding, Pad Length, Next Header (RFC 4303 §2.4-2.6).
	nextHeader, padLen := plain[len(plain)-1], int(plain[len(plain)-2])
	if padLen+2 > len(plain) {
		return nil, 0, errors.New("esp: pad length beyond the payload")
	}
	return plain[:len(plain)-2-padLen], nextHeader, nil
}

// OpenSKAESGCM decrypts the Encrypted payload (RFC 7296 §3.14, AES-GCM per RFC
// 5282) of an IKE message whose first payload is SK, with skE (SK_ei or SK_er:
// AES key || 4-byte salt). The AAD is the IKE header and the SK payload's generic
// header. It returns the decrypted inner payloads with padding removed.
func OpenSKAESGCM(skE, msg []byte) ([]byte, error) {
	const ikeHdr, genHdr = 28, 4
	if len(msg) < ikeHdr+genHdr || msg[16] != 46 {
		return nil, fmt.Errorf("sk: not an IKE message starting with an SK payload")
	}
	plen := int(binary.BigEndian.Uint16(msg[ikeHdr+2:]))
	if plen < genHdr+espIVLen+gcmICVLen+1 || ikeHdr+plen > len(msg) {
		return nil, fmt.Errorf("sk: SK payload length %d in a %d-byte message", plen, len(msg))
	}
	if len(skE) <= gcmSaltLen {
		return nil, fmt.Errorf("sk: key of %d bytes", len(skE))
	}
	block, err := aes.NewCipher(skE[:len(skE)-gcmSaltLen])
	if err != nil {
		return nil, fmt.Errorf("sk: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sk: %w", err)
	}
	iv := msg[ikeHdr+genHdr : ikeHdr+genHdr+espIVLen]
	nonce := append(append([]byte(nil), skE[len(skE)-gcmSaltLen:]...), iv...)
	plain, err := gcm.Open(nil, nonce, msg[ikeHdr+genHdr+espIVLen:ikeHdr+plen], msg[:ikeHdr+genHdr])
	if err != nil {
		return nil, fmt.Errorf("sk: %w", err)
	}
	padLen := int(plain[len(plain)-1])
	if padLen+1 > len(plain) {
		return nil, errors.New("sk: pad length beyond the payload")
	}
	return plain[:len(plain)-1-padLen], nil
}
