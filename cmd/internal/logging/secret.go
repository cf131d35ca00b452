package logging

import (
	"crypto/subtle"
	"fmt"

	"go.uber.org/zap/zapcore"
)

// Redacted is what every printed form of a Secret shows.
const Redacted = "<redacted>"

// Secret holds key material (a pre-shared key). Its value is reachable only through
// Bytes; every other way of printing it — String, GoString, any fmt verb, zap (as an
// object or via reflection), JSON, text and YAML marshalling — yields "<redacted>".
//
// The bytes are held by a closure, which reflection cannot look into: a reflective
// printer that walks unexported fields (fmt does, for a Secret in an unexported field or
// under a wrong verb) prints a function address, never the key. Because of that,
// reflect.DeepEqual on two Secrets is false unless both are zero: compare with Equal
// (go-cmp uses it automatically). The zero value is the empty secret.
type Secret struct {
	get func() []byte
}

// NewSecret returns a Secret holding a copy of b.
func NewSecret(b []byte) Secret {
	if len(b) == 0 {
		return Secret{}
	}
	key := append([]byte(nil), b...)
	return Secret{get: func() []byte { return key }}
}

// Bytes returns the key material. Callers must not log or modify it.
func (s Secret) Bytes() []byte {
	if s.get == nil {
		return nil
	}
	return s.get()
}

// Len is the key's length in bytes.
func (s Secret) Len() int { return len(s.Bytes()) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Len() == 0 }

// Equal compares two secrets in constant time (for equal lengths).
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare(s.Bytes(), o.Bytes()) == 1 || (s.Len() == 0 && o.Len() == 0)
}

func (Secret) String() string   { return Redacted }
func (Secret) GoString() string { return Redacted }

// Format makes every fmt verb (%v %+v %#v %s %q %x %X %d …) print "<redacted>".
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalLogObject makes zap.Object and zap.Any print {"value":"<redacted>"}.
func (Secret) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("value", Redacted)
	return nil
}

// MarshalJSON makes encoding/json (and zap.Reflect) print "<redacted>".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText makes text-based encoders print "<redacted>".
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML makes go.yaml.in/yaml/v3 print "<redacted>".
func (Secret) MarshalYAML() (any, error) { return Redacted, nil }

var (
	_ fmt.Stringer            = Secret{}
	_ fmt.GoStringer          = Secret{}
	_ fmt.Formatter           = Secret{}
	_ zapcore.ObjectMarshaler = Secret{}
)
