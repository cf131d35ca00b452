package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// charonCorpus is the decode regression set recorded from charon↔charon runs by the
// interop suite (testdata/charon, see its README): every IKE message exactly as
// strongSwan 5.9.8 sent it, non-ESP marker stripped, listed in MANIFEST.txt with the
// header facts and the notifies of its outer chain.
type charonMessage struct {
	path     string
	exchange string
	msgID    uint32
	flags    string
	first    PayloadType
	notifies string
}

func loadCharonCorpus(tb testing.TB) []charonMessage {
	tb.Helper()
	f, err := os.Open("testdata/charon/MANIFEST.txt")
	if err != nil {
		tb.Fatalf("charon corpus missing (recorded by cmd/internal/interop -update-corpus): %v", err)
	}
	defer f.Close()
	var out []charonMessage
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 6 {
			tb.Fatalf("MANIFEST.txt:%d: want 6 fields, got %q", line, sc.Text())
		}
		kv := func(s, key string) string {
			v, ok := strings.CutPrefix(s, key+"=")
			if !ok {
				tb.Fatalf("MANIFEST.txt:%d: want %s=…, got %q", line, key, s)
			}
			return v
		}
		id, err := strconv.ParseUint(kv(fields[2], "msgid"), 10, 32)
		if err != nil {
			tb.Fatalf("MANIFEST.txt:%d: %v", line, err)
		}
		first, err := strconv.Atoi(kv(fields[4], "first"))
		if err != nil {
			tb.Fatalf("MANIFEST.txt:%d: %v", line, err)
		}
		out = append(out, charonMessage{
			path: filepath.Join("testdata/charon", fields[0]), exchange: fields[1], msgID: uint32(id),
			flags: kv(fields[3], "flags"), first: PayloadType(first), notifies: kv(fields[5], "notifies"),
		})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) < 20 {
		tb.Fatalf("charon corpus has only %d messages", len(out))
	}
	return out
}

// TestCharonCorpus decodes every message charon sent in the interop runs, checks the
// header and outer notifies against the manifest, verifies the meanings and re-encodes
// the message byte for byte.
func TestCharonCorpus(t *testing.T) {
	for _, cm := range loadCharonCorpus(t) {
		t.Run(strings.TrimPrefix(cm.path, "testdata/charon/"), func(t *testing.T) {
			raw, err := os.ReadFile(cm.path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := DecodeMessage(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			h := m.Header
			if got := h.Exchange.String(); got != cm.exchange {
				t.Errorf("exchange %s, manifest says %s", got, cm.exchange)
			}
			if h.MsgID != cm.msgID {
				t.Errorf("message ID %d, manifest says %d", h.MsgID, cm.msgID)
			}
			flags := ""
			if h.Flags.Initiator() {
				flags += "I"
			}
			if h.Flags.Response() {
				flags += "R"
			}
			if flags == "" {
				flags = "-"
			}
			if flags != cm.flags {
				t.Errorf("flags %s, manifest says %s", flags, cm.flags)
			}
			if h.NextPayload != cm.first {
				t.Errorf("first payload %v, manifest says %d", h.NextPayload, cm.first)
			}
			var ns []string
			for _, n := range Notifies(nil, m.Payloads) {
				ns = append(ns, fmt.Sprint(uint16(n.NotifyType)))
			}
			if got := strings.Join(ns, ","); (got == "" && cm.notifies != "-") || (got != "" && got != cm.notifies) {
				t.Errorf("outer notifies %q, manifest says %q", got, cm.notifies)
			}
			if err := m.Verify(); err != nil {
				t.Errorf("verify: %v", err)
			}
			out, err := m.AppendTo(nil)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(out, raw) {
				t.Errorf("re-encoding differs from what charon sent:\n got %x\nwant %x", out, raw)
			}
		})
	}
}
