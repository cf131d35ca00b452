package config

import (
	"net/netip"
	"strings"
)

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "%any"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func tsList(ts []TrafficSelector) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}

// AddrList prints addresses comma-separated, "%any" when empty.
func AddrList(as []netip.Addr) string { return addrList(as) }

// TSList prints traffic selectors comma-separated.
func TSList(ts []TrafficSelector) string { return tsList(ts) }
