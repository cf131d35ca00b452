package control

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeIKESA decodes one IKE SA object as AppendJSON (or encoding/json) writes it,
// without reflection: cygnetctl decodes 100,000 of them for a table. Unknown keys are
// skipped (a newer daemon may add fields); malformed input is an error, never a panic.
// sa's Children slice is reused.
func DecodeIKESA(raw []byte, sa *IKESA) error {
	d := jdec{b: raw}
	children := sa.Children[:0]
	*sa = IKESA{}
	err := d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "conn":
			sa.Conn, err = d.str()
		case "id":
			sa.UniqueID, err = d.uint(64)
		case "state":
			sa.State, err = d.str()
		case "initiator":
			sa.Initiator, err = d.boolean()
		case "spi_i":
			var v uint64
			v, err = d.hex(64)
			sa.SPIi = SPI64(v)
		case "spi_r":
			var v uint64
			v, err = d.hex(64)
			sa.SPIr = SPI64(v)
		case "local_host":
			sa.LocalHost, err = d.str()
		case "local_port":
			var v uint64
			v, err = d.uint(16)
			sa.LocalPort = uint16(v)
		case "local_id":
			sa.LocalID, err = d.str()
		case "remote_host":
			sa.RemoteHost, err = d.str()
		case "remote_port":
			var v uint64
			v, err = d.uint(16)
			sa.RemotePort = uint16(v)
		case "remote_id":
			sa.RemoteID, err = d.str()
		case "nat_local":
			sa.NATLocal, err = d.boolean()
		case "nat_remote":
			sa.NATRemote, err = d.boolean()
		case "proposal":
			sa.Proposal, err = d.str()
		case "established":
			sa.Established, err = d.int()
		case "rekey_at":
			sa.RekeyAt, err = d.int()
		case "children":
			if d.null() {
				children = nil
				return nil
			}
			if children == nil {
				children = []ChildSA{}
			}
			err = d.array(func() error {
				i := len(children)
				if i < cap(children) {
					children = children[:i+1]
				} else {
					children = append(children, ChildSA{})
				}
				return d.child(&children[i])
			})
		default:
			err = d.skip(0)
		}
		return err
	})
	if err != nil {
		return err
	}
	if d.ws(); d.i != len(d.b) {
		return d.fail("trailing data")
	}
	sa.Children = children
	return nil
}

func (d *jdec) child(c *ChildSA) error {
	lts, rts := c.LocalTS[:0], c.RemoteTS[:0]
	*c = ChildSA{}
	err := d.object(func(key []byte) error {
		var err error
		var v uint64
		switch string(key) {
		case "name":
			c.Name, err = d.str()
		case "id":
			c.UniqueID, err = d.uint(64)
		case "reqid":
			v, err = d.uint(32)
			c.ReqID = uint32(v)
		case "state":
			c.State, err = d.str()
		case "mode":
			c.Mode, err = d.str()
		case "protocol":
			c.Protocol, err = d.str()
		case "encap":
			c.Encap, err = d.boolean()
		case "spi_in":
			v, err = d.hex(32)
			c.SPIIn = SPI32(v)
		case "spi_out":
			v, err = d.hex(32)
			c.SPIOut = SPI32(v)
		case "proposal":
			c.Proposal, err = d.str()
		case "bytes_in":
			c.BytesIn, err = d.uint(64)
		case "packets_in":
			c.PacketsIn, err = d.uint(64)
		case "bytes_out":
			c.BytesOut, err = d.uint(64)
		case "packets_out":
			c.PacketsOut, err = d.uint(64)
		case "installed":
			c.Installed, err = d.int()
		case "rekey_at":
			c.RekeyAt, err = d.int()
		case "expire_at":
			c.ExpireAt, err = d.int()
		case "local_ts":
			lts, err = d.strings(lts)
		case "remote_ts":
			rts, err = d.strings(rts)
		default:
			err = d.skip(0)
		}
		return err
	})
	c.LocalTS, c.RemoteTS = lts, rts
	return err
}

