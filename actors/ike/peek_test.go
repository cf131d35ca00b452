package ike_test

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
)

// vectorFrame is one IKE message of the strongSwan captures in wire/testdata.
type vectorFrame struct {
	Frame      int    `json:"frame"`
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	Kind       string `json:"kind"`
	Exchange   string `json:"exchange"`
	Request    bool   `json:"request"`
	MessageID  uint32 `json:"message_id"`
	Flags      int    `json:"flags"`
	IKEMessage string `json:"ike_message"`
}

func loadFrames(t *testing.T) []vectorFrame {
	t.Helper()
	files, err := filepath.Glob("../../wire/testdata/strongswan/*/vectors.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("strongSwan vectors not found (%v): the test needs wire/testdata/strongswan", err)
	}
	var out []vectorFrame
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Frames []vectorFrame `json:"frames"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, fr := range v.Frames {
			if fr.Kind == "IKE" {
				out = append(out, fr)
			}
		}
	}
	return out
}

// TestPeekStrongSwan classifies every real strongSwan message: IKE_SA_INIT requests
// start a family, everything else routes by the receiver's own SPI.
func TestPeekStrongSwan(t *testing.T) {
	frames := loadFrames(t)
	if len(frames) < 20 {
		t.Fatalf("only %d IKE frames in the vectors", len(frames))
	}
	for _, fr := range frames {
		msg, err := hex.DecodeString(fr.IKEMessage)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ike.Peek(msg)
		if err != nil {
			t.Fatalf("frame %d: %v", fr.Frame, err)
		}
		if p.MsgID != fr.MessageID || p.Response == fr.Request || wire.ExchangeType(p.Exchange).String() != fr.Exchange {
			t.Errorf("frame %d: peeked %+v, capture says %s request=%v id %d", fr.Frame, p, fr.Exchange, fr.Request, fr.MessageID)
		}
		wantNew := fr.Exchange == "IKE_SA_INIT" && fr.Request
		if (p.Kind == ike.PeekNewSA) != wantNew {
			t.Errorf("frame %d: kind %v", fr.Frame, p.Kind)
		}
		// The receiver's SPI: SPIr if the sender is the original initiator (I flag).
		want := p.SPIi
		if fr.Flags&0x08 != 0 {
			want = p.SPIr
		}
		if !wantNew && p.LocalSPI != want {
			t.Errorf("frame %d: LocalSPI %v, want %v", fr.Frame, p.LocalSPI, want)
		}
	}
}

func TestPeekRejects(t *testing.T) {
	good, _ := hex.DecodeString("d77925670b93638a00000000000000002120220800000000000000e8")
	cases := map[string][]byte{
		"short":          good[:20],
		"length":         good, // header says 232 octets
		"ikev1":          append(append([]byte{}, good[:17]...), append([]byte{0x10}, good[18:]...)...),
		"zero SPIi":      append(make([]byte, 8), good[8:]...),
		"init, msgid 1":  append(append([]byte{}, good[:23]...), append([]byte{1}, good[24:]...)...),
		"no SPI of ours": append(append([]byte{}, good[:18]...), append([]byte{35, 0x08}, good[20:]...)...),
	}
	for name, b := range cases {
		b := append([]byte(nil), b...)
		if len(b) >= 28 && name != "length" {
			b[24], b[25], b[26], b[27] = 0, 0, 0, byte(len(b))
		}
		if _, err := ike.Peek(b); err == nil {
			t.Errorf("%s: Peek accepted % x", name, b)
		}
	}
}

// TestResponderStrongSwanInit feeds strongSwan's real IKE_SA_INIT request to a responder
// family configured like the capture's B: it must select the same proposal and answer
// with SA, KE, Nr and the notifies strongSwan expects.
func TestResponderStrongSwanInit(t *testing.T) {
	frames := loadFrames(t)
	msg, _ := hex.DecodeString(frames[0].IKEMessage)
	cfg := testConn(addrB, addrA, "203.0.113.1/32", "198.51.100.1/32")
	f, effects, err := ike.NewResponder(time.Now(), []*ike.Connection{cfg}, newEnv(1, 0xb0000000), ike.Options{},
		ike.PacketReceived{Local: netip.MustParseAddrPort("192.0.2.2:500"), Remote: netip.MustParseAddrPort("192.0.2.1:500"), Data: msg})
	if err != nil {
		t.Fatal(err)
	}
	var resp []byte
	for _, e := range effects {
		if w, ok := e.(ike.Work); ok {
			for _, e2 := range f.Step(time.Now(), ike.WorkDone{Token: w.Token, Result: w.Run()}) {
				if s, ok := e2.(ike.SendDatagram); ok {
					resp = s.Data
				}
			}
		}
	}
	if resp == nil {
		t.Fatal("no IKE_SA_INIT response")
	}
	m, err := wire.DecodeMessage(resp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range m.Payloads {
		got = append(got, p.Type().String())
		if sa, ok := p.(*wire.SAPayload); ok && (len(sa.Proposals) != 1 || sa.Proposals[0].Num != 1) {
			t.Errorf("SA payload %+v", sa)
		}
	}
	if len(got) < 5 || got[0] != "SA" || got[1] != "KE" || got[2] != "No" {
		t.Errorf("response payloads %v", got)
	}
	if m.Header.SPIi != 0xd77925670b93638a || m.Header.SPIr == 0 || !m.Header.Flags.Response() {
		t.Errorf("response header %v", m.Header)
	}
}

// FuzzPeek: Peek never panics and accepts only what has a plausible IKE header.
func FuzzPeek(f *testing.F) {
	good, _ := hex.DecodeString("d77925670b93638a00000000000000002120220800000000000000e8")
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ike.Peek(b)
		if err == nil && (len(b) < 28 || p.SPIi == 0) {
			t.Fatalf("accepted %x as %+v", b, p)
		}
	})
}
