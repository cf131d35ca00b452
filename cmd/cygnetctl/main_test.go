package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control/controltest"
)

// TestMain lets a test run this binary's main() in a child process (see runMain).
func TestMain(m *testing.M) {
	if os.Getenv("CYGNETCTL_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

var testNow = time.Unix(1700000120, 0)

func fakeDaemon() *controltest.Fake {
	f := controltest.NewFake()
	f.Conns = []control.Conn{{
		Name: "ab", LocalAddrs: []string{"192.0.2.1"}, RemoteAddrs: []string{"192.0.2.2"}, LocalPort: 500, RemotePort: 500,
		LocalAuth: "psk", LocalID: "192.0.2.1", RemoteAuth: "psk", RemoteID: "192.0.2.2",
		Proposals: []string{"aes256gcm16-prfsha256-x25519"}, RekeyTime: 14400,
		Children: []control.ChildConn{{Name: "net", Mode: "tunnel", LocalTS: []string{"198.51.100.0/24"},
			RemoteTS: []string{"203.0.113.0/24"}, ESPProposals: []string{"aes256gcm16"}, StartAction: "start", RekeyTime: 3600, LifeTime: 3960}},
	}}
	var sa control.IKESA
	controltest.SampleSA(0, &sa)
	sa.Conn, sa.Initiator = "ab", true
	f.SAs = []control.IKESA{sa}
	f.Actors = []string{"family/1"}
	f.StatsValue = control.Stats{Version: "0.1", Started: 1700000000, Kernel: "memory", Connections: 1, IKESAs: 1, ChildSAs: 2,
		Goroutines: 12, HeapBytes: 3 << 20, Retransmits: 4}
	return f
}

// daemon serves f on a fresh socket for the test's duration.
func daemon(t testing.TB, f control.Handler, chaos bool) string {
	t.Helper()
	srv, err := control.Listen(controltest.SocketPath(t), f, control.Options{Chaos: chaos, Authorize: func(*unix.Ucred) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Path()
}

func ctl(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb, func() time.Time { return testNow })
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	f := fakeDaemon()
	f.Reloaded = &control.ReloadResult{Added: []string{"cd"}, Changed: []string{"ab"}, Unchanged: []string{"ef", "gh"},
		SecretChanged: []string{"ij"}, Restart: []string{"daemon.port"}, Warnings: []string{"c.yaml:5: connections.ab.mobike: ignored"}}
	sock := daemon(t, f, false)
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"list-conns"}, `ab: IKEv2, no reauthentication, rekeying every 14400s
  local:  192.0.2.1
  remote: 192.0.2.2
  proposals: aes256gcm16-prfsha256-x25519
  local pre-shared key authentication:
    id: 192.0.2.1
  remote pre-shared key authentication:
    id: 192.0.2.2
  net: TUNNEL, rekeying every 3600s, lifetime 3960s, start start
    esp proposals: aes256gcm16
    local:  198.51.100.0/24
    remote: 203.0.113.0/24
`},
		{[]string{"list-sas"}, `ab: #1, ESTABLISHED, IKEv2, 1000000000000000_i* 2000000000000000_r
  local  'gw.example.net' @ 192.0.2.1[4500]
  remote 'peer-0@example.net' @ 198.51.100.1[4500] [NAT]
  AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519
  established 120s ago, rekeying in 14280s
  lan: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16_256
    installed 120s ago, rekeying in 3180s, expires in 3840s
    in  c0000000,          0 bytes,        0 packets
    out d0000000,          0 bytes,        0 packets
    local  10.0.0.0/16
    remote 10.1.0.0/24
  voice: #2, reqid 2, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16_256
    installed 120s ago, rekeying in 3180s, expires in 3840s
    in  c0000001,          0 bytes,        0 packets
    out d0000001,          0 bytes,        0 packets
    local  10.0.0.0/16
    remote 10.1.0.0/24
`},
		{[]string{"--list-sas", "--ike", "nonexistent-is-checked-by-daemon-below"}, ""},
		{[]string{"initiate", "--child", "net"}, "initiate child \"net\" completed successfully\n"},
		{[]string{"initiate", "--ike", "ab"}, "initiate connection \"ab\" completed successfully\n"},
		{[]string{"terminate", "--ike", "ab"}, "terminate connection \"ab\" completed successfully (2 SAs)\n"},
		{[]string{"rekey", "--child-id", "7"}, "rekey child SA #7 completed successfully (1 SA)\n"},
		{[]string{"reload"}, `configuration reloaded: 1 added (cd), 0 removed, 1 changed (ab), 2 unchanged
new pre-shared keys for ij (established SAs kept)
warning: c.yaml:5: connections.ab.mobike: ignored
restart cygnetd to apply: daemon.port
`},
		{[]string{"stats"}, `cygnetd 0.1, running since 2023-11-14T22:13:20Z (2m0s), kernel backend memory
  connections: 1
  IKE SAs: 1 established, 0 half-open
  Child SAs: 2 installed
  retransmissions: 4, packets dropped: 0, Child SA failures: 0
  goroutines: 12, heap: 3.0 MiB
`},
	} {
		if tc.args[0] == "--list-sas" {
			continue // covered in TestErrors
		}
		code, out, errs := ctl(t, ctx, append([]string{"--socket", sock}, tc.args...)...)
		if code != 0 || errs != "" {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errs)
		}
		if out != tc.out {
			t.Errorf("%v:\n%s", tc.args, cmp.Diff(tc.out, out))
		}
	}
	want := []string{"list-conns", "list-sas nothing", `initiate child "net"`, `initiate connection "ab"`,
		`terminate connection "ab"`, "rekey child SA #7", "reload", "stats"}
	if d := cmp.Diff(want, f.Calls()); d != "" {
		t.Errorf("daemon saw (-want +got):\n%s", d)
	}
}

