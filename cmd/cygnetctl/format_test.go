package main

import (
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
)

// A Child SA's kernel reqid and its inbound and outbound counters, as list-sas prints
// them (swanctl --list-sas's layout).
func TestChildCounters(t *testing.T) {
	ch := control.ChildSA{Name: "lan", UniqueID: 3, ReqID: 3338665985, State: "INSTALLED", Mode: "TUNNEL", Protocol: "ESP",
		SPIIn: 0xc1a2b3c4, SPIOut: 0xc5d6e7f8, Proposal: "AES_GCM_16_256", BytesIn: 123456789, PacketsIn: 98765,
		BytesOut: 42, PacketsOut: 1, LocalTS: []string{"10.0.0.0/16"}, RemoteTS: []string{"10.1.0.0/24"}}
	got := string(appendChild(nil, &ch, 0))
	for _, want := range []string{
		"  lan: #3, reqid 3338665985, INSTALLED, TUNNEL, ESP:AES_GCM_16_256\n",
		"    in  c1a2b3c4,  123456789 bytes,    98765 packets\n",
		"    out c5d6e7f8,         42 bytes,        1 packets\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}
