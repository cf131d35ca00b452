package wire_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// The strongSwan 5.9.8 captures in testdata/strongswan: real IKE messages with the keys
// that protect them. Every IKE frame is decoded, checked against what the capture's
// metadata says, re-encoded byte for byte, and (with wire/ikecrypto and the logged keys)
// opened, its inner chain decoded and compared, and re-sealed byte for byte.

type vectorFile struct {
	Suite  string        `json:"suite"`
	Frames []vectorFrame `json:"frames"`
	IKESAs []struct {
		SKei string `json:"SK_ei"`
		SKer string `json:"SK_er"`
		SKai string `json:"SK_ai"`
		SKar string `json:"SK_ar"`
	} `json:"ike_sas"`
}

type vectorFrame struct {
	Frame        int      `json:"frame"`
	Kind         string   `json:"kind"`
	NonESPMarker bool     `json:"non_esp_marker"`
	IKESA        int      `json:"ike_sa"`
	Exchange     string   `json:"exchange"`
	Request      bool     `json:"request"`
	MessageID    uint32   `json:"message_id"`
	Flags        uint8    `json:"flags"`
	Payloads     []string `json:"payloads"`
	IKEMessage   string   `json:"ike_message"`
	Decrypted    *string  `json:"decrypted_payloads"`
	FirstInner   uint8    `json:"first_inner_payload"`
	IV           string   `json:"iv"`
	Key          string   `json:"key"`
}

// strongSwan's abbreviations of notify types in its "generating/parsed [ … ]" lines.
var swanNotify = map[string]wire.NotifyType{
	"NATD_S_IP":      wire.NotifyNATDetectionSourceIP,
	"NATD_D_IP":      wire.NotifyNATDetectionDestinationIP,
	"FRAG_SUP":       wire.NotifyIKEv2FragmentationSupported,
	"HASH_ALG":       wire.NotifySignatureHashAlgorithms,
	"REDIR_SUP":      wire.NotifyRedirectSupported,
	"CHDLESS_SUP":    wire.NotifyChildlessIKEv2Supported,
	"MULT_AUTH":      wire.NotifyMultipleAuthSupported,
	"INIT_CONTACT":   wire.NotifyInitialContact,
	"EAP_ONLY":       wire.NotifyEAPOnlyAuthentication,
	"MSG_ID_SYN_SUP": wire.NotifyIKEv2MessageIDSyncSupported,
	"REKEY_SA":       wire.NotifyRekeySA,
}

// swanNames renders a payload list in strongSwan's notation.
func swanNames(t *testing.T, ps []wire.Payload) []string {
	t.Helper()
	abbrev := map[wire.NotifyType]string{}
	for k, v := range swanNotify {
		abbrev[v] = k
	}
	out := []string{}
	for _, p := range ps {
		if n, ok := p.(*wire.NotifyPayload); ok {
			a, ok := abbrev[n.NotifyType]
			if !ok {
				a = n.NotifyType.String()
			}
			out = append(out, "N("+a+")")
			continue
		}
		out = append(out, p.Type().String())
	}
	return out
}