func TestJSONOutputs(t *testing.T) {
	f := fakeDaemon()
	sock := daemon(t, f, false)
	ctx := context.Background()

	code, out, _ := ctl(t, ctx, "--socket", sock, "list-sas", "--json")
	var sa control.IKESA
	if code != 0 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &sa) != nil || !cmp.Equal(sa, f.SAs[0]) {
		t.Errorf("list-sas --json: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, ctx, "list-conns", "--json", "--socket", sock)
	var conn control.Conn
	if code != 0 || json.Unmarshal([]byte(out), &conn) != nil || !cmp.Equal(conn, f.Conns[0]) {
		t.Errorf("list-conns --json: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, ctx, "--socket="+sock, "stats", "--json")
	var st control.Stats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st != f.StatsValue {
		t.Errorf("stats --json: exit %d\n%s", code, out)
	}
}

func TestErrors(t *testing.T) {
	f := fakeDaemon()
	f.ReloadErr = control.Errorf(control.CodeReloadFailed, "/etc/cygnet/cygnet.yaml:7: connections.ab.children.net.local_ts: expected CIDR like 10.1.0.0/16, got \"10.1.0.0/33\"")
	sock := daemon(t, f, false)
	ctx := context.Background()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"initiate", "--ike", "x"}, 1, "cygnetctl: no connection named \"x\"\n"},
		{[]string{"terminate", "--child", "y"}, 1, "cygnetctl: no child named \"y\"\n"},
		{[]string{"list-sas", "--ike", "x"}, 1, "cygnetctl: no connection named \"x\"\n"},
		{[]string{"reload"}, 1, "cygnetctl: reload failed; the running configuration is unchanged:\n/etc/cygnet/cygnet.yaml:7: connections.ab.children.net.local_ts: expected CIDR like 10.1.0.0/16, got \"10.1.0.0/33\"\n"},
		{[]string{"debug", "kill", "family/1"}, 1, "cygnetctl: debug commands are disabled: start cygnetd with daemon.chaos: yes\n"},
		{[]string{"initiate"}, 2, "cygnetctl initiate: give exactly one of --ike NAME or --child NAME\n"},
		{[]string{"initiate", "--ike", "a", "--child", "b"}, 2, "cygnetctl initiate: give exactly one of --ike NAME or --child NAME\n"},
		{[]string{"terminate"}, 2, "cygnetctl terminate: give exactly one of --ike, --child, --ike-id or --child-id\n"},
		{[]string{"rekey", "--ike", "a", "--ike-id", "3"}, 2, "cygnetctl rekey: give exactly one of --ike, --child, --ike-id or --child-id\n"},
		{[]string{"stats", "extra"}, 2, "cygnetctl stats: unexpected argument \"extra\"\n"},
		{[]string{"debug", "kill"}, 2, "cygnetctl debug: usage: cygnetctl debug kill ACTOR\n"},
	} {
		code, out, errs := ctl(t, ctx, append([]string{"--socket", sock}, tc.args...)...)
		if code != tc.code || errs != tc.stderr || out != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q\nwant exit %d stderr %q", tc.args, code, out, errs, tc.code, tc.stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args   []string
		code   int
		prefix string
	}{
		{nil, 2, "usage: cygnetctl"},
		{[]string{"frobnicate"}, 2, "cygnetctl: unknown command \"frobnicate\""},
		{[]string{"--bogus", "stats"}, 2, "cygnetctl: unknown option --bogus"},
		{[]string{"--socket"}, 2, "cygnetctl: --socket needs a path"},
		{[]string{"list-sas", "--child", "x"}, 2, "flag provided but not defined: -child"},
	} {
		code, _, errs := ctl(t, ctx, tc.args...)
		if code != tc.code || !strings.HasPrefix(errs, tc.prefix) {
			t.Errorf("%v: exit %d stderr %q, want %d and %q…", tc.args, code, errs, tc.code, tc.prefix)
		}
	}
	if code, out, _ := ctl(t, ctx, "--help"); code != 0 || !strings.HasPrefix(out, "usage: cygnetctl") {
		t.Errorf("--help: %d %q", code, out)
	}
}

