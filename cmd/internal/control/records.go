package control

import (
	"strconv"
	"unicode/utf8"
)

// Conn is one configured connection as list-conns shows it (swanctl --list-conns).
type Conn struct {
	Name        string      `json:"name"`
	LocalAddrs  []string    `json:"local_addrs"`
	RemoteAddrs []string    `json:"remote_addrs"`
	LocalPort   uint16      `json:"local_port"`
	RemotePort  uint16      `json:"remote_port"`
	LocalAuth   string      `json:"local_auth"`
	LocalID     string      `json:"local_id"`
	RemoteAuth  string      `json:"remote_auth"`
	RemoteID    string      `json:"remote_id"`
	Proposals   []string    `json:"proposals"`
	RekeyTime   int64       `json:"rekey_time"` // seconds, 0 = never
	DPDDelay    int64       `json:"dpd_delay"`  // seconds, 0 = off
	Children    []ChildConn `json:"children"`
}

// ChildConn is one configured child of a Conn.
type ChildConn struct {
	Name         string   `json:"name"`
	Mode         string   `json:"mode"`
	LocalTS      []string `json:"local_ts"`
	RemoteTS     []string `json:"remote_ts"`
	ESPProposals []string `json:"esp_proposals"`
	StartAction  string   `json:"start_action"`
	RekeyTime    int64    `json:"rekey_time"` // seconds
	LifeTime     int64    `json:"life_time"`  // seconds
}

// IKESA is one IKE SA as list-sas shows it (swanctl --list-sas). Times are Unix seconds,
// 0 when not applicable. SPIs are printed as 16 hex digits.
type IKESA struct {
	Conn        string    `json:"conn"`
	UniqueID    uint64    `json:"id"`
	State       string    `json:"state"` // CONNECTING, ESTABLISHED, REKEYING, DELETING
	Initiator   bool      `json:"initiator"`
	SPIi        SPI64     `json:"spi_i"`
	SPIr        SPI64     `json:"spi_r"`
	LocalHost   string    `json:"local_host"`
	LocalPort   uint16    `json:"local_port"`
	LocalID     string    `json:"local_id"`
	RemoteHost  string    `json:"remote_host"`
	RemotePort  uint16    `json:"remote_port"`
	RemoteID    string    `json:"remote_id"`
	NATLocal    bool      `json:"nat_local"`
	NATRemote   bool      `json:"nat_remote"`
	Proposal    string    `json:"proposal"` // e.g. AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519
	Established int64     `json:"established"`
	RekeyAt     int64     `json:"rekey_at"`
	Children    []ChildSA `json:"children"`
}

// ChildSA is one Child SA of an IKESA. SPIs are printed as 8 hex digits.
type ChildSA struct {
	Name     string `json:"name"`
	UniqueID uint64 `json:"id"`
	ReqID    uint32 `json:"reqid"` // the kernel's reqid of its SAs and policies (ip xfrm state), 0 if unknown
	State    string `json:"state"` // INSTALLING, INSTALLED, REKEYING, REKEYED, DELETING
	Mode     string `json:"mode"`  // TUNNEL, TRANSPORT
	Protocol string `json:"protocol"`
	Encap    bool   `json:"encap"`
	SPIIn    SPI32  `json:"spi_in"`
	SPIOut   SPI32  `json:"spi_out"`
	Proposal string `json:"proposal"`
	// Lifetime counters of the inbound and outbound kernel SA (RFC 4301 §4.4.2.1), read
	// from the kernel when the listing was made; 0 when the kernel holds no such SA.
	BytesIn    uint64   `json:"bytes_in"`
	PacketsIn  uint64   `json:"packets_in"`
	BytesOut   uint64   `json:"bytes_out"`
	PacketsOut uint64   `json:"packets_out"`
	Installed  int64    `json:"installed"`
	RekeyAt    int64    `json:"rekey_at"`
	ExpireAt   int64    `json:"expire_at"`
	LocalTS    []string `json:"local_ts"`
	RemoteTS   []string `json:"remote_ts"`
}

// SPI64 is an IKE SPI (RFC 7296 §3.1), shown as 16 hex digits.
type SPI64 uint64

// SPI32 is an ESP SPI (RFC 4303 §2.1), shown as 8 hex digits.
type SPI32 uint32

func (s SPI64) String() string { return string(appendHex(nil, uint64(s), 16)) }
func (s SPI32) String() string { return string(appendHex(nil, uint64(s), 8)) }

// MarshalText / UnmarshalText make encoding/json agree with AppendJSON.
func (s SPI64) MarshalText() ([]byte, error) { return appendHex(nil, uint64(s), 16), nil }
func (s SPI32) MarshalText() ([]byte, error) { return appendHex(nil, uint64(s), 8), nil }

func (s *SPI64) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 64)
	if err != nil {
		return Errorf(CodeBadRequest, "bad IKE SPI %q", b)
	}
	*s = SPI64(v)
	return nil
}

func (s *SPI32) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return Errorf(CodeBadRequest, "bad ESP SPI %q", b)
	}
	*s = SPI32(v)
	return nil
}

