//go:build linux

package xfrm

// The XFRM netlink messages cygnet sends and receives (include/uapi/linux/xfrm.h), encoded
// and decoded by hand with explicit offsets: no reflection, no unsafe casts, and a
// malformed message from the kernel is an error, never a panic. Multi-byte fields are in
// the host's byte order except SPIs and ports, which are big-endian.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian

// Message types (XFRM_MSG_*).
const (
	msgNewSA        = 0x10
	msgDelSA        = 0x11
	msgGetSA        = 0x12
	msgNewPolicy    = 0x13
	msgDelPolicy    = 0x14
	msgGetPolicy    = 0x15
	msgAllocSPI     = 0x16
	msgAcquire      = 0x17
	msgExpire       = 0x18
	msgUpdPolicy    = 0x19
	msgUpdSA        = 0x1a
	msgNewSPDInfo   = 0x24
	groupAcquire    = 1 // XFRMNLGRP_ACQUIRE
	groupExpire     = 2 // XFRMNLGRP_EXPIRE
	protoESP        = unix.IPPROTO_ESP
	xfrmInf         = ^uint64(0)
	stateFlagAFUnsp = 32  // XFRM_STATE_AF_UNSPEC
	stateFlagESN    = 128 // XFRM_STATE_ESN
	encapESPInUDP   = 2   // UDP_ENCAP_ESPINUDP
	modeTransport   = 0   // XFRM_MODE_TRANSPORT
	modeTunnel      = 1   // XFRM_MODE_TUNNEL
	policyAllow     = 0   // XFRM_POLICY_ALLOW
)

// Attribute types (XFRMA_*).
const (
	attrAlgAuth      = 1
	attrAlgCrypt     = 2
	attrEncap        = 4
	attrTmpl         = 5
	attrAlgAEAD      = 18
	attrAlgAuthTrunc = 20
	attrLastUsed     = 15
	attrMark         = 21
	attrReplayESN    = 23
	attrIfID         = 31
)

// Structure sizes and offsets (x86-64 and every other Linux ABI with 8-byte u64 alignment).
const (
	sizeAddress   = 16
	sizeSelector  = 56 // struct xfrm_selector
	sizeLftCfg    = 64 // struct xfrm_lifetime_cfg
	sizeID        = 24 // struct xfrm_id
	sizeSAInfo    = 224
	sizeSAID      = 24 // struct xfrm_usersa_id
	sizeSPIInfo   = 232
	sizePolInfo   = 168
	sizePolID     = 64
	sizeTmpl      = 64
	sizeExpire    = 232
	sizeAcquire   = 280
	sizeAlgoHdr   = 68 // name[64] + key_len
	sizeAlgoXHdr  = 72 // name[64] + key_len + trunc_len/icv_len
	sizeEncapTmpl = 24
	sizeReplayESN = 24

	// struct xfrm_usersa_info
	saSel     = 0
	saID      = 56
	saSaddr   = 80
	saLft     = 96
	saCurLft  = 160
	saReqid   = 208
	saFamily  = 212
	saMode    = 214
	saReplay  = 215
	saFlags   = 216
	polLft    = 56
	polPrio   = 152
	polIndex  = 156
	polDir    = 160
	polAction = 161
)

var errShort = errors.New("message too short")

// Encoding.

func putAddr(b []byte, a netip.Addr) {
	clear(b[:sizeAddress])
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
	} else if a.IsValid() {
		v := a.As16()
		copy(b, v[:])
	}
}

func family(a netip.Addr) uint16 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func putSelector(b []byte, s kernel.Selector) {
	clear(b[:sizeSelector])
	if s.IsZero() {
		return // AF_UNSPEC: any
	}
	putAddr(b[0:], s.Dst.Addr())
	putAddr(b[16:], s.Src.Addr())
	binary.BigEndian.PutUint16(b[32:], s.DstPort)
	binary.BigEndian.PutUint16(b[36:], s.SrcPort)
	if s.DstPort != 0 {
		binary.BigEndian.PutUint16(b[34:], 0xffff)
	}
	if s.SrcPort != 0 {
		binary.BigEndian.PutUint16(b[38:], 0xffff)
	}
	ne.PutUint16(b[40:], family(s.Src.Addr()))
	b[42] = uint8(s.Dst.Bits())
	b[43] = uint8(s.Src.Bits())
	b[44] = s.Proto
}

