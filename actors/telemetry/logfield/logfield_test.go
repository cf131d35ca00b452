package logfield

import (
	"net/netip"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestFieldsRenderProtocolSpelling(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	fields := append(IKESA(0x0123456789abcdef, 0), Peer(netip.MustParseAddrPort("192.0.2.2:4500")),
		Conn("ab"), Child("net"), MsgID(7), Exchange("IKE_AUTH"), Notify("TS_UNACCEPTABLE"))
	fields = append(fields, ChildSPIs(0xc1a2b3c4, 0x5)...)
	log.Info("x", fields...)

	got := logs.All()[0].ContextMap()
	want := map[string]any{
		"spi_i": "0123456789abcdef", "spi_r": "0000000000000000",
		"peer": "192.0.2.2:4500", "conn": "ab", "child": "net", "msg_id": uint32(7),
		"exchange": "IKE_AUTH", "notify": "TS_UNACCEPTABLE",
		"spi_in": "c1a2b3c4", "spi_out": "00000005",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d fields %v, want %d", len(got), got, len(want))
	}
}

func TestHex(t *testing.T) {
	for _, c := range []struct {
		v      uint64
		digits int
		want   string
	}{{0, 8, "00000000"}, {0xabc, 4, "0abc"}, {0xffffffffffffffff, 16, "ffffffffffffffff"}} {
		if got := Hex(c.v, c.digits); got != c.want {
			t.Errorf("Hex(%x, %d) = %q, want %q", c.v, c.digits, got, c.want)
		}
	}
}
