package ctlhandler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control/controltest"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/metrics"
)

// fakeTree records what the handler asks of the actor tree.
type fakeTree struct {
	mu     sync.Mutex
	calls  []string
	sas    []actors.SA
	events chan actors.Event
}

func (f *fakeTree) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeTree) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

func (f *fakeTree) Initiate(ctx context.Context, conn, child string) error {
	f.record("initiate %s/%s", conn, child)
	return nil
}

func (f *fakeTree) sel(tg actors.Target) int {
	n := 0
	for _, sa := range f.sas {
		if (tg.Conn != "" && sa.Conn == tg.Conn) || (tg.Family != 0 && sa.Family == tg.Family) {
			n++
		}
	}
	return n
}

func (f *fakeTree) Terminate(tg actors.Target) (int, error) {
	f.record("terminate %+v", tg)
	if n := f.sel(tg); n > 0 {
		return n, nil
	}
	return 0, errors.New("no matching SA")
}

func (f *fakeTree) Rekey(tg actors.Target) (int, error) {
	f.record("rekey %+v", tg)
	if n := f.sel(tg); n > 0 {
		return n, nil
	}
	return 0, errors.New("no matching SA")
}

func (f *fakeTree) ListSAs() []actors.SA { return f.sas }

func (f *fakeTree) Subscribe(int) (<-chan actors.Event, func()) {
	return f.events, func() { f.record("unsubscribe") }
}

func (f *fakeTree) SetConnections(ctx context.Context, conns []*ike.Connection) error {
	var names []string
	for _, c := range conns {
		names = append(names, c.Name)
	}
	f.record("set-connections %s", strings.Join(names, ","))
	return nil
}

func (f *fakeTree) KillActor(ctx context.Context, name string, panic bool) error {
	f.record("kill %s", name)
	if name != "f1" {
		return errors.New("no actor " + name)
	}
	return nil
}

func (f *fakeTree) Stats() actors.Stats { return actors.Stats{Families: len(f.sas), HalfOpen: 3} }

const baseConfig = `
daemon:
  log: {level: info}
connections:
  ab:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    remote: {id: 192.0.2.2}
    children:
      net: {local_ts: 10.1.0.0/16, remote_ts: 10.2.0.0/16, start_action: start}
  cd:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.3
    remote: {id: 192.0.2.3}
    children:
      voice: {local_ts: 10.1.0.0/16, remote_ts: 10.3.0.0/16}
  ef:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.4
    remote: {id: 192.0.2.4}
secrets:
  ike: {id: 192.0.2.1, secret: k}
`

