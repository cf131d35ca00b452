package charon

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/strongswan/govici/vici"
)

// IKESA is one IKE SA as charon reports it (vici list-sa / ike-updown).
type IKESA struct {
	// Conn is the connection (config) name; UniqueID charon's per-SA number.
	Conn     string
	UniqueID uint32
	State    string // CREATED, CONNECTING, ESTABLISHED, REKEYING, REKEYED, DELETING …
	// Initiator is true if this charon is the original initiator of this IKE SA.
	Initiator             bool
	SPIi, SPIr            uint64
	LocalHost, RemoteHost string
	LocalPort, RemotePort uint16
	LocalID, RemoteID     string
	NATLocal, NATRemote   bool
	NATFake, NATAny       bool
	EncrAlg, IntegAlg     string
	PRFAlg, DHGroup       string
	EncrKeysize           int
	Children              []ChildSA
}

// ChildSA is one Child SA as charon reports it.
type ChildSA struct {
	// Name is the child config name; UniqueID charon's per-SA number.
	Name     string
	UniqueID uint32
	ReqID    uint32
	State    string // INSTALLED, REKEYING, REKEYED, DELETING …
	Mode     string // TUNNEL, TRANSPORT
	Protocol string // ESP, AH
	// Encap is true if ESP is UDP-encapsulated (RFC 3948).
	Encap bool
	// SPIIn is the SPI this charon chose (inbound), SPIOut the peer's.
	SPIIn, SPIOut         uint32
	EncrAlg, IntegAlg     string
	DHGroup               string
	EncrKeysize           int
	LocalTS, RemoteTS     []string
	BytesIn, BytesOut     uint64
	PacketsIn, PacketsOut uint64
}

// Child returns the IKE SA's Child SAs with the given config name.
func (s IKESA) Child(name string) []ChildSA {
	var out []ChildSA
	for _, c := range s.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func (s IKESA) String() string {
	return fmt.Sprintf("%s[%d] %s %s %016x_i %016x_r %s:%d<->%s:%d %s/%s/%s/%s children=%d",
		s.Conn, s.UniqueID, s.State, map[bool]string{true: "initiator", false: "responder"}[s.Initiator],
		s.SPIi, s.SPIr, s.LocalHost, s.LocalPort, s.RemoteHost, s.RemotePort,
		s.EncrAlg, s.IntegAlg, s.PRFAlg, s.DHGroup, len(s.Children))
}

func (c ChildSA) String() string {
	return fmt.Sprintf("%s{%d} %s %s %08x_i %08x_o %s/%s/%s %v === %v",
		c.Name, c.UniqueID, c.State, c.Mode, c.SPIIn, c.SPIOut, c.EncrAlg, c.IntegAlg, c.DHGroup, c.LocalTS, c.RemoteTS)
}

func str(m *vici.Message, key string) string {
	if v, ok := m.Get(key).(string); ok {
		return v
	}
	return ""
}

func list(m *vici.Message, key string) []string {
	if v, ok := m.Get(key).([]string); ok {
		return append([]string(nil), v...)
	}
	return nil
}

func sub(m *vici.Message, key string) *vici.Message {
	if v, ok := m.Get(key).(*vici.Message); ok {
		return v
	}
	return nil
}

// fieldParser collects the first parse error so field extraction stays linear.
type fieldParser struct {
	m   *vici.Message
	err error
}

func (p *fieldParser) uint(key string, base, bits int) uint64 {
	s := str(p.m, key)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseUint(s, base, bits)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("field %s=%q: %w", key, s, err)
	}
	return v
}

func (p *fieldParser) yes(key string) bool { return str(p.m, key) == "yes" }