// jdec is a minimal JSON reader over a byte slice.
type jdec struct {
	b []byte
	i int
}

var errJSON = errors.New("bad JSON")

func (d *jdec) fail(what string) error {
	return fmt.Errorf("%w at offset %d: %s", errJSON, d.i, what)
}

func (d *jdec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jdec) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *jdec) expect(c byte) error {
	if d.peek() != c {
		return d.fail("expected " + strconv.QuoteRune(rune(c)))
	}
	d.i++
	return nil
}

func (d *jdec) literal(s string) bool {
	d.ws()
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

func (d *jdec) null() bool { return d.literal("null") }

// object calls field for each key, positioned at its value.
func (d *jdec) object(field func(key []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.fail("expected , or }")
		}
	}
}

func (d *jdec) array(elem func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.fail("expected , or ]")
		}
	}
}

func (d *jdec) strings(dst []string) ([]string, error) {
	if d.null() {
		return nil, nil
	}
	if dst == nil {
		dst = []string{}
	}
	err := d.array(func() error {
		s, err := d.str()
		dst = append(dst, s)
		return err
	})
	return dst, err
}

// rawString returns a string's bytes without unescaping when it has no escapes (keys);
// with escapes it unescapes into a new slice.
func (d *jdec) rawString() ([]byte, error) {
	if err := d.expect('"'); err != nil {
		return nil, err
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], nil
		case c == '\\':
			d.i = start
			return d.unescape()
		case c < 0x20:
			return nil, d.fail("control character in string")
		}
		d.i++
	}
	return nil, d.fail("unterminated string")
}

func (d *jdec) str() (string, error) {
	b, err := d.rawString()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return string([]rune(string(b))), nil // invalid bytes become U+FFFD, as encoding/json
	}
	return string(b), nil
}

// unescape reads a string body (after the quote) with escapes.
func (d *jdec) unescape() ([]byte, error) {
	var out []byte
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return out, nil
		case c < 0x20:
			return nil, d.fail("control character in string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return nil, d.fail("unterminated escape")
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, d.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					var ok2 bool
					if r2, ok2 = d.hex4(); !ok2 {
						return nil, d.fail("bad \\u escape")
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r, r2 = dec, -1
					} else {
						d.i = save
						r2 = -1
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, d.fail("bad escape")
		}
	}
	return nil, d.fail("unterminated string")
}

func (d *jdec) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(v), true
}

func (d *jdec) number() []byte {
	d.ws()
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	return d.b[start:d.i]
}

func (d *jdec) uint(bits int) (uint64, error) {
	n := d.number()
	v, err := strconv.ParseUint(string(n), 10, bits)
	if err != nil || (len(n) > 1 && n[0] == '0') {
		return 0, d.fail(fmt.Sprintf("expected an unsigned %d-bit integer, got %q", bits, n))
	}
	return v, nil
}

func (d *jdec) int() (int64, error) {
	n := d.number()
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, d.fail(fmt.Sprintf("expected an integer, got %q", n))
	}
	return v, nil
}

func (d *jdec) hex(bits int) (uint64, error) {
	s, err := d.rawString()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(s), 16, bits)
	if err != nil {
		return 0, d.fail(fmt.Sprintf("expected a hex SPI, got %q", s))
	}
	return v, nil
}

func (d *jdec) boolean() (bool, error) {
	switch {
	case d.literal("true"):
		return true, nil
	case d.literal("false"):
		return false, nil
	}
	return false, d.fail("expected true or false")
}

// skip skips one value of any kind.
func (d *jdec) skip(depth int) error {
	if depth > 64 {
		return d.fail("nested too deeply")
	}
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
	case c == '"':
		_, err := d.rawString()
		return err
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		if _, err := strconv.ParseFloat(string(d.number()), 64); err != nil {
			return d.fail("bad number")
		}
		return nil
	}
	return d.fail("expected a value")
}