func TestNotRunning(t *testing.T) {
	code, out, errs := ctl(t, context.Background(), "--socket", "/nonexistent/cygnet.sock", "list-sas")
	if code != 3 || out != "" || errs != "cygnetctl: cygnetd is not running (no socket at /nonexistent/cygnet.sock)\n" {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errs)
	}
	t.Setenv("CYGNET_SOCKET", "/nonexistent/env.sock")
	if code, _, errs := ctl(t, context.Background(), "stats"); code != 3 || !strings.Contains(errs, "/nonexistent/env.sock") {
		t.Errorf("$CYGNET_SOCKET ignored: %d %q", code, errs)
	}
}

func TestSwanctlSpellings(t *testing.T) {
	f := fakeDaemon()
	sock := daemon(t, f, false)
	for _, args := range [][]string{{"--list-sas"}, {"-l"}, {"--list-conns"}, {"--initiate", "--child", "net"},
		{"--terminate", "--ike", "ab"}, {"--rekey", "--ike", "ab"}, {"--load-all"}, {"--stats"}} {
		if code, _, errs := ctl(t, context.Background(), append([]string{"--socket", sock}, args...)...); code != 0 {
			t.Errorf("%v: exit %d %s", args, code, errs)
		}
	}
	want := []string{"list-sas nothing", "list-sas nothing", "list-conns", `initiate child "net"`, `terminate connection "ab"`,
		`rekey connection "ab"`, "reload", "stats"}
	if d := cmp.Diff(want, f.Calls()); d != "" {
		t.Errorf("daemon saw (-want +got):\n%s", d)
	}
}

func TestDebugKill(t *testing.T) {
	sock := daemon(t, fakeDaemon(), true)
	if code, out, errs := ctl(t, context.Background(), "--socket", sock, "debug", "kill", "family/1"); code != 0 || out != "killed family/1\n" {
		t.Errorf("debug kill family/1: %d %q %q", code, out, errs)
	}
	if code, _, errs := ctl(t, context.Background(), "--socket", sock, "debug", "kill", "family/2"); code != 1 || errs != "cygnetctl: no actor named \"family/2\"\n" {
		t.Errorf("debug kill family/2: %d %q", code, errs)
	}
}

