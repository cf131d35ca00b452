package pcap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const s1Capture = "../../../../wire/testdata/strongswan/S1-x25519-gcm/capture.pcap"

// TestReadStrongSwanS1 checks the reader against the frame table in
// wire/testdata/strongswan/S1-x25519-gcm/keys.md (made with tshark).
func TestReadStrongSwanS1(t *testing.T) {
	b, err := os.ReadFile(s1Capture)
	if err != nil {
		t.Fatalf("S1 capture (from the repository's wire/testdata): %v", err)
	}
	ds, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 22 {
		t.Fatalf("got %d datagrams, want 22", len(ds))
	}
	ps := Classify(ds)
	type want struct {
		frame  int
		sport  uint16
		exch   Exchange
		msgID  uint32
		flags  string
		length uint32
		spiI   uint64
	}
	// From keys.md: frame, UDP source port, exchange, msg ID, flags, IKE length.
	table := []want{
		{1, 500, IKESAInit, 0, "I", 232, 0xd77925670b93638a},
		{2, 500, IKESAInit, 0, "R", 240, 0xd77925670b93638a},
		{3, 4500, IKEAuth, 1, "I", 237, 0xd77925670b93638a},
		{4, 4500, IKEAuth, 1, "R", 193, 0xd77925670b93638a},
		{5, 4500, CreateChildSA, 2, "I", 189, 0xd77925670b93638a},
		{6, 4500, CreateChildSA, 2, "R", 177, 0xd77925670b93638a},
		{7, 4500, Informational, 3, "I", 69, 0xd77925670b93638a},
		{8, 4500, Informational, 3, "R", 69, 0xd77925670b93638a},
		{9, 4500, CreateChildSA, 0, "", 181, 0xd77925670b93638a},
		{10, 4500, CreateChildSA, 0, "IR", 181, 0xd77925670b93638a},
		{11, 4500, Informational, 1, "", 65, 0xd77925670b93638a},
		{12, 4500, Informational, 1, "IR", 57, 0xd77925670b93638a},
		{19, 4500, Informational, 0, "", 69, 0xa4bc74dc425b7326},
		{20, 4500, Informational, 0, "IR", 69, 0xa4bc74dc425b7326},
		{21, 4500, Informational, 0, "I", 65, 0xa4bc74dc425b7326},
		{22, 4500, Informational, 0, "R", 57, 0xa4bc74dc425b7326},
	}
	ike := IKEMessages(ps)
	if len(ike) != len(table) {
		t.Fatalf("got %d IKE messages, want %d", len(ike), len(table))
	}
	for i, w := range table {
		p := ike[i]
		flags := ""
		if p.Header.Initiator() {
			flags += "I"
		}
		if p.Header.Response() {
			flags += "R"
		}
		got := fmt.Sprintf("%d %d %v %d %s %d %x", p.Frame, p.Src.Port(), p.Header.Exchange, p.Header.MsgID, flags, p.Header.Length, p.Header.SPIi)
		exp := fmt.Sprintf("%d %d %v %d %s %d %x", w.frame, w.sport, w.exch, w.msgID, w.flags, w.length, w.spiI)
		if got != exp {
			t.Errorf("IKE message %d: got %s, want %s", i, got, exp)
		}
		if int(p.Header.Length) != len(p.IKE) {
			t.Errorf("frame %d: IKE slice %d bytes, header says %d (marker not stripped?)", p.Frame, len(p.IKE), p.Header.Length)
		}
	}
	var esp []uint32
	for _, p := range ps {
		if p.Kind == KindESP {
			esp = append(esp, p.ESPSPI)
		}
	}
	wantESP := []uint32{0x5114d257, 0xf818be1d, 0x5114d257, 0xf818be1d, 0x5114d257, 0xf818be1d}
	if fmt.Sprint(esp) != fmt.Sprint(wantESP) {
		t.Errorf("ESP SPIs %x, want %x", esp, wantESP)
	}
	if ds[0].Src.String() != "192.0.2.1:500" || ds[0].Dst.String() != "192.0.2.2:500" {
		t.Errorf("frame 1 %v -> %v", ds[0].Src, ds[0].Dst)
	}
}

func TestReadTruncatedNeverPanics(t *testing.T) {
	b, err := os.ReadFile(s1Capture)
	if err != nil {
		t.Fatal(err)
	}
	full, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		ds, err := Read(b[:n])
		if err == nil && n != len(b) {
			// Only a cut exactly at a record boundary is a valid shorter file.
			if len(ds) > len(full) {
				t.Fatalf("cut at %d: %d datagrams from a prefix", n, len(ds))
			}
			continue
		}
		if n >= globalHdrLen && !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: error %v, want ErrTruncated", n, err)
		}
	}
}

func TestReadRejects(t *testing.T) {
	if _, err := Read([]byte("not a pcap file at all, clearly")); !errors.Is(err, ErrBadMagic) {
		t.Errorf("bad magic: %v", err)
	}
	hdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 228, 0, 0, 0}
	if _, err := Read(hdr); !errors.Is(err, ErrLinkType) {
		t.Errorf("link type 228: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	if b, err := os.ReadFile(s1Capture); err == nil {
		f.Add(b)
	}
	matches, _ := filepath.Glob("../../../../wire/testdata/strongswan/*/capture.pcap")
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, _ := Read(b)
		for _, p := range Classify(ds) {
			if p.Kind == KindIKE && int(p.Header.Length) > len(p.IKE) {
				t.Fatalf("header length %d beyond message %d", p.Header.Length, len(p.IKE))
			}
		}
	})
}

func TestNotifiesS1(t *testing.T) {
	b, err := os.ReadFile(s1Capture)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	ike := IKEMessages(Classify(ds))
	// keys.md: frame 1 N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) N(HASH_ALG) N(REDIR_SUP);
	// frame 2 adds N(CHDLESS_SUP) N(MULT_AUTH) instead of REDIR_SUP; frame 3 is SK.
	for i, want := range [][]uint16{
		{16388, 16389, 16430, 16431, 16406},        // REDIRECT_SUPPORTED 16406 (RFC 5685)
		{16388, 16389, 16430, 16431, 16418, 16404}, // CHILDLESS_IKEV2_SUPPORTED 16418 (RFC 6023)
		nil,
	} {
		if got := Notifies(ike[i].IKE); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frame %d notifies %v, want %v", ike[i].Frame, got, want)
		}
	}
	// Every truncation of a message is survived.
	for n := 0; n < len(ike[1].IKE); n++ {
		_ = Notifies(ike[1].IKE[:n])
	}
}
