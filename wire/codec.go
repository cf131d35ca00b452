package wire

import "encoding/binary"

// Bounds-checked readers. Each takes the buffer and an offset, and returns the value, the
// offset after it, and ErrShort when the buffer ends first. Slices they return point into
// the buffer.

func readU8(b []byte, off int) (uint8, int, error) {
	if off < 0 || off+1 > len(b) {
		return 0, off, ErrShort
	}
	return b[off], off + 1, nil
}

func readU16(b []byte, off int) (uint16, int, error) {
	if off < 0 || off+2 > len(b) {
		return 0, off, ErrShort
	}
	return binary.BigEndian.Uint16(b[off:]), off + 2, nil
}

func readU32(b []byte, off int) (uint32, int, error) {
	if off < 0 || off+4 > len(b) {
		return 0, off, ErrShort
	}
	return binary.BigEndian.Uint32(b[off:]), off + 4, nil
}

func readU64(b []byte, off int) (uint64, int, error) {
	if off < 0 || off+8 > len(b) {
		return 0, off, ErrShort
	}
	return binary.BigEndian.Uint64(b[off:]), off + 8, nil
}

// readBytes returns the n octets at off, sharing b's memory; the result's capacity is
// clipped so that appending to it never overwrites the rest of b.
func readBytes(b []byte, off, n int) ([]byte, int, error) {
	if off < 0 || n < 0 || off+n > len(b) || off+n < off {
		return nil, off, ErrShort
	}
	return b[off : off+n : off+n], off + n, nil
}

// nilIfEmpty keeps decoded empty fields nil, so that decode results compare equal to
// values built by hand (and round trips are stable).
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }
func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
func putU16(b []byte, v uint16)             { binary.BigEndian.PutUint16(b, v) }
func putU32(b []byte, v uint32)             { binary.BigEndian.PutUint32(b, v) }