// lineWriter collects output and signals each complete line.
type lineWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	lines chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for range bytes.Count(p, []byte("\n")) {
		w.lines <- struct{}{}
	}
	return w.b.Write(p)
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestWatch(t *testing.T) {
	f := fakeDaemon()
	f.Events = []control.Event{
		{Time: 1700000000123000000, Type: control.EventIKEUp, Conn: "ab", IKEID: 1, SPIi: 0xa1, SPIr: 0xb2, Remote: "192.0.2.2[500]"},
		{Time: 1700000001000000000, Type: control.EventChildFailed, Conn: "ab", Child: "net3", IKEID: 1, Reason: "TS_UNACCEPTABLE"},
	}
	sock := daemon(t, f, false)
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan struct{}, 10)}
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--socket", sock, "watch"}, out, &errb, time.Now) }()
	for range f.Events {
		select {
		case <-out.lines:
		case <-time.After(30 * time.Second):
			t.Fatalf("watch printed only %q", out.String())
		}
	}
	cancel() // the operator presses ^C
	if code := <-done; code != 0 {
		t.Errorf("watch exit %d, stderr %q", code, errb.String())
	}
	<-f.WatchEnded // and the daemon's watch ended with it
	want := "2023-11-14T22:13:20.123Z ike-up ab #1 00000000000000a1_i 00000000000000b2_r 192.0.2.2[500]\n" +
		"2023-11-14T22:13:21.000Z child-failed ab/net3 #1: TS_UNACCEPTABLE\n"
	if out.String() != want {
		t.Errorf("watch printed:\n%s\nwant:\n%s", out.String(), want)
	}
	if errb.String() != "watching for SA events (interrupt to stop)\n" {
		t.Errorf("watch's stderr %q, want the watching line", errb.String())
	}
}

// runMain runs this test binary as cygnetctl (TestMain calls main) in a child process.
func runMain(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CYGNETCTL_RUN_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// The real binary's main: exit codes reach the shell.
func TestProcess(t *testing.T) {
	if code, _, errs := runMain(t, "--socket", "/nonexistent/x.sock", "stats"); code != 3 || errs != "cygnetctl: cygnetd is not running (no socket at /nonexistent/x.sock)\n" {
		t.Errorf("not running: exit %d %q", code, errs)
	}
	sock := daemon(t, fakeDaemon(), false)
	if code, out, errs := runMain(t, "--socket", sock, "list-sas", "--json"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("list-sas --json: exit %d %q %q", code, out, errs)
	}
	if code, _, errs := runMain(t, "--socket", sock, "initiate", "--ike", "nope"); code != 1 || errs != "cygnetctl: no connection named \"nope\"\n" {
		t.Errorf("unknown connection: exit %d %q", code, errs)
	}
}

const benchSAs = 100_000

// BenchmarkListSAsJSON100k: cygnetctl list-sas --json for a concentrator's 100,000 IKE
// SAs (two Child SAs each), end to end: daemon encode, socket, client, output written
// to /dev/null.
func BenchmarkListSAsJSON100k(b *testing.B) {
	f := controltest.NewFake()
	f.SAFunc, f.SACount = controltest.SampleSA, benchSAs
	sock := daemon(b, f, false)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	for b.Loop() {
		var errb bytes.Buffer
		if code := run(context.Background(), []string{"--socket", sock, "list-sas", "--json"}, null, &errb, time.Now); code != 0 {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
	}
}

// BenchmarkListSAsTable100k: the same as a swanctl-style table.
func BenchmarkListSAsTable100k(b *testing.B) {
	f := controltest.NewFake()
	f.SAFunc, f.SACount = controltest.SampleSA, benchSAs
	sock := daemon(b, f, false)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	for b.Loop() {
		var errb bytes.Buffer
		if code := run(context.Background(), []string{"--socket", sock, "list-sas"}, null, &errb, time.Now); code != 0 {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
	}
}
