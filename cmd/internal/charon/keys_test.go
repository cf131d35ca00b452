package charon

import (
	"encoding/hex"
	"testing"
)

// TestParseHexDumps reads dumps in charon's format (lines from the S1 vector's
// log, wire/testdata/strongswan/S1-x25519-gcm/keys.md lists the same Sk_ei).
func TestParseHexDumps(t *testing.T) {
	dumps := ParseHexDumps(syntheticLog)
	ei := KeysOf(dumps, "ab|1", "Sk_ei secret")
	if len(ei) != 1 || len(ei[0]) != 36 {
		t.Fatalf("Sk_ei of ab|1: %d dumps %x", len(ei), ei)
	}
	if got := hex.EncodeToString(ei[0]); got != "61737d132b37ccd6cb7e85beefe8a330174dda98de1a4f44ed3609ddbd78ac10fbab84e5" {
		t.Errorf("Sk_ei %s", got)
	}
}

const syntheticLog = `15:38:23 10[IKE] <ab|1> Sk_ei secret => 36 bytes @ 0x7f73b800a850
15:38:23 10[IKE] <ab|1>    0: 61 73 7D 13 2B 37 CC D6 CB 7E 85 BE EF E8 A3 30  as}.+7...~.....0
15:38:23 10[IKE] <ab|1>   16: 17 4D DA 98 DE 1A 4F 44 ED 36 09 DD BD 78 AC 10  .M....OD.6...x..
15:38:23 10[IKE] <ab|1>   32: FB AB 84 E5                                      ....
15:38:23 10[IKE] <ab|1> Sk_er secret => 36 bytes @ 0x7f73b800a874
15:38:23 10[IKE] <ab|1>    0: 61 73 7D 13 2B 37 CC D6 CB 7E 85 BE EF E8 A3 30  as}.+7...~.....0
`

func TestParseHexDumpsTruncated(t *testing.T) {
	dumps := ParseHexDumps(syntheticLog)
	if len(dumps) != 1 || dumps[0].Name != "Sk_ei secret" || dumps[0].Line != 1 {
		t.Fatalf("dumps %+v: want only the complete Sk_ei", dumps)
	}
}
