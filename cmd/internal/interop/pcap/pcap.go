// Package pcap reads the classic libpcap capture format (what `tcpdump -w` writes)
// and extracts the UDP datagrams of IPv4 frames, then classifies each as an IKE
// message, ESP, or a NAT-T keepalive (RFC 3948).
//
// Contract: Read never panics on malformed input; it returns the records it could
// read and an error saying where the input went wrong. A truncated last record (a
// capture still being written) is reported as ErrTruncated together with every
// complete record before it. Frames that are not IPv4/UDP, or are IP fragments,
// are skipped. Payload slices point into the input.
//
// Only what the interop harness needs is supported: link types Ethernet (1) and
// Linux cooked v1 (113), IPv4, UDP.
package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Errors returned by Read.
var (
	ErrBadMagic     = errors.New("pcap: not a libpcap file (bad magic)")
	ErrTruncated    = errors.New("pcap: truncated")
	ErrLinkType     = errors.New("pcap: unsupported link type")
	ErrRecordLength = errors.New("pcap: record length exceeds snap length")
)

// Link types (LINKTYPE_* in the libpcap registry).
const (
	LinkEthernet  = 1
	LinkLinuxSLL  = 113
	globalHdrLen  = 24
	recordHdrLen  = 16
	maxRecordSize = 1 << 18
)

// Datagram is one UDP datagram found in a capture.
type Datagram struct {
	// Frame is the 1-based record number in the file (as tshark counts).
	Frame    int
	Time     time.Time
	Src, Dst netip.AddrPort
	// Payload is the UDP payload; it points into the input.
	Payload []byte
}

// Read parses a whole capture and returns its UDP/IPv4 datagrams in file order.
func Read(b []byte) ([]Datagram, error) {
	if len(b) < globalHdrLen {
		return nil, fmt.Errorf("%w: %d bytes, global header needs %d", ErrTruncated, len(b), globalHdrLen)
	}
	var order binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(b[0:4]) {
	case 0xa1b2c3d4:
		order = binary.LittleEndian
	case 0xa1b23c4d:
		order, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		order = binary.BigEndian
	case 0x4d3cb2a1:
		order, nano = binary.BigEndian, true
	default:
		return nil, ErrBadMagic
	}
	snap := order.Uint32(b[16:20])
	link := order.Uint32(b[20:24])
	if link != LinkEthernet && link != LinkLinuxSLL {
		return nil, fmt.Errorf("%w %d", ErrLinkType, link)
	}
	var out []Datagram
	off := globalHdrLen
	for frame := 1; off < len(b); frame++ {
		if len(b)-off < recordHdrLen {
			return out, fmt.Errorf("%w: record %d header at offset %d", ErrTruncated, frame, off)
		}
		sec, frac := order.Uint32(b[off:]), order.Uint32(b[off+4:])
		incl := order.Uint32(b[off+8:])
		if incl > maxRecordSize || (snap > 0 && incl > snap) {
			return out, fmt.Errorf("%w: record %d length %d (snap %d)", ErrRecordLength, frame, incl, snap)
		}
		off += recordHdrLen
		if uint64(len(b)-off) < uint64(incl) {
			return out, fmt.Errorf("%w: record %d needs %d bytes, %d left", ErrTruncated, frame, incl, len(b)-off)
		}
		data := b[off : off+int(incl)]
		off += int(incl)
		nsec := int64(frac) * 1000
		if nano {
			nsec = int64(frac)
		}
		d, ok := decodeFrame(link, data)
		if !ok {
			continue
		}
		d.Frame = frame
		d.Time = time.Unix(int64(sec), nsec).UTC()
		out = append(out, d)
	}
	return out, nil
}

// decodeFrame returns the UDP datagram inside one link-layer frame, if it holds
// an unfragmented IPv4/UDP packet.
func decodeFrame(link uint32, f []byte) (Datagram, bool) {
	var ip []byte
	switch link {
	case LinkEthernet:
		if len(f) < 14 {
			return Datagram{}, false
		}
		etherType := binary.BigEndian.Uint16(f[12:14])
		p := f[14:]
		for etherType == 0x8100 || etherType == 0x88a8 { // VLAN tags
			if len(p) < 4 {
				return Datagram{}, false
			}
			etherType = binary.BigEndian.Uint16(p[2:4])
			p = p[4:]
		}
		if etherType != 0x0800 {
			return Datagram{}, false
		}
		ip = p
	case LinkLinuxSLL:
		if len(f) < 16 || binary.BigEndian.Uint16(f[14:16]) != 0x0800 {
			return Datagram{}, false
		}
		ip = f[16:]
	}
	return decodeIPv4UDP(ip)
}

func decodeIPv4UDP(ip []byte) (Datagram, bool) {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return Datagram{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total < ihl || total > len(ip) {
		return Datagram{}, false
	}
	ip = ip[:total] // drop Ethernet padding
	fragment := binary.BigEndian.Uint16(ip[6:8])
	if fragment&0x2000 != 0 || fragment&0x1fff != 0 { // MF set or offset != 0
		return Datagram{}, false
	}
	if ip[9] != 17 {
		return Datagram{}, false
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	udp := ip[ihl:]
	if len(udp) < 8 {
		return Datagram{}, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return Datagram{}, false
	}
	return Datagram{
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:2])),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:4])),
		Payload: udp[8:ulen],
	}, true
}