func loadVectors(t *testing.T) map[string]vectorFile {
	t.Helper()
	files, err := filepath.Glob("testdata/strongswan/*/vectors.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no strongSwan vectors under testdata/strongswan (glob error %v): the regression test needs them", err)
	}
	out := map[string]vectorFile{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vectorFile
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(filepath.Dir(f))] = v
	}
	return out
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStrongSwanVectors(t *testing.T) {
	sets := loadVectors(t)
	for name, v := range sets {
		t.Run(name, func(t *testing.T) {
			var suite ikecrypto.IKESuite
			haveSuite := false
			ikeFrames, opened := 0, 0
			for _, f := range v.Frames {
				if f.Kind != "IKE" {
					continue
				}
				ikeFrames++
				t.Run(fmt.Sprintf("frame%d", f.Frame), func(t *testing.T) {
					raw := unhex(t, f.IKEMessage)
					if f.NonESPMarker {
						// The capture tool strips the marker; accept it either way.
						if ike, ok := wire.StripNonESPMarker(raw); ok {
							raw = ike
						}
					}
					m, err := wire.DecodeMessage(raw)
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					h := m.Header
					if h.Exchange.String() != f.Exchange || h.MsgID != f.MessageID || uint8(h.Flags) != f.Flags || h.Flags.Response() == f.Request {
						t.Fatalf("header %v, capture says %s msgid %d flags %#x request %v", h, f.Exchange, f.MessageID, f.Flags, f.Request)
					}
					if h.Version != wire.Version || int(h.Length) != len(raw) {
						t.Fatalf("header version %#x length %d for %d octets", h.Version, h.Length, len(raw))
					}
					re, err := m.AppendTo(nil)
					if err != nil || !bytes.Equal(re, raw) {
						t.Fatalf("re-encode differs (err %v)\n got %x\nwant %x", err, re, raw)
					}
					if !h.Exchange.Protected() {
						if got := swanNames(t, m.Payloads); strings.Join(got, " ") != strings.Join(f.Payloads, " ") {
							t.Fatalf("payloads %v, capture says %v", got, f.Payloads)
						}
						if err := m.Verify(); err != nil {
							t.Fatalf("verify: %v", err)
						}
						if sa, ok := wire.First[*wire.SAPayload](m.Payloads); ok && h.Flags.Response() && h.MsgID == 0 {
							s, err := ikecrypto.IKESuiteFromProposal(sa.Proposals[0])
							if err != nil {
								t.Fatalf("suite from %v: %v", sa.Proposals[0], err)
							}
							suite, haveSuite = s, true
						}
						return
					}
					sk, ok := m.Protected().(*wire.EncryptedPayload)
					if !ok || len(m.Payloads) != 1 {
						t.Fatalf("protected message payloads %v, want [SK]", swanNames(t, m.Payloads))
					}
					if uint8(sk.NextPayload) != f.FirstInner {
						t.Fatalf("SK next payload %v, capture says %d", sk.NextPayload, f.FirstInner)
					}
					if !haveSuite {
						t.Fatal("no IKE_SA_INIT response decoded before the protected frames")
					}
					keys := v.IKESAs[f.IKESA-1]
					ek, ik := keys.SKei, keys.SKai
					if f.Key == "SK_er" {
						ek, ik = keys.SKer, keys.SKar
					}
					c, err := ikecrypto.NewSKCipher(suite, unhex(t, ek), unhex(t, ik))
					if err != nil {
						t.Fatalf("cipher: %v", err)
					}
					plain, err := m.Open(nil, c)
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					opened++
					if f.Decrypted != nil && !bytes.Equal(plain, unhex(t, *f.Decrypted)) {
						t.Fatalf("plaintext\n got %x\nwant %s", plain, *f.Decrypted)
					}
					if got := swanNames(t, m.Inner); strings.Join(got, " ") != strings.Join(f.Payloads, " ") {
						t.Fatalf("inner payloads %v, capture says %v", got, f.Payloads)
					}
					if err := m.Verify(); err != nil {
						t.Fatalf("verify: %v", err)
					}
					chain, err := wire.AppendPayloads(nil, m.Inner)
					if err != nil || !bytes.Equal(chain, plain) {
						t.Fatalf("inner re-encode differs (err %v)\n got %x\nwant %x", err, chain, plain)
					}
					// Re-seal with the captured IV: strongSwan pads minimally with
					// zeros for AEAD; for CBC it pads to the block with random octets,
					// so compare only the length there.
					resealed, err := wire.AppendProtected(nil, h, m.Inner, c, unhex(t, f.IV))
					if err != nil {
						t.Fatalf("seal: %v", err)
					}
					if c.BlockSize() == 1 && !bytes.Equal(resealed, raw) {
						t.Fatalf("re-sealed message differs\n got %x\nwant %x", resealed, raw)
					}
					if len(resealed) > len(raw) {
						t.Fatalf("re-sealed message is %d octets, strongSwan's %d", len(resealed), len(raw))
					}
					m2, err := wire.DecodeMessage(resealed)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := m2.Open(nil, c); err != nil {
						t.Fatalf("open re-sealed: %v", err)
					}
				})
			}
			if ikeFrames == 0 || opened == 0 {
				t.Fatalf("%d IKE frames, %d opened: the vectors were not exercised", ikeFrames, opened)
			}
		})
	}
}
