package wire

import "fmt"

// CPAttribute is one configuration attribute (RFC 7296 §3.15.1). Value points into the
// input; its length depends on the type (0 in a request asks for any value).
type CPAttribute struct {
	Type  CPAttrType
	Value []byte
}

// CPPayload is the Configuration payload (RFC 7296 §3.15).
type CPPayload struct {
	CFGType    CPType
	Attributes []CPAttribute
}

// Type is PayloadCP.
func (p *CPPayload) Type() PayloadType { return PayloadCP }

// AppendBody appends the CFG Type, three reserved octets and the attributes (R bit 0).
func (p *CPPayload) AppendBody(dst []byte) ([]byte, error) {
	dst = append(dst, byte(p.CFGType), 0, 0, 0)
	for _, a := range p.Attributes {
		if a.Type > 0x7fff || len(a.Value) > 0xffff {
			return dst, fmt.Errorf("CP attribute %v: %w", a.Type, ErrTooLong)
		}
		dst = appendU16(dst, uint16(a.Type))
		dst = appendU16(dst, uint16(len(a.Value)))
		dst = append(dst, a.Value...)
	}
	return dst, nil
}

func (p *CPPayload) decode(b []byte, base int) error {
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, PayloadCP, base, ErrShort)
	}
	n := 0
	for off := 4; off < len(b); n++ {
		l, _, err := readU16(b, off+2)
		if err == nil {
			_, off, err = readBytes(b, off+4, int(l))
		}
		if err != nil {
			return errAt(AnswerInvalidSyntax, PayloadCP, base+off, fmt.Errorf("attribute %d: %w", n+1, err))
		}
	}
	p.CFGType, p.Attributes = CPType(b[0]), nil
	if n > 0 {
		p.Attributes = make([]CPAttribute, 0, n)
	}
	for off := 4; off < len(b); {
		t, l := CPAttrType(uint16(b[off]&0x7f)<<8|uint16(b[off+1])), int(b[off+2])<<8|int(b[off+3])
		p.Attributes = append(p.Attributes, CPAttribute{Type: t, Value: nilIfEmpty(b[off+4 : off+4+l : off+4+l])})
		off += 4 + l
	}
	return nil
}

// Verify checks the CFG Type (§3.15).
func (p *CPPayload) Verify() error {
	if p.CFGType < CPRequest || p.CFGType > CPAck {
		return invalid(PayloadCP, "CFG type %v", p.CFGType)
	}
	return nil
}
