package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad command lines fail with a message naming the flag, before anything is bound.
func TestFlagErrors(t *testing.T) {
	key := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(key, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		run  func([]string) error
		args []string
		want string
	}{
		{initiate, []string{"-target", "nonsense", "-src", "127.0.0.1", "-psk-file", key}, "-target"},
		{initiate, []string{"-target", "127.0.0.1:500", "-src", "", "-psk-file", key}, "-src"},
		{initiate, []string{"-target", "127.0.0.1:500", "-src", "127.0.0.1"}, "pre-shared key"},
		{initiate, []string{"-target", "127.0.0.1:500", "-src", "127.0.0.1", "-psk-file", key, "-ts-pool", "x"}, "-ts-pool"},
		{initiate, []string{"-target", "127.0.0.1:500", "-src", "127.0.0.1", "-psk-file", key, "-ike", "nonsense"}, "IKE proposals"},
		{respond, []string{"-listen", "nope", "-psk-file", key}, "-listen"},
		{respond, []string{"-listen", "127.0.0.1:0", "-psk-file", key, "-remote-ts", "bad"}, "-remote-ts"},
		{flood, []string{"-target", "127.0.0.1:500", "-spoof", "bad"}, "-spoof"},
	} {
		err := c.run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestReadPSKTrimsNewline(t *testing.T) {
	key := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(key, []byte("secret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readPSK("", key)
	if err != nil || string(got) != "secret" {
		t.Fatalf("readPSK = %q, %v", got, err)
	}
}
