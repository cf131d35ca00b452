package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
	"pgregory.net/rapid"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control/controltest"
)

func genString() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.String(),
		rapid.StringMatching(`[a-z0-9.@%:/\[\]-]{0,20}`),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }), // invalid UTF-8 too
		rapid.SampledFrom([]string{"", "\"", "\\", "\x00\x1f", "<&>", "\u2028\u2029", "é€𝄞", "\xff\xfe"}),
	)
}

func genStrings() *rapid.Generator[[]string] {
	return rapid.OneOf(rapid.Just([]string(nil)), rapid.SliceOfN(genString(), 0, 3))
}

func genChild() *rapid.Generator[control.ChildSA] {
	return rapid.Custom(func(t *rapid.T) control.ChildSA {
		return control.ChildSA{
			Name: genString().Draw(t, "name"), UniqueID: rapid.Uint64().Draw(t, "id"), ReqID: rapid.Uint32().Draw(t, "reqid"),
			State: genString().Draw(t, "state"), Mode: genString().Draw(t, "mode"), Protocol: genString().Draw(t, "proto"),
			Encap: rapid.Bool().Draw(t, "encap"), SPIIn: control.SPI32(rapid.Uint32().Draw(t, "spiin")),
			SPIOut: control.SPI32(rapid.Uint32().Draw(t, "spiout")), Proposal: genString().Draw(t, "prop"),
			BytesIn: rapid.Uint64().Draw(t, "bi"), PacketsIn: rapid.Uint64().Draw(t, "pi"), BytesOut: rapid.Uint64().Draw(t, "bo"),
			PacketsOut: rapid.Uint64().Draw(t, "po"), Installed: rapid.Int64().Draw(t, "inst"), RekeyAt: rapid.Int64().Draw(t, "rk"),
			ExpireAt: rapid.Int64().Draw(t, "exp"), LocalTS: genStrings().Draw(t, "lts"), RemoteTS: genStrings().Draw(t, "rts"),
		}
	})
}

func genIKESA() *rapid.Generator[control.IKESA] {
	return rapid.Custom(func(t *rapid.T) control.IKESA {
		sa := control.IKESA{
			Conn: genString().Draw(t, "conn"), UniqueID: rapid.Uint64().Draw(t, "id"), State: genString().Draw(t, "state"),
			Initiator: rapid.Bool().Draw(t, "init"), SPIi: control.SPI64(rapid.Uint64().Draw(t, "spii")),
			SPIr: control.SPI64(rapid.Uint64().Draw(t, "spir")), LocalHost: genString().Draw(t, "lh"),
			LocalPort: rapid.Uint16().Draw(t, "lp"), LocalID: genString().Draw(t, "lid"), RemoteHost: genString().Draw(t, "rh"),
			RemotePort: rapid.Uint16().Draw(t, "rp"), RemoteID: genString().Draw(t, "rid"), NATLocal: rapid.Bool().Draw(t, "natl"),
			NATRemote: rapid.Bool().Draw(t, "natr"), Proposal: genString().Draw(t, "prop"),
			Established: rapid.Int64().Draw(t, "est"), RekeyAt: rapid.Int64().Draw(t, "rekey"),
		}
		if rapid.Bool().Draw(t, "haschildren") {
			sa.Children = rapid.SliceOfN(genChild(), 0, 3).Draw(t, "children")
		}
		return sa
	})
}

// AppendJSON writes byte for byte what encoding/json writes, so the hand encoder and the
// reflective decoder on the client always agree.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sa := genIKESA().Draw(t, "sa")
		got := sa.AppendJSON(nil)
		want, err := json.Marshal(&sa)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", got, want)
		}
		var back control.IKESA
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendJSON output does not decode: %v\n%s", err, got)
		}
	})
}

func TestSPIText(t *testing.T) {
	var s64 control.SPI64
	var s32 control.SPI32
	if err := json.Unmarshal([]byte(`"00000000000000ab"`), &s64); err != nil || s64 != 0xab || s64.String() != "00000000000000ab" {
		t.Errorf("SPI64: %v %v", s64, err)
	}
	if err := json.Unmarshal([]byte(`"c0ffee01"`), &s32); err != nil || s32 != 0xc0ffee01 || s32.String() != "c0ffee01" {
		t.Errorf("SPI32: %v %v", s32, err)
	}
	if err := json.Unmarshal([]byte(`"xyz"`), &s32); err == nil {
		t.Error("SPI32 accepted xyz")
	}
}

const benchSAs = 100_000