// Event is one watch event: an SA came up, went down, was rekeyed, or a Child SA
// failed. Time is Unix nanoseconds.
type Event struct {
	Time    int64     `json:"time"`
	Type    EventType `json:"type"`
	Conn    string    `json:"conn"`
	Child   string    `json:"child,omitempty"`
	IKEID   uint64    `json:"ike_id,omitempty"`
	ChildID uint64    `json:"child_id,omitempty"`
	SPIi    SPI64     `json:"spi_i"`
	SPIr    SPI64     `json:"spi_r"`
	Remote  string    `json:"remote,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// EventType names a watch event.
type EventType string

const (
	EventIKEUp        EventType = "ike-up"
	EventIKEDown      EventType = "ike-down"
	EventIKERekeyed   EventType = "ike-rekeyed"
	EventChildUp      EventType = "child-up"
	EventChildDown    EventType = "child-down"
	EventChildRekeyed EventType = "child-rekeyed"
	EventChildFailed  EventType = "child-failed"
)

func (e EventType) String() string { return string(e) }

// Stats is the stats answer.
type Stats struct {
	Version       string `json:"version"`
	Started       int64  `json:"started"` // Unix seconds
	Kernel        string `json:"kernel"`  // the kernel backend in use: xfrm or memory
	Chaos         bool   `json:"chaos"`
	Connections   int    `json:"connections"`
	IKESAs        int    `json:"ike_sas"` // established
	HalfOpen      int    `json:"half_open"`
	ChildSAs      int    `json:"child_sas"`
	Goroutines    int    `json:"goroutines"`
	HeapBytes     uint64 `json:"heap_bytes"`
	Retransmits   uint64 `json:"retransmissions"`
	Dropped       uint64 `json:"packets_dropped"`
	ChildFailures uint64 `json:"child_failures"`
}

// ReloadResult is the reload answer: what changed (see config.Changes).
type ReloadResult struct {
	Added         []string `json:"added"`
	Removed       []string `json:"removed"`
	Changed       []string `json:"changed"`
	SecretChanged []string `json:"secret_changed"`
	Unchanged     []string `json:"unchanged"`
	Restart       []string `json:"restart_required"`
	Warnings      []string `json:"warnings"`
}

// Done is the answer to initiate, terminate and rekey: how many SAs were acted on.
type Done struct {
	Count int `json:"count"`
}

// AppendJSON appends the IKE SA as a JSON object, equal to what encoding/json prints
// for it but without reflection: list-sas encodes 100,000 of these in one answer.
func (sa *IKESA) AppendJSON(b []byte) []byte {
	b = append(b, `{"conn":`...)
	b = appendString(b, sa.Conn)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, sa.UniqueID, 10)
	b = append(b, `,"state":`...)
	b = appendString(b, sa.State)
	b = append(b, `,"initiator":`...)
	b = strconv.AppendBool(b, sa.Initiator)
	b = append(b, `,"spi_i":"`...)
	b = appendHex(b, uint64(sa.SPIi), 16)
	b = append(b, `","spi_r":"`...)
	b = appendHex(b, uint64(sa.SPIr), 16)
	b = append(b, `","local_host":`...)
	b = appendString(b, sa.LocalHost)
	b = append(b, `,"local_port":`...)
	b = strconv.AppendUint(b, uint64(sa.LocalPort), 10)
	b = append(b, `,"local_id":`...)
	b = appendString(b, sa.LocalID)
	b = append(b, `,"remote_host":`...)
	b = appendString(b, sa.RemoteHost)
	b = append(b, `,"remote_port":`...)
	b = strconv.AppendUint(b, uint64(sa.RemotePort), 10)
	b = append(b, `,"remote_id":`...)
	b = appendString(b, sa.RemoteID)
	b = append(b, `,"nat_local":`...)
	b = strconv.AppendBool(b, sa.NATLocal)
	b = append(b, `,"nat_remote":`...)
	b = strconv.AppendBool(b, sa.NATRemote)
	b = append(b, `,"proposal":`...)
	b = appendString(b, sa.Proposal)
	b = append(b, `,"established":`...)
	b = strconv.AppendInt(b, sa.Established, 10)
	b = append(b, `,"rekey_at":`...)
	b = strconv.AppendInt(b, sa.RekeyAt, 10)
	b = append(b, `,"children":`...)
	if sa.Children == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range sa.Children {
			if i > 0 {
				b = append(b, ',')
			}
			b = sa.Children[i].AppendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// AppendJSON appends the Child SA as a JSON object (see IKESA.AppendJSON).
func (c *ChildSA) AppendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, c.Name)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, c.UniqueID, 10)
	b = append(b, `,"reqid":`...)
	b = strconv.AppendUint(b, uint64(c.ReqID), 10)
	b = append(b, `,"state":`...)
	b = appendString(b, c.State)
	b = append(b, `,"mode":`...)
	b = appendString(b, c.Mode)
	b = append(b, `,"protocol":`...)
	b = appendString(b, c.Protocol)
	b = append(b, `,"encap":`...)
	b = strconv.AppendBool(b, c.Encap)
	b = append(b, `,"spi_in":"`...)
	b = appendHex(b, uint64(c.SPIIn), 8)
	b = append(b, `","spi_out":"`...)
	b = appendHex(b, uint64(c.SPIOut), 8)
	b = append(b, `","proposal":`...)
	b = appendString(b, c.Proposal)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendUint(b, c.BytesIn, 10)
	b = append(b, `,"packets_in":`...)
	b = strconv.AppendUint(b, c.PacketsIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendUint(b, c.BytesOut, 10)
	b = append(b, `,"packets_out":`...)
	b = strconv.AppendUint(b, c.PacketsOut, 10)
	b = append(b, `,"installed":`...)
	b = strconv.AppendInt(b, c.Installed, 10)
	b = append(b, `,"rekey_at":`...)
	b = strconv.AppendInt(b, c.RekeyAt, 10)
	b = append(b, `,"expire_at":`...)
	b = strconv.AppendInt(b, c.ExpireAt, 10)
	b = append(b, `,"local_ts":`...)
	b = appendStrings(b, c.LocalTS)
	b = append(b, `,"remote_ts":`...)
	b = appendStrings(b, c.RemoteTS)
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func appendHex(b []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendString appends s as a JSON string the way encoding/json does: quotes,
// backslashes and control characters escaped, <, > and & escaped as \u003c…, U+2028 and
// U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