func putLftCfg(b []byte, l kernel.Limits) {
	inf := func(v uint64) uint64 {
		if v == 0 {
			return xfrmInf
		}
		return v
	}
	ne.PutUint64(b[0:], inf(l.Soft.Bytes))
	ne.PutUint64(b[8:], inf(l.Hard.Bytes))
	ne.PutUint64(b[16:], inf(l.Soft.Packets))
	ne.PutUint64(b[24:], inf(l.Hard.Packets))
	ne.PutUint64(b[32:], uint64(l.Soft.Time/time.Second))
	ne.PutUint64(b[40:], uint64(l.Hard.Time/time.Second))
	// use_expires (bytes 48..63) stay 0: no limits on time since first use.
}

func putInfLft(b []byte) {
	for i := range 4 {
		ne.PutUint64(b[i*8:], xfrmInf)
	}
	clear(b[32:sizeLftCfg])
}

func xfrmMode(m kernel.Mode) uint8 {
	if m == kernel.ModeTunnel {
		return modeTunnel
	}
	return modeTransport
}

// putSAInfo writes the struct xfrm_usersa_info shared by NEWSA, UPDSA and ALLOCSPI.
func putSAInfo(b []byte, src, dst netip.Addr, spi kernel.SPI, mode kernel.Mode, reqid kernel.Reqid) {
	clear(b[:sizeSAInfo])
	putAddr(b[saID:], dst)
	binary.BigEndian.PutUint32(b[saID+16:], uint32(spi))
	b[saID+20] = protoESP
	putAddr(b[saSaddr:], src)
	putInfLft(b[saLft:])
	ne.PutUint32(b[saReqid:], uint32(reqid))
	ne.PutUint16(b[saFamily:], family(dst))
	b[saMode] = xfrmMode(mode)
}

