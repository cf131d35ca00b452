package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
)

// The tests run as root (CI does); secret files must be owned by root, so these tests
// need root to create one (and to chown it to someone else).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test must run as root: it creates root-owned secret files (euid %d)", os.Geteuid())
	}
}

func writeSecretFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

func secretFileConfig(file string) string {
	return fmt.Sprintf(`
connections:
  ab:
    local: {id: a.example}
secrets:
  ike-ab:
    id: a.example
    secret_file: %s
`, file)
}

func TestSecretFile(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	good := writeSecretFile(t, dir, "good.psk", "file-psk-value\n", 0o600)
	hexed := writeSecretFile(t, dir, "hex.psk", "0x0102ff\r\n", 0o400)
	groupReadable := writeSecretFile(t, dir, "group.psk", "file-psk-value", 0o640)
	worldWritable := writeSecretFile(t, dir, "world.psk", "file-psk-value", 0o602)
	notRoot := writeSecretFile(t, dir, "nobody.psk", "file-psk-value", 0o600)
	if err := os.Chown(notRoot, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	empty := writeSecretFile(t, dir, "empty.psk", "\n", 0o600)

	for _, c := range []struct {
		file    string
		wantKey string
		wantErr string
	}{
		{good, "file-psk-value", ""},
		{"good.psk", "file-psk-value", ""}, // relative to the configuration file
		{hexed, "\x01\x02\xff", ""},
		{groupReadable, "", fmt.Sprintf("test.yaml:8: secrets.ike-ab.secret_file: %s is accessible by group or others (mode 0640): chmod 600 %s", groupReadable, groupReadable)},
		{worldWritable, "", fmt.Sprintf("test.yaml:8: secrets.ike-ab.secret_file: %s is accessible by group or others (mode 0602): chmod 600 %s", worldWritable, worldWritable)},
		{notRoot, "", fmt.Sprintf("test.yaml:8: secrets.ike-ab.secret_file: %s is owned by uid 65534, expected uid 0 (root): chown it", notRoot)},
		{empty, "", fmt.Sprintf("test.yaml:8: secrets.ike-ab.secret_file: %s: expected a non-empty secret", empty)},
		{filepath.Join(dir, "missing.psk"), "", fmt.Sprintf("test.yaml:8: secrets.ike-ab.secret_file: cannot read %s: no such file or directory", filepath.Join(dir, "missing.psk"))},
		{dir, "", fmt.Sprintf("test.yaml:8: secrets.ike-ab.secret_file: %s is not a regular file", dir)},
	} {
		cfg, err := Parse(filepath.Join(dir, "test.yaml"), []byte(secretFileConfig(c.file)), Options{})
		if c.wantErr != "" {
			want := filepath.Join(dir, c.wantErr)
			if err == nil || err.Error() != want {
				t.Errorf("secret_file %s: error\n%v\nwant\n%s", c.file, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("secret_file %s: %v", c.file, err)
			continue
		}
		if got := string(cfg.Secrets[0].PSK.Bytes()); got != c.wantKey {
			t.Errorf("secret_file %s: key %q, want %q", c.file, got, c.wantKey)
		}
	}
}

func TestSecretFileOwnerOption(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	f := writeSecretFile(t, dir, "k.psk", "k", 0o600)
	if err := os.Chown(f, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("test.yaml", []byte(secretFileConfig(f)), Options{SecretOwner: 1234}); err != nil {
		t.Errorf("owner 1234 allowed by option: %v", err)
	}
}

// The value of a secret never appears in an error, whatever is wrong with it.
func TestSecretNotInErrors(t *testing.T) {
	const val = "s3cr3t-value-9f8e"
	for _, src := range []string{
		"secrets:\n  ike-x: {secret: 0x" + val + "}\n",
		"secrets:\n  ike-x: {secret: 0s" + val + "!}\n",
		"secrets:\n  ike-x: {secret: " + val + ", secret_file: /x}\n",
		"secrets:\n  ike-x: {secret: " + val + ", bogus: 1}\n",
		"secrets:\n  ike-x: {secret: " + val + ", id: \"a b\"}\n",
		"secrets:\n  eap-x: {secret: " + val + "}\n",
		"secrets:\n  ike-x: {secret: [" + val + "]}\n",
		"secrets:\n  ike-x: {secret: {" + val + ": 1}}\n",
		"connections:\n  c: {local: {id: a}, remote: {id: d}}\nsecrets:\n  ike-x: {id-a: b, id-b: c, secret: " + val + "}\n",
	} {
		_, err := Parse("test.yaml", []byte(src), Options{})
		if err == nil {
			t.Errorf("accepted:\n%s", src)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error shows the secret:\n%v", err)
		}
	}
}

// A configuration holding PSKs logged at debug level, every way a developer might log
// it, never shows a key.
func TestConfigLogsNoSecret(t *testing.T) {
	const psk = "inline-psk-do-not-log-0123"
	cfg := mustParse(t, `
connections:
  ab:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    children: {net: {}}
secrets:
  ike-ab: {id: 192.0.2.1, secret: "`+psk+`"}
  ike-hex: {id: 192.0.2.1, secret: 0x`+fmt.Sprintf("%x", psk)+`}
`)
	var out bytes.Buffer
	for _, f := range []logging.Format{logging.FormatJSON, logging.FormatConsole} {
		logs, err := logging.New(logging.Options{Output: &out, Format: f, Level: zapcore.DebugLevel})
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range logging.Subsystems() {
			lg := logs.Logger(sub)
			lg.Debug("config", zap.Any("cfg", cfg), zap.Reflect("reflect", cfg), zap.Any("secrets", cfg.Secrets))
			for _, s := range cfg.Secrets {
				lg.Debug("secret", zap.Any("s", s), zap.Any("psk", s.PSK), zap.Object("obj", s.PSK), zap.Stringer("str", s.PSK))
			}
			lg.Sugar().Debugf("%v %+v %#v", cfg, *cfg.Secrets[0], cfg.Secrets)
			logs.Slog(sub).Debug("slog", "cfg", cfg, "secret", *cfg.Secrets[1])
		}
	}
	fmt.Fprintf(&out, "%v %+v %#v %v", cfg, cfg.Secrets[0], *cfg.Secrets[1], cfg.Secrets)
	s := out.String()
	for _, leak := range []string{psk, fmt.Sprintf("%x", psk), fmt.Sprintf("%X", psk)} {
		if strings.Contains(s, leak) {
			t.Fatalf("the PSK appears in the log output (as %q)", leak)
		}
	}
	if !strings.Contains(s, logging.Redacted) || !strings.Contains(s, "192.0.2.1") {
		t.Fatalf("the log output shows neither the redaction nor the config; was anything logged?\n%.2000s", s)
	}
}

func TestPSKLookup(t *testing.T) {
	cfg := mustParse(t, `
connections:
  gw:
    local: {id: gw.example}
secrets:
  ike-carol: {id-gw: gw.example, id-peer: carol@example, secret: carol-key}
  ike-dave: {id: [gw.example, dave@example], secret: dave-key}
  ike-gw: {id: gw.example, secret: group-key}
  ike-any: {secret: fallback}
`)
	id := func(s string) Identity {
		i, err := ParseIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	for _, c := range []struct{ local, remote, want string }{
		{"gw.example", "carol@example", "carol-key"},
		{"gw.example", "dave@example", "dave-key"},
		{"gw.example", "eve@example", "group-key"},
		{"other.example", "eve@example", "fallback"},
	} {
		s, ok := cfg.PSK(id(c.local), id(c.remote))
		if !ok || string(s.PSK.Bytes()) != c.want {
			t.Errorf("PSK(%s, %s) = %v, want %s", c.local, c.remote, s, c.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	src := `
connections:
  ab:
    local: {id: a.example}
    remote: {id: b.example}
    mobike: yes
secrets:
  ike-ab: {id-a: a.example, id-b: b.example, secret: k}
  ike-unused: {id-a: x.example, id-b: y.example, secret: k2}
`
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		p + ":6: connections.ab.mobike: MOBIKE (RFC 4555) is not implemented; the setting is ignored",
		p + ":9: secrets.ike-unused: matches no connection's local.id and remote.id",
		p + ": holds inline secrets but is readable by group or others (mode 0644); chmod 600 it or move the secrets to secret_file",
	}
	if strings.Join(cfg.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/cygnet.yaml", Options{})
	if err == nil || err.Error() != "/nonexistent/cygnet.yaml: cannot read the configuration: no such file or directory" {
		t.Errorf("error = %v", err)
	}
}
