package charon

import (
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
)

// HexDump is one binary value charon printed in its log ("NAME => N bytes @ 0x…"
// followed by offset lines), e.g. "Sk_ei secret" at ike level 4 or "encryption
// initiator key" at chd level 4 (Options.LogKeys).
type HexDump struct {
	// Context is the IKE SA context of the line: "ab|1" (connection ab, unique ID
	// 1) or "1" before the connection is known; empty outside any IKE SA.
	Context string
	Name    string
	Data    []byte
	// Line is the 1-based log line of the header.
	Line int
}

var (
	dumpHeader = regexp.MustCompile(`\[(\w+)\] (?:<([^>]*)> )?(.*?) => (\d+) bytes @ 0x[0-9a-f]+$`)
	dumpLine   = regexp.MustCompile(`\[\w+\] (?:<[^>]*> )?\s*\d+: ((?:[0-9A-F]{2} )*[0-9A-F]{2})`)
)

// ParseHexDumps returns every complete hex dump in a charon filelog, in order. A
// dump whose byte count does not match its lines (a truncated log) is left out.
func ParseHexDumps(log string) []HexDump {
	lines := strings.Split(log, "\n")
	var out []HexDump
	for i := 0; i < len(lines); i++ {
		m := dumpHeader.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[4])
		if err != nil {
			continue
		}
		d := HexDump{Context: m[2], Name: strings.TrimSpace(m[3]), Line: i + 1, Data: make([]byte, 0, n)}
		j := i + 1
		for ; j < len(lines) && len(d.Data) < n; j++ {
			lm := dumpLine.FindStringSubmatch(lines[j])
			if lm == nil {
				break
			}
			b, err := hex.DecodeString(strings.ReplaceAll(lm[1], " ", ""))
			if err != nil {
				break
			}
			d.Data = append(d.Data, b...)
		}
		if len(d.Data) == n {
			out = append(out, d)
			i = j - 1
		}
	}
	return out
}

// KeysOf returns the dumps named name in the given IKE SA context, in order.
func KeysOf(dumps []HexDump, context, name string) [][]byte {
	var out [][]byte
	for _, d := range dumps {
		if d.Context == context && d.Name == name {
			out = append(out, d.Data)
		}
	}
	return out
}

// ChildKeys are the keys charon logged for one Child SA (chd level 4). Charon
// names them by the exchange's initiator: the "initiator" keys protect traffic
// from the initiator of the exchange that created the Child SA (RFC 7296 §2.17).
type ChildKeys struct {
	Context  string // IKE SA context, "ab|1"
	Name     string // child config name
	UniqueID uint32
	// SPIIn is the SPI this charon chose (inbound), SPIOut the peer's.
	SPIIn, SPIOut  uint32
	EncrI, EncrR   []byte // encryption keys (AEAD: key || salt)
	IntegI, IntegR []byte // integrity keys; empty for AEAD
}

var childEstablished = regexp.MustCompile(`<([^>]*)> (?:inbound )?CHILD_SA (\S+)\{(\d+)\} established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o`)

// ParseChildKeys returns the keys of every Child SA established in a charon log
// written with Options.LogKeys, in order: each child's keys are the last ones
// logged before its "established with SPIs" line.
func ParseChildKeys(log string) []ChildKeys {
	dumps := ParseHexDumps(log)
	var out []ChildKeys
	for i, l := range strings.Split(log, "\n") {
		m := childEstablished.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		last := func(name string) []byte {
			var v []byte
			for _, d := range dumps {
				if d.Line < i+1 && d.Name == name {
					v = d.Data
				}
			}
			return v
		}
		id, _ := strconv.ParseUint(m[3], 10, 32)
		in, _ := strconv.ParseUint(m[4], 16, 32)
		outSPI, _ := strconv.ParseUint(m[5], 16, 32)
		out = append(out, ChildKeys{
			Context: m[1], Name: m[2], UniqueID: uint32(id), SPIIn: uint32(in), SPIOut: uint32(outSPI),
			EncrI: last("encryption initiator key"), EncrR: last("encryption responder key"),
			IntegI: last("integrity initiator key"), IntegR: last("integrity responder key"),
		})
	}
	return out
}
