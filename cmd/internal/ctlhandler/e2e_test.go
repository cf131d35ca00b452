package ctlhandler

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/ikeconf"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/metrics"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

// This file runs the wiring cygnetd's main will do, twice in one process, with the real
// actor tree on loopback (127.0.0.1 and 127.0.0.2) and an in-memory kernel each:
// configuration file → ikeconf → actors.New → ctlhandler, then drives it through the
// handler as cygnetctl would.

// freePorts returns n UDP ports free on addr right now.
func freePorts(t *testing.T, addr string, n int) []int {
	t.Helper()
	var ports []int
	var conns []net.PacketConn
	for range n {
		c, err := net.ListenPacket("udp", addr+":0")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

type gateway struct {
	h       *Handler
	m       *actors.Manager
	metrics *metrics.Metrics
	logs    *bytes.Buffer
}

const gatewayConfig = `
daemon:
  listen_addrs: [%[1]s]
  port: %[3]d
  port_nat_t: %[4]d
  log: {level: debug}
connections:
  ab:
    local_addrs: %[1]s
    remote_addrs: %[2]s
    local_port: %[3]d
    remote_port: %[5]d
    proposals: aes256gcm16-prfsha256-x25519
    local: {id: "@%[6]s.example"}
    remote: {id: "@%[7]s.example"}
    children:
      net-%[6]s:
        local_ts: %[8]s
        remote_ts: %[9]s
        esp_proposals: aes256gcm16
secrets:
  ike-ab: {id-a: "@a.example", id-b: "@b.example", secret: "e2e-test-psk-0123456789"}
`

func startGateway(t *testing.T, src string) *gateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cygnet.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := new(bytes.Buffer)
	lo := cfg.Daemon.Log.Options()
	lo.Output = out
	logs, err := logging.New(lo)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{Version: "e2e"})
	names := make([]string, len(cfg.Connections))
	for i, c := range cfg.Connections {
		names[i] = c.Name
	}
	m.SetConnections(names)
	ac, warns, err := ikeconf.ActorsConfig(cfg)
	if err != nil || len(warns) > 0 {
		t.Fatalf("ActorsConfig: %v %v", err, warns)
	}
	ac.Sockets.KernelESPInUDP = false // memkernel: no ESP-in-UDP decapsulation to ask for
	mgr, err := actors.New(ac, memkernel.New(memkernel.Options{}), logs.Tree(logging.Manager), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &gateway{h: New(cfg, FromManager(mgr), logs, m, Options{Kernel: "memory", Version: "e2e"}), m: mgr, metrics: m, logs: out}
}

func listSAs(t *testing.T, h *Handler) []control.IKESA {
	t.Helper()
	var out []control.IKESA
	if err := h.ListSAs(context.Background(), control.SAFilter{}, func(sa *control.IKESA) error {
		cp := *sa
		cp.Children = append([]control.ChildSA(nil), sa.Children...)
		out = append(out, cp)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTwoGatewaysOverLoopback(t *testing.T) {
	pa, pb := freePorts(t, "127.0.0.1", 2), freePorts(t, "127.0.0.2", 2)
	a := startGateway(t, fmt.Sprintf(gatewayConfig, "127.0.0.1", "127.0.0.2", pa[0], pa[1], pb[0], "a", "b", "10.1.0.0/16", "10.2.0.0/16"))
	b := startGateway(t, fmt.Sprintf(gatewayConfig, "127.0.0.2", "127.0.0.1", pb[0], pb[1], pa[0], "b", "a", "10.2.0.0/16", "10.1.0.0/16"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := make(chan control.Event, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- b.h.Watch(wctx, func(e *control.Event) error { events <- *e; return nil })
	}()

	if _, err := a.h.Initiate(ctx, control.Target{Child: "net-a"}); err != nil {
		t.Fatalf("initiate: %v", err)
	}
	// Wait for b to report the IKE SA and the Child SA up.
	seen := map[control.EventType]bool{}
	for !seen[control.EventIKEUp] || !seen[control.EventChildUp] {
		select {
		case e := <-events:
			seen[e.Type] = true
		case <-ctx.Done():
			t.Fatalf("b saw only %v", seen)
		}
	}
	// Both sides list one established IKE SA with one installed Child SA, the same SPIs.
	var sas [2][]control.IKESA
	for deadline := time.Now().Add(10 * time.Second); ; {
		sas = [2][]control.IKESA{listSAs(t, a.h), listSAs(t, b.h)}
		if len(sas[0]) == 1 && len(sas[1]) == 1 && len(sas[0][0].Children) == 1 && len(sas[1][0].Children) == 1 &&
			sas[0][0].Children[0].State == "INSTALLED" && sas[1][0].Children[0].State == "INSTALLED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list-sas a: %+v\nlist-sas b: %+v", sas[0], sas[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	sa, sb := sas[0][0], sas[1][0]
	if sa.State != "ESTABLISHED" || !sa.Initiator || sb.Initiator || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr ||
		sa.Children[0].SPIIn != sb.Children[0].SPIOut || sa.Children[0].SPIOut != sb.Children[0].SPIIn {
		t.Errorf("the two sides disagree:\na: %+v\nb: %+v", sa, sb)
	}
	if sa.LocalID != "a.example" || sa.RemoteID != "b.example" || sb.LocalID != "b.example" {
		t.Errorf("identities: local %q remote %q", sa.LocalID, sa.RemoteID)
	}
	if got := strings.Join(sa.Children[0].LocalTS, ","); got != "10.1.0.0/16" {
		t.Errorf("a's child local_ts = %s", got)
	}
	st, err := a.h.Stats(ctx)
	if err != nil || st.IKESAs != 1 || st.ChildSAs != 1 {
		t.Errorf("stats a: %+v %v", st, err)
	}

	// Terminate from b: both sides end up with nothing.
	if d, err := b.h.Terminate(ctx, control.Target{IKE: "ab"}); err != nil || d.Count != 1 {
		t.Fatalf("terminate: %v %v", d, err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(listSAs(t, a.h))+len(listSAs(t, b.h)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("SAs left after terminate: a %+v b %+v", listSAs(t, a.h), listSAs(t, b.h))
		}
	}
	stopWatch()
	if err := <-watchDone; err != nil {
		t.Errorf("watch: %v", err)
	}
	if tot := a.metrics.Totals(); tot.IKESAs != 0 || tot.ChildSAs != 0 {
		t.Errorf("a's gauges after terminate: %+v", tot)
	}
	// The log lines carry the protocol's fields, and no key.
	logs := a.logs.String()
	for _, want := range []string{`"msg":"IKE SA established"`, `"conn":"ab"`, `"spi_i":"` + sa.SPIi.String() + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("a's log lacks %s", want)
		}
	}
	if strings.Contains(logs+b.logs.String(), "e2e-test-psk") {
		t.Error("the PSK appears in a log")
	}
}