// appendAttr appends one netlink attribute (struct rtattr) padded to 4 octets.
func appendAttr(b []byte, typ uint16, data ...[]byte) []byte {
	n := unix.SizeofRtAttr
	for _, d := range data {
		n += len(d)
	}
	var hdr [unix.SizeofRtAttr]byte
	ne.PutUint16(hdr[0:], uint16(n))
	ne.PutUint16(hdr[2:], typ)
	b = append(b, hdr[:]...)
	for _, d := range data {
		b = append(b, d...)
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func algoHdr(name string, key []byte, extra int) []byte {
	size := sizeAlgoHdr
	if extra >= 0 {
		size = sizeAlgoXHdr
	}
	h := make([]byte, size)
	copy(h[:63], name)
	ne.PutUint32(h[64:], uint32(len(key)*8))
	if extra >= 0 {
		ne.PutUint32(h[68:], uint32(extra))
	}
	return h
}

// encodeSA builds the payload of XFRM_MSG_NEWSA / XFRM_MSG_UPDSA for a valid SA.
func encodeSA(sa *kernel.SA) []byte {
	b := make([]byte, sizeSAInfo, sizeSAInfo+512)
	putSAInfo(b, sa.Src, sa.Dst, sa.SPI, sa.Mode, sa.Reqid)
	putSelector(b[saSel:], sa.Selector)
	if sa.Selector.IsZero() {
		// Like strongSwan: a tunnel-mode SA without a selector carries any inner family.
		b[saFlags] |= stateFlagAFUnsp
	}
	putLftCfg(b[saLft:], sa.Limits)
	useESNAttr := sa.ESN || sa.ReplayWindow > 32
	if sa.ESN {
		b[saFlags] |= stateFlagESN
	}
	if !useESNAttr {
		b[saReplay] = uint8(sa.ReplayWindow)
	}
	if sa.Encr.AEAD() {
		b = appendAttr(b, attrAlgAEAD, algoHdr(sa.Encr.XfrmName(), sa.EncrKey, sa.Encr.ICVBits()), sa.EncrKey)
	} else {
		b = appendAttr(b, attrAlgCrypt, algoHdr(sa.Encr.XfrmName(), sa.EncrKey, -1), sa.EncrKey)
		b = appendAttr(b, attrAlgAuthTrunc, algoHdr(sa.Integ.XfrmName(), sa.IntegKey, sa.Integ.TruncBits()), sa.IntegKey)
	}
	if sa.Encap != nil {
		e := make([]byte, sizeEncapTmpl)
		ne.PutUint16(e[0:], encapESPInUDP)
		binary.BigEndian.PutUint16(e[2:], sa.Encap.SrcPort)
		binary.BigEndian.PutUint16(e[4:], sa.Encap.DstPort)
		b = appendAttr(b, attrEncap, e)
	}
	if useESNAttr {
		words := (sa.ReplayWindow + 31) / 32
		r := make([]byte, sizeReplayESN+4*int(words))
		ne.PutUint32(r[0:], words)
		ne.PutUint32(r[20:], sa.ReplayWindow)
		b = appendAttr(b, attrReplayESN, r)
	}
	return b
}

// encodeAllocSPI builds the payload of XFRM_MSG_ALLOCSPI (struct xfrm_userspi_info).
func encodeAllocSPI(req *kernel.SPIRequest, lo, hi kernel.SPI) []byte {
	b := make([]byte, sizeSPIInfo)
	putSAInfo(b, req.Src, req.Dst, 0, req.Mode, req.Reqid)
	ne.PutUint32(b[sizeSAInfo:], uint32(lo))
	ne.PutUint32(b[sizeSAInfo+4:], uint32(hi))
	return b
}

// encodeSAID builds struct xfrm_usersa_id for GETSA and DELSA.
func encodeSAID(id kernel.SAID) []byte {
	b := make([]byte, sizeSAID)
	putAddr(b, id.Dst)
	binary.BigEndian.PutUint32(b[16:], uint32(id.SPI))
	ne.PutUint16(b[20:], family(id.Dst))
	b[22] = protoESP
	return b
}

func xfrmDir(d kernel.Dir) uint8 { return uint8(d - 1) }

// encodePolicy builds the payload of XFRM_MSG_NEWPOLICY / XFRM_MSG_UPDPOLICY.
func encodePolicy(p *kernel.Policy) []byte {
	b := make([]byte, sizePolInfo, sizePolInfo+4+sizeTmpl)
	putSelector(b, p.Selector)
	putInfLft(b[polLft:])
	ne.PutUint32(b[polPrio:], p.Priority)
	b[polDir] = xfrmDir(p.Dir)
	b[polAction] = policyAllow
	t := make([]byte, sizeTmpl)
	putAddr(t[0:], p.Template.Dst)
	t[20] = protoESP
	fam := family(p.Selector.Src.Addr())
	if p.Template.Mode == kernel.ModeTunnel {
		fam = family(p.Template.Dst)
	}
	ne.PutUint16(t[24:], fam)
	putAddr(t[28:], p.Template.Src)
	ne.PutUint32(t[44:], uint32(p.Template.Reqid))
	t[48] = xfrmMode(p.Template.Mode)
	if p.Template.Optional {
		t[50] = 1
	}
	ne.PutUint32(t[52:], ^uint32(0)) // aalgos: any
	ne.PutUint32(t[56:], ^uint32(0)) // ealgos
	ne.PutUint32(t[60:], ^uint32(0)) // calgos
	return appendAttr(b, attrTmpl, t)
}

// encodePolicyID builds struct xfrm_userpolicy_id for GETPOLICY and DELPOLICY.
func encodePolicyID(id kernel.PolicyID) []byte {
	b := make([]byte, sizePolID)
	putSelector(b, id.Selector)
	b[60] = xfrmDir(id.Dir)
	return b
}

// encodeSPDInfo builds the payload of XFRM_MSG_NEWSPDINFO: a u32 of flags, then
// XFRMA_SPD_IPV4_HTHRESH and XFRMA_SPD_IPV6_HTHRESH (struct xfrmu_spdhthresh).
func encodeSPDInfo(th HashThresholds) []byte {
	const attrSPDIPv4HThresh, attrSPDIPv6HThresh = 3, 4
	b := make([]byte, 4, 20)
	b = appendAttr(b, attrSPDIPv4HThresh, []byte{th.IPv4Local, th.IPv4Remote})
	return appendAttr(b, attrSPDIPv6HThresh, []byte{th.IPv6Local, th.IPv6Remote})
}

// Decoding.

type attr struct {
	typ  uint16
	data []byte
}

// parseAttrs splits a run of netlink attributes.
func parseAttrs(b []byte) ([]attr, error) { return appendAttrs(nil, b) }

// appendAttrs is parseAttrs appending to out (a caller's array: no allocation for the
// attributes of one SA).
func appendAttrs(out []attr, b []byte) ([]attr, error) {
	for len(b) >= unix.SizeofRtAttr {
		n := int(ne.Uint16(b[0:]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return nil, fmt.Errorf("attribute length %d of %d octets left", n, len(b))
		}
		out = append(out, attr{typ: ne.Uint16(b[2:]) & 0x3fff, data: b[unix.SizeofRtAttr:n]})
		n = (n + 3) &^ 3
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return out, nil
}

func getAddr(b []byte, fam uint16) (netip.Addr, error) {
	switch fam {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case unix.AF_INET6:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("address family %d", fam)
}

func getPrefix(b []byte, fam uint16, bits uint8) (netip.Prefix, error) {
	a, err := getAddr(b, fam)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := a.Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("prefix length %d: %w", bits, err)
	}
	return p, nil
}

// getSelector decodes struct xfrm_selector; an AF_UNSPEC selector, or one that selects
// everything of its family, is the zero Selector.
func getSelector(b []byte) (kernel.Selector, error) {
	fam := ne.Uint16(b[40:])
	var s kernel.Selector
	if fam == unix.AF_UNSPEC {
		return s, nil
	}
	var err error
	if s.Dst, err = getPrefix(b[0:], fam, b[42]); err != nil {
		return s, fmt.Errorf("selector: %w", err)
	}
	if s.Src, err = getPrefix(b[16:], fam, b[43]); err != nil {
		return s, fmt.Errorf("selector: %w", err)
	}
	s.Proto = b[44]
	if binary.BigEndian.Uint16(b[34:]) != 0 {
		s.DstPort = binary.BigEndian.Uint16(b[32:])
	}
	if binary.BigEndian.Uint16(b[38:]) != 0 {
		s.SrcPort = binary.BigEndian.Uint16(b[36:])
	}
	return s, nil
}

func anySelector(s kernel.Selector) bool {
	return s.Src.Bits() == 0 && s.Dst.Bits() == 0 && s.Src.Addr().IsUnspecified() &&
		s.Dst.Addr().IsUnspecified() && s.Proto == 0 && s.SrcPort == 0 && s.DstPort == 0
}

func getLimits(b []byte) kernel.Limits {
	fin := func(v uint64) uint64 {
		if v == xfrmInf {
			return 0
		}
		return v
	}
	secs := func(v uint64) time.Duration {
		if v > uint64(1<<62)/uint64(time.Second) {
			return 0 // beyond any real limit: treat as none
		}
		return time.Duration(v) * time.Second
	}
	return kernel.Limits{
		Soft: kernel.Lifetime{Bytes: fin(ne.Uint64(b[0:])), Packets: fin(ne.Uint64(b[16:])), Time: secs(ne.Uint64(b[32:]))},
		Hard: kernel.Lifetime{Bytes: fin(ne.Uint64(b[8:])), Packets: fin(ne.Uint64(b[24:])), Time: secs(ne.Uint64(b[40:]))},
	}
}

func kernelMode(m uint8) kernel.Mode {
	switch m {
	case modeTunnel:
		return kernel.ModeTunnel
	case modeTransport:
		return kernel.ModeTransport
	}
	return kernel.Mode(0x80 | m) // not expressible: kept distinct from every known mode
}

// saHeader is the part of struct xfrm_usersa_info that events carry too.
type saHeader struct {
	sa       kernel.SA
	counters kernel.Counters
	proto    uint8
	flags    uint8
}

func decodeSAInfo(b []byte) (saHeader, error) {
	var h saHeader
	if len(b) < sizeSAInfo {
		return h, fmt.Errorf("xfrm_usersa_info: %w (%d octets)", errShort, len(b))
	}
	fam := ne.Uint16(b[saFamily:])
	var err error
	if h.sa.Dst, err = getAddr(b[saID:], fam); err != nil {
		return h, fmt.Errorf("xfrm_usersa_info: %w", err)
	}
	if h.sa.Src, err = getAddr(b[saSaddr:], fam); err != nil {
		return h, fmt.Errorf("xfrm_usersa_info: %w", err)
	}
	h.sa.SPI = kernel.SPI(binary.BigEndian.Uint32(b[saID+16:]))
	h.proto = b[saID+20]
	if h.sa.Selector, err = getSelector(b[saSel:]); err != nil {
		return h, fmt.Errorf("xfrm_usersa_info: %w", err)
	}
	if anySelector(h.sa.Selector) {
		h.sa.Selector = kernel.Selector{}
	}
	h.sa.Limits = getLimits(b[saLft:])
	h.counters = kernel.Counters{Bytes: ne.Uint64(b[saCurLft:]), Packets: ne.Uint64(b[saCurLft+8:])}
	h.sa.Reqid = kernel.Reqid(ne.Uint32(b[saReqid:]))
	h.sa.Mode = kernelMode(b[saMode])
	h.sa.ReplayWindow = uint32(b[saReplay])
	h.flags = b[saFlags]
	h.sa.ESN = h.flags&stateFlagESN != 0
	return h, nil
}

// decodedSA is one SAD entry read from the kernel.
type decodedSA struct {
	saHeader
	larval  bool // no transform: an SPI reserved by ALLOCSPI (or an acquire's placeholder)
	foreign bool // something cygnet's types cannot express (mark, unknown algorithm)
	// addTime, useTime and lastUsed are struct xfrm_lifetime_cur's add_time and use_time
	// and XFRMA_LASTUSED, in seconds since the epoch (0: never, or not reported).
	addTime, useTime, lastUsed uint64
}

// decodeSA decodes a NEWSA message (a GETSA reply or a dump entry), keys included.
func decodeSA(b []byte) (decodedSA, error) { return decodeSAFull(b, true) }

// decodeSACounters decodes a NEWSA message as decodeSA does, except that the keys and
// the UDP encapsulation's ports are left out (EncrKey, IntegKey and Encap nil): nothing
// is copied out of b and nothing allocated but errors. The algorithms and the
// encapsulation type are still checked, so that foreign tells the same.
func decodeSACounters(b []byte) (decodedSA, error) { return decodeSAFull(b, false) }

func decodeSAFull(b []byte, full bool) (decodedSA, error) {
	var d decodedSA
	var err error
	if d.saHeader, err = decodeSAInfo(b); err != nil {
		return d, err
	}
	d.addTime, d.useTime = ne.Uint64(b[saCurLft+16:]), ne.Uint64(b[saCurLft+24:])
	copyKey := func(k []byte) []byte {
		if !full {
			return nil
		}
		return append([]byte(nil), k...)
	}
	var buf [12]attr
	attrs, err := appendAttrs(buf[:0], b[sizeSAInfo:])
	if err != nil {
		return d, fmt.Errorf("SA %s: %w", d.sa.SPI, err)
	}
	hasTransform, hasAuth := false, false
	for _, a := range attrs {
		switch a.typ {
		case attrAlgAEAD:
			hasTransform = true
			name, key, icv, err := decodeAlgo(a.data, true)
			if err != nil {
				return d, fmt.Errorf("SA %s aead: %w", d.sa.SPI, err)
			}
			d.sa.EncrKey = copyKey(key)
			switch {
			case string(name) == kernel.EncrAESGCM16.XfrmName() && icv == 128:
				d.sa.Encr = kernel.EncrAESGCM16
			case string(name) == kernel.EncrChaCha20Poly1305.XfrmName() && icv == 128:
				d.sa.Encr = kernel.EncrChaCha20Poly1305
			default:
				d.foreign = true
			}
		case attrAlgCrypt:
			hasTransform = true
			name, key, _, err := decodeAlgo(a.data, false)
			if err != nil {
				return d, fmt.Errorf("SA %s enc: %w", d.sa.SPI, err)
			}
			d.sa.EncrKey = copyKey(key)
			if string(name) == kernel.EncrAESCBC.XfrmName() {
				d.sa.Encr = kernel.EncrAESCBC
			} else {
				d.foreign = true
			}
		case attrAlgAuthTrunc:
			hasTransform = true
			name, key, trunc, err := decodeAlgo(a.data, true)
			if err != nil {
				return d, fmt.Errorf("SA %s auth-trunc: %w", d.sa.SPI, err)
			}
			d.sa.IntegKey = copyKey(key)
			d.sa.Integ = kernel.IntegNone
			for _, i := range [...]kernel.Integ{kernel.IntegHMACSHA256128, kernel.IntegHMACSHA384192, kernel.IntegHMACSHA512256} {
				if string(name) == i.XfrmName() && trunc == i.TruncBits() {
					d.sa.Integ = i
				}
			}
			if d.sa.Integ == kernel.IntegNone {
				d.foreign = true
			}
		case attrAlgAuth:
			// Linux reports an auth-trunc algorithm twice: also in this legacy form.
			hasTransform, hasAuth = true, true
		case attrEncap:
			if len(a.data) < sizeEncapTmpl {
				return d, fmt.Errorf("SA %s encap: %w", d.sa.SPI, errShort)
			}
			if ne.Uint16(a.data[0:]) != encapESPInUDP {
				d.foreign = true
				continue
			}
			if !full {
				continue
			}
			d.sa.Encap = &kernel.Encap{
				SrcPort: binary.BigEndian.Uint16(a.data[2:]),
				DstPort: binary.BigEndian.Uint16(a.data[4:]),
			}
		case attrReplayESN:
			if len(a.data) < sizeReplayESN {
				return d, fmt.Errorf("SA %s replay state: %w", d.sa.SPI, errShort)
			}
			d.sa.ReplayWindow = ne.Uint32(a.data[20:])
		case attrLastUsed:
			if len(a.data) < 8 {
				return d, fmt.Errorf("SA %s last used: %w", d.sa.SPI, errShort)
			}
			d.lastUsed = ne.Uint64(a.data)
		case attrMark, attrIfID:
			d.foreign = true
		}
	}
	if hasAuth && d.sa.Integ == kernel.IntegNone {
		d.foreign = true // an untruncated HMAC: not something cygnet installs
	}
	d.larval = !hasTransform
	return d, nil
}

// decodeAlgo decodes struct xfrm_algo (ext false) or xfrm_algo_auth / xfrm_algo_aead
// (ext true: with trunc_len / icv_len, returned as extra). name and key point into b.
func decodeAlgo(b []byte, ext bool) (name, key []byte, extra int, err error) {
	hdr := sizeAlgoHdr
	if ext {
		hdr = sizeAlgoXHdr
	}
	if len(b) < hdr {
		return nil, nil, 0, errShort
	}
	n := 0
	for n < 64 && b[n] != 0 {
		n++
	}
	name = b[:n]
	bits := ne.Uint32(b[64:])
	if ext {
		extra = int(ne.Uint32(b[68:]))
	}
	klen := int((bits + 7) / 8)
	if bits > 8*4096 || len(b)-hdr < klen {
		return nil, nil, 0, fmt.Errorf("key of %d bits in %d octets", bits, len(b)-hdr)
	}
	return name, b[hdr : hdr+klen : hdr+klen], extra, nil
}

// decodedPolicy is one SPD entry read from the kernel.
type decodedPolicy struct {
	p       kernel.Policy
	tagged  bool // some template carries a cygnet reqid
	foreign bool // not expressible as a kernel.Policy (socket policy, block, mark, AH …)
}

func decodePolicyInfo(b []byte) (kernel.Policy, uint8, error) {
	var p kernel.Policy
	if len(b) < sizePolInfo {
		return p, 0, fmt.Errorf("xfrm_userpolicy_info: %w (%d octets)", errShort, len(b))
	}
	var err error
	if p.Selector, err = getSelector(b); err != nil {
		return p, 0, fmt.Errorf("xfrm_userpolicy_info: %w", err)
	}
	p.Priority = ne.Uint32(b[polPrio:])
	p.Index = ne.Uint32(b[polIndex:])
	p.Dir = kernel.Dir(b[polDir] + 1)
	return p, b[polAction], nil
}

// decodePolicy decodes a NEWPOLICY message (a GETPOLICY reply or a dump entry).
func decodePolicy(b []byte) (decodedPolicy, error) {
	var d decodedPolicy
	p, action, err := decodePolicyInfo(b)
	if err != nil {
		return d, err
	}
	d.p = p
	if !p.Dir.Valid() || action != policyAllow || p.Selector.IsZero() {
		d.foreign = true
	}
	attrs, err := parseAttrs(b[sizePolInfo:])
	if err != nil {
		return d, fmt.Errorf("%s: %w", p.ID(), err)
	}
	ntmpl := 0
	for _, a := range attrs {
		switch a.typ {
		case attrTmpl:
			for t := a.data; len(t) > 0; t = t[min(sizeTmpl, len(t)):] {
				if len(t) < sizeTmpl {
					return d, fmt.Errorf("%s template: %w", p.ID(), errShort)
				}
				ntmpl++
				tmpl, ok, err := decodeTmpl(t)
				if err != nil {
					return d, fmt.Errorf("%s template: %w", p.ID(), err)
				}
				if tmpl.Reqid.Tagged() {
					d.tagged = true
				}
				if !ok {
					d.foreign = true
				}
				d.p.Template = tmpl
			}
		case attrMark, attrIfID:
			d.foreign = true
		}
	}
	if ntmpl != 1 {
		d.foreign = true
	}
	return d, nil
}

// decodeTmpl decodes struct xfrm_user_tmpl; ok is false if it is not an ESP template
// cygnet could have written.
func decodeTmpl(t []byte) (kernel.Template, bool, error) {
	var tmpl kernel.Template
	fam := ne.Uint16(t[24:])
	tmpl.Reqid = kernel.Reqid(ne.Uint32(t[44:]))
	tmpl.Mode = kernelMode(t[48])
	tmpl.Optional = t[50] != 0
	ok := t[20] == protoESP && binary.BigEndian.Uint32(t[16:]) == 0
	if tmpl.Mode == kernel.ModeTunnel {
		var err error
		if tmpl.Dst, err = getAddr(t[0:], fam); err != nil {
			return tmpl, false, err
		}
		if tmpl.Src, err = getAddr(t[28:], fam); err != nil {
			return tmpl, false, err
		}
	} else if tmpl.Mode != kernel.ModeTransport {
		ok = false
	}
	return tmpl, ok, nil
}

// expireMsg is a decoded XFRM_MSG_EXPIRE (struct xfrm_user_expire).
type expireMsg struct {
	sa    saHeader
	hard  bool
	proto uint8
}

func decodeExpire(b []byte) (expireMsg, error) {
	if len(b) < sizeExpire {
		return expireMsg{}, fmt.Errorf("xfrm_user_expire: %w (%d octets)", errShort, len(b))
	}
	h, err := decodeSAInfo(b)
	if err != nil {
		return expireMsg{}, fmt.Errorf("xfrm_user_expire: %w", err)
	}
	return expireMsg{sa: h, hard: b[sizeSAInfo] != 0, proto: h.proto}, nil
}

// acquireMsg is a decoded XFRM_MSG_ACQUIRE (struct xfrm_user_acquire and its template).
type acquireMsg struct {
	tmplDst, tmplSrc netip.Addr
	proto            uint8
	flow             kernel.Selector
	policy           kernel.Policy
	tmplReqid        kernel.Reqid
}

func decodeAcquire(b []byte) (acquireMsg, error) {
	var m acquireMsg
	if len(b) < sizeAcquire {
		return m, fmt.Errorf("xfrm_user_acquire: %w (%d octets)", errShort, len(b))
	}
	var err error
	if m.flow, err = getSelector(b[40:]); err != nil {
		return m, fmt.Errorf("xfrm_user_acquire flow: %w", err)
	}
	fam := ne.Uint16(b[40+40:])
	m.proto = b[20]
	if m.tmplDst, err = getAddr(b[0:], fam); err != nil {
		return m, fmt.Errorf("xfrm_user_acquire: %w", err)
	}
	if m.tmplSrc, err = getAddr(b[24:], fam); err != nil {
		return m, fmt.Errorf("xfrm_user_acquire: %w", err)
	}
	if m.policy, _, err = decodePolicyInfo(b[96:]); err != nil {
		return m, fmt.Errorf("xfrm_user_acquire policy: %w", err)
	}
	attrs, err := parseAttrs(b[sizeAcquire:])
	if err != nil {
		return m, fmt.Errorf("xfrm_user_acquire: %w", err)
	}
	for _, a := range attrs {
		if a.typ == attrTmpl && len(a.data) >= sizeTmpl {
			tmpl, _, err := decodeTmpl(a.data[:sizeTmpl])
			if err != nil {
				return m, fmt.Errorf("xfrm_user_acquire template: %w", err)
			}
			m.tmplReqid = tmpl.Reqid
			if tmpl.Mode == kernel.ModeTunnel {
				// The end points of the SA wanted, as the template gives them.
				m.tmplSrc, m.tmplDst = tmpl.Src, tmpl.Dst
			}
			break
		}
	}
	return m, nil
}