// BenchmarkEncode100kSAs: the daemon's side of list-sas for a concentrator — encoding
// 100,000 IKE SAs (two Child SAs each) with AppendJSON.
func BenchmarkEncode100kSAs(b *testing.B) {
	var sa control.IKESA
	buf := make([]byte, 0, 4096)
	var total int
	for b.Loop() {
		total = 0
		for i := range benchSAs {
			controltest.SampleSA(i, &sa)
			buf = sa.AppendJSON(buf[:0])
			total += len(buf)
		}
	}
	b.ReportMetric(float64(total)/float64(benchSAs), "bytes/SA")
}

// BenchmarkEncode100kSAsEncodingJSON is the reflective baseline for comparison.
func BenchmarkEncode100kSAsEncodingJSON(b *testing.B) {
	var sa control.IKESA
	enc := json.NewEncoder(io.Discard)
	for b.Loop() {
		for i := range benchSAs {
			controltest.SampleSA(i, &sa)
			if err := enc.Encode(&sa); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchList(b *testing.B, decode bool) {
	f := controltest.NewFake()
	f.SAFunc, f.SACount = controltest.SampleSA, benchSAs
	srv, err := control.Listen(controltest.SocketPath(b), f, control.Options{Authorize: func(*unix.Ucred) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c := control.NewClient(srv.Path())
	for b.Loop() {
		n := 0
		var err error
		if decode {
			err = c.ListSAs(ctx, control.SAFilter{}, func(*control.IKESA) error { n++; return nil })
		} else {
			n, err = c.ListSAsRaw(ctx, control.SAFilter{}, func([]byte) error { return nil })
		}
		if err != nil || n != benchSAs {
			b.Fatalf("listed %d, %v", n, err)
		}
	}
}

// BenchmarkListSAs100kRaw: 100,000 SAs over the socket, the client copying raw records.
func BenchmarkListSAs100kRaw(b *testing.B) { benchList(b, false) }

// BenchmarkListSAs100kDecoded: the same with every record decoded (the table view).
func BenchmarkListSAs100kDecoded(b *testing.B) { benchList(b, true) }

// DecodeIKESA reads AppendJSON's output exactly as encoding/json does.
func TestDecodeIKESAMatchesEncodingJSON(t *testing.T) {
	var reused control.IKESA
	rapid.Check(t, func(t *rapid.T) {
		sa := genIKESA().Draw(t, "sa")
		raw := sa.AppendJSON(nil)
		var want control.IKESA
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		// Pretty-printed input (with whitespace) decodes the same.
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, raw, "", "  "); err != nil {
			t.Fatal(err)
		}
		for _, in := range [][]byte{raw, pretty.Bytes()} {
			if err := control.DecodeIKESA(in, &reused); err != nil {
				t.Fatalf("DecodeIKESA: %v\n%s", err, in)
			}
			if !cmp.Equal(want, reused, cmpopts.EquateEmpty()) {
				t.Fatalf("DecodeIKESA (-encoding/json +ours):\n%s", cmp.Diff(want, reused, cmpopts.EquateEmpty()))
			}
		}
	})
}

func TestDecodeIKESAErrors(t *testing.T) {
	var sa control.IKESA
	for _, in := range []string{
		``, `{`, `[]`, `{"conn":1}`, `{"id":-1}`, `{"id":1.5}`, `{"spi_i":"xyz"}`, `{"initiator":yes}`,
		`{"children":[{"spi_in":"123456789"}]}`, `{"conn":"a"} x`, `{"conn":"\u12"}`, `{"conn":"a` + "\x01" + `"}`,
		`{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"local_port":65536}`, `{"id":01}`,
	} {
		if err := control.DecodeIKESA([]byte(in), &sa); err == nil {
			t.Errorf("DecodeIKESA(%q) accepted: %+v", in, sa)
		}
	}
	// Unknown keys of any shape are skipped.
	if err := control.DecodeIKESA([]byte(`{"future":{"a":[1,2.5e3,"x",null,true]},"conn":"ab"}`), &sa); err != nil || sa.Conn != "ab" {
		t.Errorf("unknown key: %v %+v", err, sa)
	}
}

func FuzzDecodeIKESA(f *testing.F) {
	var sa control.IKESA
	controltest.SampleSA(3, &sa)
	f.Add(sa.AppendJSON(nil))
	f.Add([]byte(`{"conn":"\ud83d\ude00\ud800","children":[{"local_ts":["a"]}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got control.IKESA
		_ = control.DecodeIKESA(in, &got) // must not panic
	})
}

func BenchmarkDecodeOneSA(b *testing.B) {
	var sa control.IKESA
	controltest.SampleSA(5, &sa)
	raw := sa.AppendJSON(nil)
	for b.Loop() {
		if err := control.DecodeIKESA(raw, &sa); err != nil {
			b.Fatal(err)
		}
	}
}