func parseIKESA(conn string, m *vici.Message) (IKESA, error) {
	p := &fieldParser{m: m}
	s := IKESA{
		Conn:        conn,
		UniqueID:    uint32(p.uint("uniqueid", 10, 32)),
		State:       str(m, "state"),
		Initiator:   p.yes("initiator"),
		SPIi:        p.uint("initiator-spi", 16, 64),
		SPIr:        p.uint("responder-spi", 16, 64),
		LocalHost:   str(m, "local-host"),
		RemoteHost:  str(m, "remote-host"),
		LocalPort:   uint16(p.uint("local-port", 10, 16)),
		RemotePort:  uint16(p.uint("remote-port", 10, 16)),
		LocalID:     str(m, "local-id"),
		RemoteID:    str(m, "remote-id"),
		NATLocal:    p.yes("nat-local"),
		NATRemote:   p.yes("nat-remote"),
		NATFake:     p.yes("nat-fake"),
		NATAny:      p.yes("nat-any"),
		EncrAlg:     str(m, "encr-alg"),
		IntegAlg:    str(m, "integ-alg"),
		PRFAlg:      str(m, "prf-alg"),
		DHGroup:     str(m, "dh-group"),
		EncrKeysize: int(p.uint("encr-keysize", 10, 16)),
	}
	if p.err != nil {
		return s, fmt.Errorf("IKE SA %s: %w", conn, p.err)
	}
	if children := sub(m, "child-sas"); children != nil {
		for _, key := range children.Keys() {
			cm := sub(children, key)
			if cm == nil {
				continue
			}
			c, err := parseChildSA(cm)
			if err != nil {
				return s, fmt.Errorf("IKE SA %s: child %s: %w", conn, key, err)
			}
			s.Children = append(s.Children, c)
		}
	}
	sort.Slice(s.Children, func(i, j int) bool { return s.Children[i].UniqueID < s.Children[j].UniqueID })
	return s, nil
}

func parseChildSA(m *vici.Message) (ChildSA, error) {
	p := &fieldParser{m: m}
	c := ChildSA{
		Name:        str(m, "name"),
		UniqueID:    uint32(p.uint("uniqueid", 10, 32)),
		ReqID:       uint32(p.uint("reqid", 10, 32)),
		State:       str(m, "state"),
		Mode:        str(m, "mode"),
		Protocol:    str(m, "protocol"),
		Encap:       p.yes("encap"),
		SPIIn:       uint32(p.uint("spi-in", 16, 32)),
		SPIOut:      uint32(p.uint("spi-out", 16, 32)),
		EncrAlg:     str(m, "encr-alg"),
		IntegAlg:    str(m, "integ-alg"),
		DHGroup:     str(m, "dh-group"),
		EncrKeysize: int(p.uint("encr-keysize", 10, 16)),
		LocalTS:     list(m, "local-ts"),
		RemoteTS:    list(m, "remote-ts"),
		BytesIn:     p.uint("bytes-in", 10, 64),
		BytesOut:    p.uint("bytes-out", 10, 64),
		PacketsIn:   p.uint("packets-in", 10, 64),
		PacketsOut:  p.uint("packets-out", 10, 64),
	}
	return c, p.err
}

// ListSAs returns every IKE SA charon holds, with its Child SAs, ordered by unique
// ID.
func (c *Charon) ListSAs(ctx context.Context) ([]IKESA, error) {
	// Not noblock: with it charon silently leaves out IKE SAs a worker holds at
	// that moment (a rekey, a DPD), and a snapshot would show fewer SAs than exist.
	evs, _, err := c.collect(ctx, "list-sas", "list-sa", nil)
	if err != nil {
		return nil, err
	}
	var out []IKESA
	for _, m := range evs {
		for _, conn := range m.Keys() {
			sm := sub(m, conn)
			if sm == nil {
				continue
			}
			s, err := parseIKESA(conn, sm)
			if err != nil {
				return nil, fmt.Errorf("charon %s: list-sas: %w", c.Name, err)
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UniqueID < out[j].UniqueID })
	return out, nil
}

// Established returns the IKE SAs in state ESTABLISHED.
func Established(sas []IKESA) []IKESA {
	var out []IKESA
	for _, s := range sas {
		if s.State == "ESTABLISHED" {
			out = append(out, s)
		}
	}
	return out
}

// Installed returns the Child SAs in state INSTALLED across the given IKE SAs.
func Installed(sas []IKESA) []ChildSA {
	var out []ChildSA
	for _, s := range sas {
		for _, c := range s.Children {
			if c.State == "INSTALLED" {
				out = append(out, c)
			}
		}
	}
	return out
}

// FormatSAs renders IKE SAs and their children one per line, for test messages.
func FormatSAs(sas []IKESA) string {
	var b strings.Builder
	for _, s := range sas {
		fmt.Fprintf(&b, "  %s\n", s)
		for _, c := range s.Children {
			fmt.Fprintf(&b, "    %s\n", c)
		}
	}
	if b.Len() == 0 {
		return "  (no IKE SAs)\n"
	}
	return b.String()
}
