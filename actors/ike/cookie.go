package ike

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Cookies makes and checks stateless COOKIEs (RFC 7296 §2.6):
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// with Hash = HMAC-SHA-256 keyed by the secret, truncated to 16 octets, and a one-octet
// version. The caller owns the secrets and their rotation (e.g. a new random secret
// every few minutes via Rotate); a cookie made with the previous secret stays valid
// until the next rotation, so an initiator that got a cookie just before a rotation is
// not turned away. Not safe for concurrent use (the manager owns it).
type Cookies struct {
	cur, prev       []byte
	curVer, prevVer uint8
	hasPrev         bool
}

// cookieMACLen is the length of the truncated HMAC in a cookie.
const cookieMACLen = 16

// NewCookies starts with secret (at least 16 random octets).
func NewCookies(secret []byte) *Cookies {
	return &Cookies{cur: append([]byte(nil), secret...)}
}

// Rotate makes secret the current one; the previous current secret stays acceptable.
func (c *Cookies) Rotate(secret []byte) {
	c.prev, c.prevVer, c.hasPrev = c.cur, c.curVer, true
	c.cur, c.curVer = append([]byte(nil), secret...), c.curVer+1
}

func cookieMAC(secret []byte, ver uint8, ni []byte, ip netip.Addr, spiI SPI) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(ni)
	a := ip.Unmap().As16()
	m.Write(a[:])
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(spiI))
	m.Write(s[:])
	out := make([]byte, 1, 1+sha256.Size)
	out[0] = ver
	return m.Sum(out)[:1+cookieMACLen]
}

// Make returns the cookie for an initiator with nonce ni, address ip and SPI spiI.
func (c *Cookies) Make(ni []byte, ip netip.Addr, spiI SPI) []byte {
	return cookieMAC(c.cur, c.curVer, ni, ip, spiI)
}

// Verify reports whether cookie was made by Make for these values with the current or
// the previous secret. The comparison is constant-time.
func (c *Cookies) Verify(cookie, ni []byte, ip netip.Addr, spiI SPI) bool {
	if len(cookie) != 1+cookieMACLen {
		return false
	}
	switch {
	case cookie[0] == c.curVer:
		return hmac.Equal(cookie, cookieMAC(c.cur, c.curVer, ni, ip, spiI))
	case c.hasPrev && cookie[0] == c.prevVer:
		return hmac.Equal(cookie, cookieMAC(c.prev, c.prevVer, ni, ip, spiI))
	}
	return false
}

// CookieVerdict is the result of Cookies.Check.
type CookieVerdict uint8

const (
	// CookieValid: the request carries a valid cookie; go on (NewResponder).
	CookieValid CookieVerdict = iota + 1
	// CookieMissing: no cookie; send the returned challenge and forget the request.
	CookieMissing
	// CookieInvalid: a wrong or stale cookie; send the returned challenge (a fresh
	// cookie, as the initiator may hold one from before a rotation) and count it.
	CookieInvalid
)

func (v CookieVerdict) String() string {
	switch v {
	case CookieValid:
		return "valid"
	case CookieMissing:
		return "missing"
	case CookieInvalid:
		return "invalid"
	}
	return fmt.Sprintf("CookieVerdict(%d)", uint8(v))
}

// Check looks at an IKE_SA_INIT request (classified PeekNewSA) from remote when the
// manager demands cookies. For CookieMissing and CookieInvalid it returns the response
// to send back (RFC 7296 §2.6: the IKE_SA_INIT response carrying only N(COOKIE)). It
// keeps no state. An error means the request is malformed (drop it).
func (c *Cookies) Check(req []byte, remote netip.Addr) (CookieVerdict, []byte, error) {
	p, err := Peek(req)
	if err != nil {
		return 0, nil, err
	}
	if p.Kind != PeekNewSA {
		return 0, nil, fmt.Errorf("cookie check: not an IKE_SA_INIT request: %w", ErrNotIKE)
	}
	ni, cookie, err := scanInitRequest(req)
	if err != nil {
		return 0, nil, err
	}
	if cookie != nil && c.Verify(cookie, ni, remote, p.SPIi) {
		return CookieValid, nil, nil
	}
	resp := appendCookieResponse(nil, p.SPIi, c.Make(ni, remote, p.SPIi))
	if cookie != nil {
		return CookieInvalid, resp, nil
	}
	return CookieMissing, resp, nil
}

// scanInitRequest walks the unencrypted payload chain of an IKE_SA_INIT request and
// returns the Nonce data and the COOKIE notify data (nil when absent). It only checks
// what it needs: lengths and bounds.
func scanInitRequest(msg []byte) (ni, cookie []byte, err error) {
	next := msg[16]
	off := headerLen
	for next != 0 {
		if off+4 > len(msg) {
			return nil, nil, fmt.Errorf("cookie check: payload %d header at %d past the end: %w", next, off, ErrNotIKE)
		}
		plen := int(binary.BigEndian.Uint16(msg[off+2 : off+4]))
		if plen < 4 || off+plen > len(msg) {
			return nil, nil, fmt.Errorf("cookie check: payload %d at %d has length %d: %w", next, off, plen, ErrNotIKE)
		}
		body := msg[off+4 : off+plen]
		switch next {
		case payloadNonce:
			ni = body
		case payloadNotify:
			if len(body) >= 4 && binary.BigEndian.Uint16(body[2:4]) == notifyCookie {
				spiSize := int(body[1])
				if 4+spiSize > len(body) {
					return nil, nil, fmt.Errorf("cookie check: notify at %d: SPI size %d: %w", off, spiSize, ErrNotIKE)
				}
				cookie = body[4+spiSize:]
			}
		}
		next = msg[off]
		off += plen
	}
	if len(ni) < 16 {
		return nil, nil, fmt.Errorf("cookie check: nonce of %d octets: %w", len(ni), ErrNotIKE)
	}
	return ni, cookie, nil
}

// appendCookieResponse appends an IKE_SA_INIT response carrying only N(COOKIE).
func appendCookieResponse(dst []byte, spiI SPI, cookie []byte) []byte {
	total := headerLen + 8 + len(cookie)
	dst = binary.BigEndian.AppendUint64(dst, uint64(spiI))
	dst = binary.BigEndian.AppendUint64(dst, 0)
	dst = append(dst, payloadNotify, majorVersion<<4, exchangeIKESAInit, flagResponse)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	dst = append(dst, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(8+len(cookie)))
	dst = append(dst, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, notifyCookie)
	return append(dst, cookie...)
}
