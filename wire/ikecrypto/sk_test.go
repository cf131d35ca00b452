package ikecrypto

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// skSuites are the SK protections cygnet offers.
var skSuites = []IKESuite{
	{Encr: wire.EncrAESGCM16, EncrKeyLen: 128, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519},
	{Encr: wire.EncrAESGCM16, EncrKeyLen: 256, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519},
	{Encr: wire.EncrChaCha20Poly1305, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519},
	{Encr: wire.EncrAESCBC, EncrKeyLen: 128, Integ: wire.IntegHMACSHA2_256_128, PRF: wire.PRFHMACSHA2_256, KE: wire.KEMODP2048},
	{Encr: wire.EncrAESCBC, EncrKeyLen: 256, Integ: wire.IntegHMACSHA2_384_192, PRF: wire.PRFHMACSHA2_384, KE: wire.KEECP384},
	{Encr: wire.EncrAESCBC, EncrKeyLen: 256, Integ: wire.IntegHMACSHA2_512_256, PRF: wire.PRFHMACSHA2_512, KE: wire.KEECP521},
}

func suiteName(s IKESuite) string {
	return fmt.Sprintf("%s-%d-%d", encrs[s.Encr].name, s.EncrKeyLen, s.Integ)
}

// pairFor derives keys for a suite from fixed inputs and returns the initiator's
// outbound and the responder's inbound cipher (the two ends of one direction).
func pairFor(t testing.TB, s IKESuite) (out, in wire.SKCipher, k *IKEKeys) {
	t.Helper()
	k, err := DeriveIKEKeys(s, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32), 11, 22)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = k.Outbound(s, true); err != nil {
		t.Fatal(err)
	}
	if in, err = k.Inbound(s, false); err != nil {
		t.Fatal(err)
	}
	return out, in, k
}

// sealed builds header ‖ IV ‖ ct ‖ ICV for a plaintext padded to the block size.
func sealed(c wire.SKCipher, header []byte, payload []byte, ivByte byte) (msg, plain []byte) {
	plain = append([]byte(nil), payload...)
	padLen := (c.BlockSize() - (len(plain)+1)%c.BlockSize()) % c.BlockSize()
	plain = append(plain, make([]byte, padLen)...)
	plain = append(plain, byte(padLen))
	iv := bytes.Repeat([]byte{ivByte}, c.IVSize())
	return c.Seal(append([]byte(nil), header...), iv, plain), plain
}

func TestSKRoundTripAndTamper(t *testing.T) {
	header := []byte("0123456789abcdefIKEheader...SKhd")
	payload := bytes.Repeat([]byte("payload."), 37)
	for _, s := range skSuites {
		t.Run(suiteName(s), func(t *testing.T) {
			out, in, k := pairFor(t, s)
			msg, plain := sealed(out, header, payload, 0x5a)
			if len(msg) != len(header)+out.IVSize()+len(plain)+out.ICVSize() {
				t.Fatalf("sealed length %d, want %d", len(msg), len(header)+out.IVSize()+len(plain)+out.ICVSize())
			}
			got, err := in.Open([]byte("dst:"), msg, len(header))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if !bytes.Equal(got, append([]byte("dst:"), plain...)) {
				t.Fatalf("open = %q, want dst: ‖ plaintext", got)
			}
			// Any flipped bit anywhere (header = AAD / ICV coverage, IV, ciphertext,
			// ICV) makes Open fail with ErrIntegrity.
			for i := range msg {
				bad := bytes.Clone(msg)
				bad[i] ^= 0x10
				if _, err := in.Open(nil, bad, len(header)); !errors.Is(err, ErrIntegrity) {
					t.Fatalf("bit flipped at %d of %d: err %v, want ErrIntegrity", i, len(msg), err)
				}
			}
			// The wrong direction's keys do not open it.
			wrong, _ := k.Inbound(s, true)
			if _, err := wrong.Open(nil, msg, len(header)); !errors.Is(err, ErrIntegrity) {
				t.Fatalf("wrong direction: err %v, want ErrIntegrity", err)
			}
			// In-place sealing gives the same bytes.
			buf := make([]byte, len(header), len(msg)+16)
			copy(buf, header)
			tail := buf[len(header)+out.IVSize() : len(header)+out.IVSize()+len(plain)]
			copy(tail, plain)
			inPlace := out.Seal(buf, bytes.Repeat([]byte{0x5a}, out.IVSize()), tail)
			if !bytes.Equal(inPlace, msg) {
				t.Fatal("in-place Seal differs")
			}
		})
	}
}

// Open never panics and refuses every truncation and every body offset it cannot use.
func TestSKOpenMalformed(t *testing.T) {
	header := make([]byte, 32)
	for _, s := range skSuites {
		_, in, _ := pairFor(t, s)
		out, _, _ := pairFor(t, s)
		msg, _ := sealed(out, header, []byte("x"), 1)
		for n := 0; n < len(msg); n++ {
			for _, body := range []int{-1, 0, 31, 32, n, n + 1} {
				if _, err := in.Open(nil, msg[:n], body); err == nil {
					t.Fatalf("%s: Open(msg[:%d], body %d) succeeded", suiteName(s), n, body)
				}
			}
		}
		if in.BlockSize() > 1 {
			// A ciphertext that is not a whole number of blocks is a length error.
			odd := append(bytes.Clone(msg[:32+16+16]), make([]byte, 5+in.ICVSize())...)
			if _, err := in.Open(nil, odd, 32); !errors.Is(err, ErrSKLength) {
				t.Fatalf("%s: ragged ciphertext: %v, want ErrSKLength", suiteName(s), err)
			}
		}
	}
}

