package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"
)

const testPSK = "correct-horse-battery-staple-psk"

// leaks reports every encoding of testPSK found in s.
func leaks(s string) []string {
	var found []string
	for name, enc := range map[string]string{
		"plain":  testPSK,
		"hex":    hex.EncodeToString([]byte(testPSK)),
		"base64": base64.StdEncoding.EncodeToString([]byte(testPSK)),
		"bytes":  strings.Trim(fmt.Sprint([]byte(testPSK)), "[]"),
	} {
		if strings.Contains(s, enc) {
			found = append(found, name)
		}
	}
	return found
}

type holder struct {
	Name   string
	PSK    Secret
	hidden Secret // unexported: fmt walks it reflectively
	List   []Secret
	Ptr    *Secret
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret([]byte(testPSK))
	h := holder{Name: "ab", PSK: s, hidden: s, List: []Secret{s}, Ptr: &s}

	var out bytes.Buffer
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		fmt.Fprintf(&out, f+"\n", s)
		fmt.Fprintf(&out, f+"\n", h)
		fmt.Fprintf(&out, f+"\n", &h)
	}
	fmt.Fprintln(&out, s, h, []any{s, h})
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(y)

	for _, format := range []Format{FormatJSON, FormatConsole} {
		logs, err := New(Options{Output: &out, Format: format, Level: zapcore.DebugLevel})
		if err != nil {
			t.Fatal(err)
		}
		lg := logs.Logger(Config)
		lg.Debug("secret", zap.Any("any", s), zap.Object("obj", s), zap.Stringer("str", s),
			zap.Reflect("reflect", h), zap.Any("holder", h), zap.Any("ptr", &h))
		lg.Sugar().Debugf("sugar %v %+v %#v %s", h, h, h, s)
		lg.Sugar().Debugw("sugarw", "h", h, "s", s)
		logs.Slog(Config).Debug("slog", "h", h, "s", s, "ptr", &h)
	}

	if got := leaks(out.String()); len(got) > 0 {
		t.Fatalf("secret leaked (%v) in:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), Redacted) {
		t.Fatalf("output never shows %s; did anything print?\n%s", Redacted, out.String())
	}
	// The value itself is still there for the code that needs it.
	if string(s.Bytes()) != testPSK || s.Len() != len(testPSK) {
		t.Errorf("Bytes() = %q, want the key", s.Bytes())
	}
}

func TestSecretEqual(t *testing.T) {
	a, b, c := NewSecret([]byte("k1")), NewSecret([]byte("k1")), NewSecret([]byte("k2"))
	if !a.Equal(b) || a.Equal(c) || a.Equal(Secret{}) || !(Secret{}).Equal(NewSecret(nil)) {
		t.Error("Equal disagrees with the bytes")
	}
	if !(Secret{}).IsZero() || a.IsZero() {
		t.Error("IsZero wrong")
	}
	buf := []byte("mutable")
	d := NewSecret(buf)
	buf[0] = 'X'
	if string(d.Bytes()) != "mutable" {
		t.Error("NewSecret does not copy its input")
	}
}
