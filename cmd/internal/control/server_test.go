package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control/controltest"
)

// serve starts a Server for h on a fresh socket and stops it at cleanup.
func serve(t *testing.T, h control.Handler, opts control.Options) (*control.Server, *control.Client) {
	t.Helper()
	if opts.Authorize == nil {
		// Tests may run as any user; the root-only default is tested on its own.
		opts.Authorize = func(*unix.Ucred) error { return nil }
	}
	srv, err := control.Listen(controltest.SocketPath(t), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, control.NewClient(srv.Path())
}

func fake() *controltest.Fake {
	f := controltest.NewFake()
	f.Conns = []control.Conn{
		{Name: "ab", LocalAddrs: []string{"192.0.2.1"}, RemoteAddrs: []string{"192.0.2.2"}, Children: []control.ChildConn{{Name: "net"}}},
		{Name: "cd", Children: []control.ChildConn{{Name: "voice"}}},
	}
	var a, b control.IKESA
	controltest.SampleSA(0, &a)
	controltest.SampleSA(1, &b)
	a.Conn = "ab"
	f.SAs = []control.IKESA{a, b}
	f.Actors = []string{"family/7"}
	return f
}

func TestCommands(t *testing.T) {
	leakOpt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpt) }) // after the server's cleanup
	f := fake()
	f.StatsValue = control.Stats{Version: "test", IKESAs: 2, Kernel: "memory"}
	f.Reloaded = &control.ReloadResult{Added: []string{"ef"}, Unchanged: []string{"ab"}}
	_, c := serve(t, f, control.Options{})
	ctx := context.Background()

	var conns []string
	if err := c.ListConns(ctx, func(cn *control.Conn) error { conns = append(conns, cn.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(conns, ",") != "ab,cd" {
		t.Errorf("list-conns = %v", conns)
	}

	var sas []control.IKESA
	if err := c.ListSAs(ctx, control.SAFilter{}, func(sa *control.IKESA) error {
		cp := *sa
		cp.Children = append([]control.ChildSA(nil), sa.Children...)
		sas = append(sas, cp)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f.SAs, sas); d != "" {
		t.Errorf("list-sas (-daemon +client):\n%s", d)
	}
	n, err := c.ListSAsRaw(ctx, control.SAFilter{IKE: "ab"}, func(raw []byte) error {
		var sa control.IKESA
		if err := json.Unmarshal(raw, &sa); err != nil {
			t.Errorf("raw record is not JSON: %v: %s", err, raw)
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Errorf("list-sas --ike ab: %d, %v; want 1 SA", n, err)
	}

	if d, err := c.Initiate(ctx, control.Target{Child: "net"}); err != nil || d.Count != 1 {
		t.Errorf("initiate: %v %v", d, err)
	}
	if d, err := c.Terminate(ctx, control.Target{IKE: "ab"}); err != nil || d.Count != 2 {
		t.Errorf("terminate: %v %v", d, err)
	}
	if d, err := c.Rekey(ctx, control.Target{IKEID: 7}); err != nil || d.Count != 1 {
		t.Errorf("rekey: %v %v", d, err)
	}
	if r, err := c.Reload(ctx); err != nil || !cmp.Equal(r, f.Reloaded) {
		t.Errorf("reload: %+v %v", r, err)
	}
	if s, err := c.Stats(ctx); err != nil || *s != f.StatsValue {
		t.Errorf("stats: %+v %v", s, err)
	}
	want := []string{"list-conns", "list-sas nothing", `list-sas connection "ab"`, `initiate child "net"`,
		`terminate connection "ab"`, "rekey IKE SA #7", "reload", "stats"}
	if d := cmp.Diff(want, f.Calls()); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

func TestErrors(t *testing.T) {
	f := fake()
	f.ReloadErr = control.Errorf(control.CodeReloadFailed, "/etc/cygnet/cygnet.yaml:3: connections.ab.version: expected 2")
	_, c := serve(t, f, control.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		code control.ErrorCode
		msg  string
	}{
		{"unknown connection", func() error { _, err := c.Initiate(ctx, control.Target{IKE: "x"}); return err },
			control.CodeUnknownConnection, `no connection named "x"`},
		{"unknown child", func() error { _, err := c.Terminate(ctx, control.Target{Child: "y"}); return err },
			control.CodeUnknownChild, `no child named "y"`},
		{"list unknown", func() error {
			return c.ListSAs(ctx, control.SAFilter{IKE: "x"}, func(*control.IKESA) error { return nil })
		}, control.CodeUnknownConnection, `no connection named "x"`},
		{"no target", func() error { _, err := c.Rekey(ctx, control.Target{}); return err },
			control.CodeBadRequest, "rekey needs an ike or child name (or an SA id)"},
		{"reload failed", func() error { _, err := c.Reload(ctx); return err },
			control.CodeReloadFailed, "/etc/cygnet/cygnet.yaml:3: connections.ab.version: expected 2"},
		{"debug-kill without chaos", func() error { return c.DebugKill(ctx, "family/7") },
			control.CodeUnknownCommand, `unknown command "debug-kill"`},
		{"debug-kernel-sas without chaos", func() error {
			return c.DebugKernelSAs(ctx, func(*control.KernelSA) error { return nil })
		}, control.CodeUnknownCommand, `unknown command "debug-kernel-sas"`},
		{"debug-kernel-fail without chaos", func() error { return c.DebugKernelFail(ctx, 1) },
			control.CodeUnknownCommand, `unknown command "debug-kernel-fail"`},
	} {
		err := tc.call()
		var e *control.Error
		if !errors.As(err, &e) || e.Code != tc.code || e.Message != tc.msg {
			t.Errorf("%s: error %#v, want code %s message %q", tc.name, err, tc.code, tc.msg)
		}
	}
}

func TestDebugKillWithChaos(t *testing.T) {
	f := fake()
	_, c := serve(t, f, control.Options{Chaos: true})
	if err := c.DebugKill(context.Background(), "family/7"); err != nil {
		t.Errorf("debug-kill family/7: %v", err)
	}
	if err := c.DebugKill(context.Background(), "family/8"); !control.IsCode(err, control.CodeUnknownActor) {
		t.Errorf("debug-kill family/8: %v, want unknown-actor", err)
	}
}

func TestDebugKernelWithChaos(t *testing.T) {
	f := fake()
	f.KernelSAs = []control.KernelSA{{SPI: 0xc0ffee01, Src: "192.0.2.2", Dst: "192.0.2.1", Encr: "rfc4106(gcm(aes))", EncrKey: "00112233"}}
	_, c := serve(t, f, control.Options{Chaos: true})
	ctx := context.Background()
	var got []control.KernelSA
	if err := c.DebugKernelSAs(ctx, func(sa *control.KernelSA) error { got = append(got, *sa); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != f.KernelSAs[0] {
		t.Errorf("kernel SAs %+v, want %+v", got, f.KernelSAs)
	}
	if err := c.DebugKernelFail(ctx, 3); err != nil || f.FailedInstalls != 3 {
		t.Errorf("debug-kernel-fail 3: %v, fake got %d", err, f.FailedInstalls)
	}
	if err := c.DebugKernelFail(ctx, -1); !control.IsCode(err, control.CodeBadRequest) {
		t.Errorf("debug-kernel-fail -1: %v, want bad-request", err)
	}
}

// rawRequest writes line to the socket and returns every line of the answer.
func rawRequest(t *testing.T, path, line string) []string {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []string
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestProtocolErrors(t *testing.T) {
	srv, _ := serve(t, fake(), control.Options{})
	for _, tc := range []struct{ req, want string }{
		{`{"v":2,"cmd":"stats"}` + "\n", `{"v":1,"error":{"code":"unsupported-version","message":"protocol version 2 is not supported (this cygnetd speaks 1)"}}`},
		{`{"v":1,"cmd":"frobnicate"}` + "\n", `{"v":1,"error":{"code":"unknown-command","message":"unknown command \"frobnicate\""}}`},
		{`{"v":1,"cmd":"stats","extra":1}` + "\n", `{"v":1,"error":{"code":"bad-request","message":"bad request: json: unknown field \"extra\""}}`},
		{`not json` + "\n", `{"v":1,"error":{"code":"bad-request","message":"bad request: invalid character 'o' in literal null (expecting 'u')"}}`},
		{`{"v":1,"cmd":"stats"}`, `{"v":1,"error":{"code":"bad-request","message":"bad request: request line missing its newline"}}`},
		{strings.Repeat("x", 70000) + "\n", `{"v":1,"error":{"code":"bad-request","message":"bad request: request line longer than 65536 bytes"}}`},
		{`{"v":1,"cmd":"list-conns"}` + "\n", `{"conn":{"name":"ab","local_addrs":["192.0.2.1"],"remote_addrs":["192.0.2.2"],"local_port":0,"remote_port":0,"local_auth":"","local_id":"","remote_auth":"","remote_id":"","proposals":null,"rekey_time":0,"dpd_delay":0,"children":[{"name":"net","mode":"","local_ts":null,"remote_ts":null,"esp_proposals":null,"start_action":"","rekey_time":0,"life_time":0}]}}
{"conn":{"name":"cd","local_addrs":null,"remote_addrs":null,"local_port":0,"remote_port":0,"local_auth":"","local_id":"","remote_auth":"","remote_id":"","proposals":null,"rekey_time":0,"dpd_delay":0,"children":[{"name":"voice","mode":"","local_ts":null,"remote_ts":null,"esp_proposals":null,"start_action":"","rekey_time":0,"life_time":0}]}}
{"v":1,"ok":{"count":2}}`},
	} {
		if tc.req[len(tc.req)-1] != '\n' {
			// Send without newline, then half-close so the server sees EOF.
			conn, err := net.Dial("unix", srv.Path())
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte(tc.req))
			conn.(*net.UnixConn).CloseWrite()
			sc := bufio.NewScanner(conn)
			var got []string
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			conn.Close()
			if strings.Join(got, "\n") != tc.want {
				t.Errorf("%.40q:\n got %s\nwant %s", tc.req, strings.Join(got, "\n"), tc.want)
			}
			continue
		}
		if got := strings.Join(rawRequest(t, srv.Path(), tc.req), "\n"); got != tc.want {
			t.Errorf("%.40q:\n got %s\nwant %s", tc.req, got, tc.want)
		}
	}
}

func TestSocketFile(t *testing.T) {
	f := fake()
	srv, _ := serve(t, f, control.Options{})
	fi, err := os.Stat(srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	// A second daemon on the same socket is refused.
	if _, err := control.Listen(srv.Path(), f, control.Options{}); err == nil || !strings.Contains(err.Error(), "another cygnetd is listening on") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := controltest.SocketPath(t)
	// A socket file nobody listens on, as left by a daemon killed with SIGKILL.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	c := control.NewClient(path)
	if _, err := c.Stats(context.Background()); !errors.Is(err, control.ErrNotRunning) || !strings.Contains(err.Error(), "stale socket at "+path) {
		t.Errorf("stats on a stale socket: %v", err)
	}
	srv, err := control.Listen(path, fake(), control.Options{Authorize: func(*unix.Ucred) error { return nil }})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	if _, err := c.Stats(context.Background()); err != nil {
		t.Errorf("stats after replacing the stale socket: %v", err)
	}
	cancel()
	<-done
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
	// Not a socket: refused, not removed.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(path, fake(), control.Options{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

func TestNotRunning(t *testing.T) {
	c := control.NewClient("/nonexistent/cygnet.sock")
	_, err := c.Stats(context.Background())
	if !errors.Is(err, control.ErrNotRunning) || err.Error() != "cygnetd is not running (no socket at /nonexistent/cygnet.sock)" {
		t.Errorf("error = %v", err)
	}
}

// The peer check uses the real SO_PEERCRED of the connecting process: an Authorize that
// admits only another uid refuses this test process, with a structured error.
func TestPeerRefused(t *testing.T) {
	me := uint32(os.Getuid())
	var seen *unix.Ucred
	_, c := serve(t, fake(), control.Options{Authorize: func(u *unix.Ucred) error {
		seen = u
		if u.Uid != me+1 {
			return control.Errorf(control.CodePermissionDenied, "permission denied: uid %d is not allowed", u.Uid)
		}
		return nil
	}})
	_, err := c.Stats(context.Background())
	if !control.IsCode(err, control.CodePermissionDenied) || err.Error() != fmt.Sprintf("permission denied: uid %d is not allowed", me) {
		t.Errorf("stats as uid %d: %v", me, err)
	}
	if seen == nil || seen.Pid != int32(os.Getpid()) {
		t.Errorf("Authorize saw %+v, want this process (pid %d)", seen, os.Getpid())
	}
}

func TestRootOnly(t *testing.T) {
	if err := control.RootOnly(&unix.Ucred{Uid: 0}); err != nil {
		t.Errorf("root refused: %v", err)
	}
	if err := control.RootOnly(&unix.Ucred{Uid: 1000}); !control.IsCode(err, control.CodePermissionDenied) {
		t.Errorf("uid 1000: %v", err)
	}
}

func TestWatch(t *testing.T) {
	leakOpt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpt) }) // after the server's cleanup
	f := fake()
	f.Events = []control.Event{
		{Time: 1, Type: control.EventIKEUp, Conn: "ab", IKEID: 1, SPIi: 0xa, SPIr: 0xb},
		{Time: 2, Type: control.EventChildFailed, Conn: "ab", Child: "net", Reason: "TS_UNACCEPTABLE"},
	}
	_, c := serve(t, f, control.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var got []control.Event
	errc := make(chan error, 1)
	go func() {
		errc <- c.Watch(ctx, func(e *control.Event) error {
			got = append(got, *e)
			if len(got) == len(f.Events) {
				cancel() // the client hangs up after two events
			}
			return nil
		})
	}()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v, want context.Canceled", err)
	}
	select {
	case <-f.WatchEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's Watch did not see the client hang up")
	}
	if d := cmp.Diff(f.Events, got); d != "" {
		t.Errorf("events (-sent +received):\n%s", d)
	}
}

// Closing the server ends watches in progress with shutting-down.
func TestWatchEndsAtShutdown(t *testing.T) {
	f := fake()
	srv, err := control.Listen(controltest.SocketPath(t), f, control.Options{Authorize: func(*unix.Ucred) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	errc := make(chan error, 1)
	go func() {
		errc <- control.NewClient(srv.Path()).Watch(context.Background(), func(*control.Event) error { return nil })
	}()
	<-f.Watching
	srv.Close()
	if err := <-errc; !control.IsCode(err, control.CodeShuttingDown) {
		t.Errorf("watch at shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// A client that hangs up in the middle of a long listing stops the handler.
func TestListCancelledByClient(t *testing.T) {
	f := fake()
	f.SAFunc, f.SACount = controltest.SampleSA, 10_000_000
	_, c := serve(t, f, control.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := c.ListSAs(ctx, control.SAFilter{}, func(*control.IKESA) error {
		if n++; n == 1000 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ListSAs after cancel: %v", err)
	}
	// The serve cleanup waits for the handler: it ends because its emit fails or its
	// context ends, long before 10 million records.
}