func TestNewSKCipherRejects(t *testing.T) {
	gcm := IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 256}
	cbc := IKESuite{Encr: wire.EncrAESCBC, EncrKeyLen: 128, Integ: wire.IntegHMACSHA2_256_128}
	for _, c := range []struct {
		name        string
		s           IKESuite
		encr, integ int
	}{
		{"gcm key without salt", gcm, 32, 0},
		{"gcm with integ", IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 256, Integ: wire.IntegHMACSHA2_256_128}, 36, 32},
		{"gcm 100-bit", IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 100}, 36, 0},
		{"chacha with key length 128", IKESuite{Encr: wire.EncrChaCha20Poly1305, EncrKeyLen: 128}, 20, 0},
		{"cbc without integ", IKESuite{Encr: wire.EncrAESCBC, EncrKeyLen: 128}, 16, 0},
		{"cbc short integ key", cbc, 16, 16},
		{"cbc long encr key", cbc, 32, 32},
		{"aes-ctr", IKESuite{Encr: wire.EncrAESCTR, EncrKeyLen: 128, Integ: wire.IntegHMACSHA2_256_128}, 20, 32},
		{"integ md5", IKESuite{Encr: wire.EncrAESCBC, EncrKeyLen: 128, Integ: 1}, 16, 16},
	} {
		if _, err := NewSKCipher(c.s, make([]byte, c.encr), make([]byte, c.integ)); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// FuzzSKOpen: Open never panics on any message and body offset, and whatever it
// accepts re-seals to the same message.
func FuzzSKOpen(f *testing.F) {
	for i, s := range skSuites {
		out, _, _ := pairFor(f, s)
		msg, _ := sealed(out, make([]byte, 32), []byte("seed payload"), byte(i))
		f.Add(uint8(i), msg, 32)
	}
	f.Fuzz(func(t *testing.T, which uint8, msg []byte, body int) {
		s := skSuites[int(which)%len(skSuites)]
		out, in, _ := pairFor(t, s)
		plain, err := in.Open(nil, msg, body)
		if err != nil {
			return
		}
		iv := msg[body : body+in.IVSize()]
		if re := out.Seal(bytes.Clone(msg[:body]), iv, plain); !bytes.Equal(re, msg) {
			t.Fatalf("accepted message does not re-seal to itself")
		}
	})
}

// BenchmarkSK seals and opens a 300-octet IKE_AUTH-sized inner chain per suite.
func BenchmarkSK(b *testing.B) {
	header := make([]byte, 32)
	payload := make([]byte, 300)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(payload)
	for _, s := range skSuites {
		out, in, _ := pairFor(b, s)
		msg, plain := sealed(out, header, payload, 9)
		iv := bytes.Repeat([]byte{9}, out.IVSize())
		b.Run("Seal/"+suiteName(s), func(b *testing.B) {
			buf := make([]byte, 0, len(msg))
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				buf = out.Seal(append(buf[:0], header...), iv, plain)
			}
		})
		b.Run("Open/"+suiteName(s), func(b *testing.B) {
			dst := make([]byte, 0, len(plain))
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := in.Open(dst[:0], msg, len(header)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// An idle IKE SA's SK ciphers must stay small (a concentrator holds tens of thousands):
// AES-GCM keeps its key, not the ~770-octet cipher state.
func TestIdleSKCipherHeap(t *testing.T) {
	for _, s := range skSuites[:3] { // the AEADs
		t.Run(suiteName(s), func(t *testing.T) {
			const n = 2000
			key := bytes.Repeat([]byte{5}, s.EncrKeyLen/8+4)
			if s.Encr == wire.EncrChaCha20Poly1305 {
				key = bytes.Repeat([]byte{5}, 36)
			}
			keep := make([]wire.SKCipher, n)
			before := heapAlloc()
			for i := range keep {
				c, err := NewSKCipher(s, key, nil)
				if err != nil {
					t.Fatal(err)
				}
				sealed(c, make([]byte, 32), []byte("used once"), 1)
				keep[i] = c
			}
			per := float64(heapAlloc()-before) / n
			if per > 200 {
				t.Errorf("an idle %s SK cipher holds %.0f octets of heap, want at most 200", suiteName(s), per)
			}
			runtime.KeepAlive(keep)
		})
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSKEager is BenchmarkSK's AES-GCM with the cipher state kept between calls
// (as before the SK ciphers became lazy): the difference is what laziness costs per
// message.
func BenchmarkSKEager(b *testing.B) {
	header := make([]byte, 32)
	payload := make([]byte, 300)
	for _, s := range skSuites[:2] {
		out, in, _ := pairFor(b, s)
		msg, plain := sealed(out, header, payload, 9)
		iv := bytes.Repeat([]byte{9}, out.IVSize())
		for _, c := range []wire.SKCipher{out, in} {
			a := c.(*aeadSK)
			g, err := newGCM(a.gcmKey)
			if err != nil {
				b.Fatal(err)
			}
			a.aead = g
		}
		b.Run("Seal/"+suiteName(s), func(b *testing.B) {
			buf := make([]byte, 0, len(msg))
			b.ReportAllocs()
			for b.Loop() {
				buf = out.Seal(append(buf[:0], header...), iv, plain)
			}
		})
		b.Run("Open/"+suiteName(s), func(b *testing.B) {
			dst := make([]byte, 0, len(plain))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := in.Open(dst[:0], msg, len(header)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
