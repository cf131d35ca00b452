// Package logfield holds the zap field constructors every cygnet log line uses for the
// protocol's identifiers, so that the same thing has the same key everywhere and logs
// can be joined on it: an IKE SA is always spi_i/spi_r (16 hex digits, RFC 7296 §3.1),
// a peer is always "peer" (address:port), a connection "conn", a Child SA "child" with
// spi_in/spi_out (8 hex digits, RFC 4303 §2.1).
//
// Contract: constructors never allocate a string until the line is actually written
// (values are wrapped as fmt.Stringer), so they are cheap on debug paths that are off.
// The pure core (actors/ike) must not import this package (it imports zap); the actor
// shells, the kernel backends and cmd/ do.
package logfield

import (
	"net/netip"
	"strconv"

	"go.uber.org/zap"
)

// Keys used by the constructors below.
const (
	KeySPIi     = "spi_i"
	KeySPIr     = "spi_r"
	KeyPeer     = "peer"
	KeyConn     = "conn"
	KeyChild    = "child"
	KeySPIIn    = "spi_in"
	KeySPIOut   = "spi_out"
	KeyMsgID    = "msg_id"
	KeyExchange = "exchange"
	KeyNotify   = "notify"
	KeyActor    = "actor"
)

type spi64 uint64

func (s spi64) String() string {
	var buf [16]byte
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		buf[i] = hex[s&0xf]
		s >>= 4
	}
	return string(buf[:])
}

type spi32 uint32

func (s spi32) String() string {
	var buf [8]byte
	const hex = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		buf[i] = hex[s&0xf]
		s >>= 4
	}
	return string(buf[:])
}

// SPIi is the IKE SA initiator's SPI as 16 hex digits.
func SPIi(spiI uint64) zap.Field { return zap.Stringer(KeySPIi, spi64(spiI)) }

// SPIr is the IKE SA responder's SPI as 16 hex digits (all zeros before the response
// to IKE_SA_INIT, RFC 7296 §3.1).
func SPIr(spiR uint64) zap.Field { return zap.Stringer(KeySPIr, spi64(spiR)) }

// IKESA returns the two SPI fields that identify an IKE SA.
func IKESA(spiI, spiR uint64) []zap.Field {
	return []zap.Field{SPIi(spiI), SPIr(spiR)}
}

// Peer is the peer's address and port.
func Peer(peer netip.AddrPort) zap.Field { return zap.Stringer(KeyPeer, peer) }

// Conn is a connection's name from the configuration.
func Conn(name string) zap.Field { return zap.String(KeyConn, name) }

// Child is a Child SA's configuration name.
func Child(name string) zap.Field { return zap.String(KeyChild, name) }

// ChildSPIs returns the inbound and outbound ESP SPIs of a Child SA as 8 hex digits.
func ChildSPIs(spiIn, spiOut uint32) []zap.Field {
	return []zap.Field{zap.Stringer(KeySPIIn, spi32(spiIn)), zap.Stringer(KeySPIOut, spi32(spiOut))}
}

// MsgID is an IKE message ID (RFC 7296 §2.2).
func MsgID(msgID uint32) zap.Field { return zap.Uint32(KeyMsgID, msgID) }

// Exchange is an exchange type name (IKE_SA_INIT, IKE_AUTH, …).
func Exchange(name string) zap.Field { return zap.String(KeyExchange, name) }

// Notify is a notify type name (TS_UNACCEPTABLE, …).
func Notify(name string) zap.Field { return zap.String(KeyNotify, name) }

// Actor is an actor's identifier (a protoactor PID's Id).
func Actor(id string) zap.Field { return zap.String(KeyActor, id) }

// Hex formats v as lowercase hex with the given number of digits; exported for code
// that prints SPIs outside logs (cygnetctl uses the same spelling).
func Hex(v uint64, digits int) string {
	s := strconv.FormatUint(v, 16)
	for len(s) < digits {
		s = "0" + s
	}
	return s
}