type rig struct {
	h    *Handler
	tree *fakeTree
	m    *metrics.Metrics
	path string
	logs *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cygnet.yaml")
	if err := os.WriteFile(path, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	logs, err := logging.New(logging.Options{Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{})
	m.SetConnections([]string{"ab", "cd", "ef"})
	tree := &fakeTree{events: make(chan actors.Event, 8)}
	at := time.Unix(1700000000, 0)
	tree.sas = []actors.SA{{
		Family: 1, Conn: "ab",
		IKE: []ike.IKEInfo{{Name: "ab", SPIi: 0x1111, SPIr: 0x2222, Initiator: true, State: ike.IKEStateEstablished,
			Local: netip.MustParseAddrPort("192.0.2.1:500"), Remote: netip.MustParseAddrPort("192.0.2.2:4500"),
			LocalID: ike.IdentityFromAddr(netip.MustParseAddr("192.0.2.1")), RemoteID: ike.IdentityFromAddr(netip.MustParseAddr("192.0.2.2")),
			NATPeer: true, EstablishedAt: at, RekeyAt: at.Add(4 * time.Hour)}},
		Children: []ike.ChildInfo{{Ref: 3, Name: "net", SPIIn: 0xc1, SPIOut: 0xc2, State: ike.ChildStateUp, InstalledAt: at,
			RekeyAt: at.Add(time.Hour), ExpireAt: at.Add(66 * time.Minute),
			LocalTS:  []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))},
			RemoteTS: []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.2.0.0/16"))}}},
	}}
	h := New(cfg, tree, logs, m, Options{Kernel: "memory", Version: "test", Now: func() time.Time { return at }})
	return &rig{h: h, tree: tree, m: m, path: path, logs: &out}
}

func TestListSAs(t *testing.T) {
	r := newRig(t)
	var got []control.IKESA
	if err := r.h.ListSAs(context.Background(), control.SAFilter{}, func(sa *control.IKESA) error {
		cp := *sa
		cp.Children = append([]control.ChildSA(nil), sa.Children...)
		got = append(got, cp)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []control.IKESA{{
		Conn: "ab", UniqueID: 1, State: "ESTABLISHED", Initiator: true, SPIi: 0x1111, SPIr: 0x2222,
		LocalHost: "192.0.2.1", LocalPort: 500, LocalID: "192.0.2.1", RemoteHost: "192.0.2.2", RemotePort: 4500, RemoteID: "192.0.2.2",
		NATRemote: true, Established: 1700000000, RekeyAt: 1700014400,
		Children: []control.ChildSA{{Name: "net", UniqueID: 3, State: "INSTALLED", Mode: "TUNNEL", Protocol: "ESP", Encap: true,
			SPIIn: 0xc1, SPIOut: 0xc2, Installed: 1700000000, RekeyAt: 1700003600, ExpireAt: 1700003960,
			LocalTS: []string{"10.1.0.0/16"}, RemoteTS: []string{"10.2.0.0/16"}}},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("list-sas (-want +got):\n%s", d)
	}
	err := r.h.ListSAs(context.Background(), control.SAFilter{IKE: "zz"}, func(*control.IKESA) error { return nil })
	if !control.IsCode(err, control.CodeUnknownConnection) {
		t.Errorf("list-sas --ike zz: %v", err)
	}
}

func TestTargets(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		call func() (control.Done, error)
		want string // the tree call, or the error
	}{
		{"initiate child", func() (control.Done, error) { return r.h.Initiate(ctx, control.Target{Child: "voice"}) }, "initiate cd/voice"},
		{"initiate conn", func() (control.Done, error) { return r.h.Initiate(ctx, control.Target{IKE: "ab"}) }, "initiate ab/"},
		{"initiate unknown", func() (control.Done, error) { return r.h.Initiate(ctx, control.Target{IKE: "zz"}) }, `error unknown-connection: no connection named "zz"`},
		{"initiate unknown child", func() (control.Done, error) { return r.h.Initiate(ctx, control.Target{Child: "zz"}) }, `error unknown-child: no child named "zz"`},
		{"initiate by id", func() (control.Done, error) { return r.h.Initiate(ctx, control.Target{IKEID: 1}) }, "error bad-request: initiate takes a connection or child name, not an SA id"},
		{"terminate conn", func() (control.Done, error) { return r.h.Terminate(ctx, control.Target{IKE: "ab"}) }, "terminate {Conn:ab Family:0 IKESPI:0000000000000000 Child: ChildSPI:0}"},
		{"terminate child", func() (control.Done, error) { return r.h.Terminate(ctx, control.Target{Child: "net"}) }, "terminate {Conn:ab Family:0 IKESPI:0000000000000000 Child:net ChildSPI:0}"},
		{"terminate child id", func() (control.Done, error) { return r.h.Terminate(ctx, control.Target{ChildID: 3}) }, "terminate {Conn: Family:1 IKESPI:0000000000000000 Child: ChildSPI:193}"},
		{"terminate unknown child id", func() (control.Done, error) { return r.h.Terminate(ctx, control.Target{ChildID: 9}) }, "error unknown-sa: no Child SA #9"},
		{"rekey ike id", func() (control.Done, error) { return r.h.Rekey(ctx, control.Target{IKEID: 1}) }, "rekey {Conn: Family:1 IKESPI:0000000000000000 Child: ChildSPI:0}"},
		{"rekey down conn", func() (control.Done, error) { return r.h.Rekey(ctx, control.Target{IKE: "cd"}) }, `error unknown-sa: rekey: no SA of connection "cd" is up`},
		{"child of another conn", func() (control.Done, error) { return r.h.Rekey(ctx, control.Target{IKE: "ab", Child: "voice"}) }, `error unknown-child: connection "ab" has no child named "voice"`},
	} {
		_, err := c.call()
		calls := r.tree.Calls()
		var got string
		var ce *control.Error
		switch {
		case errors.As(err, &ce):
			got = fmt.Sprintf("error %s: %s", ce.Code, ce.Message)
		case err != nil:
			got = "error " + err.Error()
		case len(calls) == 1:
			got = calls[0]
		default:
			got = fmt.Sprint(calls)
		}
		if strings.HasPrefix(c.want, "error") && err != nil && len(calls) > 0 && !strings.Contains(c.want, "no SA of") {
			t.Errorf("%s: the tree was asked %v before the name was checked", c.name, calls)
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestReload(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// ab: unchanged. cd: a child's selector changes. ef: removed. gh: added, starts itself.
	next := strings.Replace(baseConfig, "remote_ts: 10.3.0.0/16", "remote_ts: 10.4.0.0/16", 1)
	next = strings.Replace(next, `  ef:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.4
    remote: {id: 192.0.2.4}`, `  gh:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.5
    remote: {id: 192.0.2.5}
    children:
      gh-net: {start_action: start}`, 1)
	next = strings.Replace(next, "log: {level: info}", "log: {level: info, subsystems: {kernel: debug}}\n  port: 5500", 1)
	if err := os.WriteFile(r.path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	r.tree.sas = append(r.tree.sas, actors.SA{Family: 2, Conn: "cd", IKE: []ike.IKEInfo{{Name: "cd"}}})
	res, err := r.h.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &control.ReloadResult{Added: []string{"gh"}, Removed: []string{"ef"}, Changed: []string{"cd"}, Unchanged: []string{"ab"},
		Restart: []string{"daemon.port"}}
	if d := cmp.Diff(want, res); d != "" {
		t.Errorf("reload result (-want +got):\n%s", d)
	}
	// The tree gets the new definitions; cd's SAs are replaced (cd has no start action,
	// so it is not re-initiated); gh starts; ab's SAs are not touched.
	wantCalls := []string{"set-connections ab,cd,gh", "terminate {Conn:cd Family:0 IKESPI:0000000000000000 Child: ChildSPI:0}", "initiate gh/"}
	if d := cmp.Diff(wantCalls, r.tree.Calls()); d != "" {
		t.Errorf("tree calls (-want +got):\n%s", d)
	}
	if r.h.logs.Level(logging.Kernel).String() != "debug" {
		t.Errorf("kernel log level after reload = %v, want debug", r.h.logs.Level(logging.Kernel))
	}
	if _, ok := r.h.Config().Connection("gh"); !ok {
		t.Error("running configuration not replaced")
	}
	exp := scrape(t, r.m)
	for _, s := range []string{`cygnet_ike_sas_established{connection="gh"} 0`, `cygnet_config_reloads_total{result="success"} 1`} {
		if !strings.Contains(exp, s) {
			t.Errorf("metrics lack %q", s)
		}
	}
	if strings.Contains(exp, `connection="ef"`) {
		t.Error("metrics still export the removed connection ef")
	}

	// A bad file: nothing changes, the error names file and line.
	if err := os.WriteFile(r.path, []byte(strings.Replace(next, "remote_ts: 10.4.0.0/16", "remote_ts: 10.4.0.0/33", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	before := r.h.Config()
	_, err = r.h.Reload(ctx)
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeReloadFailed ||
		ce.Message != r.path+`:17: connections.cd.children.voice.remote_ts: expected CIDR like 10.1.0.0/16, got "10.4.0.0/33": the prefix length is at most 32` {
		t.Errorf("bad reload: %#v", err)
	}
	if r.h.Config() != before {
		t.Error("a failed reload replaced the running configuration")
	}
	if calls := r.tree.Calls(); len(calls) != 0 {
		t.Errorf("a failed reload touched the tree: %v", calls)
	}
	if exp := scrape(t, r.m); !strings.Contains(exp, `cygnet_config_reloads_total{result="failure"} 1`) {
		t.Error("failed reload not counted")
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := mm.GetGauge().GetValue() + mm.GetCounter().GetValue()
			fmt.Fprintf(&b, "%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

func TestWatchAndKill(t *testing.T) {
	r := newRig(t)
	r.tree.events <- actors.Event{Kind: actors.EventIKEUp, Family: 1, Conn: "ab",
		IKE: ike.IKEInfo{SPIi: 0xa, SPIr: 0xb, Remote: netip.MustParseAddrPort("192.0.2.2:500")}}
	r.tree.events <- actors.Event{Kind: actors.EventFamilyDone, Family: 1} // not shown
	r.tree.events <- actors.Event{Kind: actors.EventChildFailed, Family: 1, Conn: "ab", Child: ike.ChildInfo{Ref: 4, Name: "net"}, Reason: "TS_UNACCEPTABLE"}
	close(r.tree.events) // the daemon stops
	var got []control.Event
	err := r.h.Watch(context.Background(), func(e *control.Event) error { got = append(got, *e); return nil })
	if !control.IsCode(err, control.CodeShuttingDown) {
		t.Errorf("watch at the end of the stream: %v", err)
	}
	want := []control.Event{
		{Time: 1700000000e9, Type: control.EventIKEUp, Conn: "ab", IKEID: 1, SPIi: 0xa, SPIr: 0xb, Remote: "192.0.2.2:500"},
		{Time: 1700000000e9, Type: control.EventChildFailed, Conn: "ab", Child: "net", IKEID: 1, ChildID: 4, Reason: "TS_UNACCEPTABLE"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if err := r.h.DebugKill(context.Background(), "f1"); err != nil {
		t.Error(err)
	}
	if err := r.h.DebugKill(context.Background(), "f9"); !control.IsCode(err, control.CodeUnknownActor) {
		t.Errorf("kill f9: %v", err)
	}
}

// The handler behind the real control socket, driven by the real client.
func TestOverTheSocket(t *testing.T) {
	r := newRig(t)
	srv, err := control.Listen(controltest.SocketPath(t), r.h, control.Options{Chaos: true, Authorize: func(*unix.Ucred) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c := control.NewClient(srv.Path())
	var names []string
	if err := c.ListConns(ctx, func(cn *control.Conn) error { names = append(names, cn.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "ab,cd,ef" {
		t.Errorf("list-conns: %v", names)
	}
	n, err := c.ListSAsRaw(ctx, control.SAFilter{}, func([]byte) error { return nil })
	if err != nil || n != 1 {
		t.Errorf("list-sas: %d %v", n, err)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.Kernel != "memory" || st.Connections != 3 || st.HalfOpen != 3 || st.Version != "test" {
		t.Errorf("stats: %+v %v", st, err)
	}
	if _, err := c.Terminate(ctx, control.Target{IKE: "nope"}); err == nil || err.Error() != `no connection named "nope"` {
		t.Errorf("terminate nope: %v", err)
	}
	if err := c.DebugKill(ctx, "f1"); err != nil {
		t.Errorf("debug kill: %v", err)
	}
}
