//go:build linux

package xfrm

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"pgregory.net/rapid"
)

// withLifetime writes struct xfrm_lifetime_cur into an encoded NEWSA message and appends
// XFRMA_LASTUSED when lastUsed is not 0, as Linux's GETSA answers carry them.
func withLifetime(b []byte, c kernel.Counters, add, use, lastUsed uint64) []byte {
	ne.PutUint64(b[saCurLft:], c.Bytes)
	ne.PutUint64(b[saCurLft+8:], c.Packets)
	ne.PutUint64(b[saCurLft+16:], add)
	ne.PutUint64(b[saCurLft+24:], use)
	if lastUsed != 0 {
		b = appendAttr(b, attrLastUsed, ne.AppendUint64(nil, lastUsed))
	}
	return b
}

// TestDecodeSACounters: the counters decoder reads what decodeSA reads, keys and
// encapsulation ports left out,
// and the lifetime's counters and times; it allocates nothing.
func TestDecodeSACounters(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sa := genSA(t)
		c := kernel.Counters{Bytes: rapid.Uint64().Draw(t, "bytes"), Packets: rapid.Uint64().Draw(t, "packets")}
		add := rapid.Uint64Range(1, 1<<39).Draw(t, "add")
		use := rapid.SampledFrom([]uint64{0, add, add + 7}).Draw(t, "use")
		last := rapid.SampledFrom([]uint64{0, use + 3}).Draw(t, "last")
		b := withLifetime(encodeSA(&sa), c, add, use, last)
		full, err := decodeSA(b)
		if err != nil {
			t.Fatalf("decodeSA: %v", err)
		}
		d, err := decodeSACounters(b)
		if err != nil {
			t.Fatalf("decodeSACounters: %v", err)
		}
		if d.sa.EncrKey != nil || d.sa.IntegKey != nil || d.sa.Encap != nil {
			t.Fatalf("keys or encapsulation copied: %x %x %v", d.sa.EncrKey, d.sa.IntegKey, d.sa.Encap)
		}
		full.sa.EncrKey, full.sa.IntegKey, full.sa.Encap = nil, nil, nil
		if !d.sa.Equal(&full.sa) || d.larval != full.larval || d.foreign != full.foreign || d.proto != full.proto {
			t.Fatalf("decoders differ: %+v vs %+v", d, full)
		}
		if d.counters != c || d.addTime != add || d.useTime != use || d.lastUsed != last {
			t.Fatalf("lifetime %+v add %d use %d last %d, want %+v %d %d %d", d.counters, d.addTime, d.useTime, d.lastUsed, c, add, use, last)
		}
		got := saCounters(&d)
		if got.ID != sa.ID() || got.Reqid != sa.Reqid || got.Counters != c || got.Added.Unix() != int64(add) ||
			got.Used.IsZero() != (use == 0) || got.LastUsed.IsZero() != (last == 0) {
			t.Fatalf("SACounters %+v", got)
		}
	})
	sa := kernel.SA{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SPI: 0x1000,
		Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Encr: kernel.EncrAESCBC, EncrKey: make([]byte, 32),
		Integ: kernel.IntegHMACSHA256128, IntegKey: make([]byte, 32), ReplayWindow: 128,
		Encap: &kernel.Encap{SrcPort: 4500, DstPort: 4500},
	}
	b := withLifetime(encodeSA(&sa), kernel.Counters{Bytes: 1, Packets: 1}, 1, 1, 1)
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeSACounters(b) }); n != 0 {
		t.Errorf("decodeSACounters allocates %v times per SA", n)
	}
}

// TestDecodeSACountersForeign: an SA that decodeSA calls foreign (an unknown algorithm,
// a mark) is foreign to the counters decoder too, and so left out of both listings.
func TestDecodeSACountersForeign(t *testing.T) {
	sa := kernel.SA{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SPI: 0x1000,
		Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin, Encr: kernel.EncrAESGCM16, EncrKey: make([]byte, 20),
	}
	unknownAlgo := encodeSA(&sa)
	i := bytes.Index(unknownAlgo, []byte("rfc4106(gcm(aes))"))
	unknownAlgo[i+len("rfc4106")] = '9' // rfc41069(gcm(aes)): no such algorithm
	marked := appendAttr(encodeSA(&sa), attrMark, make([]byte, 8))
	for name, b := range map[string][]byte{"unknown algorithm": unknownAlgo, "mark": marked} {
		d, err := decodeSACounters(b)
		if err != nil || !d.foreign {
			t.Errorf("%s: foreign=%v, %v; want foreign", name, d.foreign, err)
		}
	}
	plain, err := decodeSACounters(encodeSA(&sa))
	if err != nil || plain.foreign || plain.larval {
		t.Errorf("plain AES-GCM SA: foreign=%v larval=%v, %v", plain.foreign, plain.larval, err)
	}
}

// FuzzDecodeSACounters: the counters decoder never panics and agrees with decodeSA on
// every input: the same error or none, the same SA but for keys.
func FuzzDecodeSACounters(f *testing.F) {
	sa := fuzzSeedSA()
	f.Add(withLifetime(encodeSA(&sa), kernel.Counters{Bytes: 10, Packets: 1}, 5, 6, 7))
	f.Add(make([]byte, sizeSAInfo+4))
	f.Fuzz(func(t *testing.T, b []byte) {
		full, errFull := decodeSA(b)
		d, err := decodeSACounters(b)
		if (err == nil) != (errFull == nil) {
			t.Fatalf("decodeSA: %v; decodeSACounters: %v", errFull, err)
		}
		if err != nil {
			return
		}
		full.sa.EncrKey, full.sa.IntegKey, full.sa.Encap = nil, nil, nil
		if !d.sa.Equal(&full.sa) || d.larval != full.larval || d.foreign != full.foreign || d.lastUsed != full.lastUsed {
			t.Fatalf("decoders differ: %+v vs %+v", d, full)
		}
		_ = saCounters(&d)
	})
}

// epochSeconds: 0 is never; absurd values (beyond year 36,000) are not a time.
func TestEpochSeconds(t *testing.T) {
	if !epochSeconds(0).IsZero() || !epochSeconds(1<<41).IsZero() {
		t.Error("0 or an absurd value read as a time")
	}
	if got := epochSeconds(1_700_000_000); !got.Equal(time.Unix(1_700_000_000, 0)) {
		t.Errorf("epochSeconds(1700000000) = %v", got)
	}
}
