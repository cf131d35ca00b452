package netns

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPairAddressesAndReachability(t *testing.T) {
	t.Parallel()
	p := NewPair(t)
	ctx := ctxT(t)

	if err := p.A.Ping(ctx, p.A.Outer.Addr(), p.B.Outer.Addr(), 1); err != nil {
		t.Fatalf("outer A->B: %v", err)
	}
	if err := p.B.Ping(ctx, p.B.Outer.Addr(), p.A.Outer.Addr(), 1); err != nil {
		t.Fatalf("outer B->A: %v", err)
	}
	// No route to the other side's inner address: only a tunnel may carry it.
	if err := p.A.Ping(ctx, p.A.Inner, p.B.Inner, 1); err == nil {
		t.Fatalf("inner A->B answered without a tunnel")
	}

	for _, ns := range []*NS{p.A, p.B} {
		out, err := ns.Run(ctx, "ip", "-o", "addr", "show")
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		if strings.Contains(s, "inet6") {
			t.Errorf("%s: IPv6 address present although disabled:\n%s", ns.Name, s)
		}
		for _, want := range []string{ns.Outer.String(), ns.Inner.String() + "/32"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: address %s missing:\n%s", ns.Name, want, s)
			}
		}
		out, err = ns.Run(ctx, "ip", "route", "show", "default")
		if err != nil {
			t.Fatal(err)
		}
		if len(strings.TrimSpace(string(out))) != 0 {
			t.Errorf("%s: has a default route: %s", ns.Name, out)
		}
	}
}

func TestLinkDownSilencesPeer(t *testing.T) {
	t.Parallel()
	p := NewPair(t)
	ctx := ctxT(t)
	if err := p.B.SetLinkUp(false); err != nil {
		t.Fatal(err)
	}
	if err := p.A.Ping(ctx, p.A.Outer.Addr(), p.B.Outer.Addr(), 1); err == nil {
		t.Fatal("ping answered with B's link down")
	}
	if err := p.B.SetLinkUp(true); err != nil {
		t.Fatal(err)
	}
	// The link needs a moment to come back (carrier); retry, bounded.
	var err error
	for i := 0; i < 10; i++ {
		if err = p.A.Ping(ctx, p.A.Outer.Addr(), p.B.Outer.Addr(), 1); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after link up: %v", err)
	}
}

func TestUniqueNames(t *testing.T) {
	t.Parallel()
	p1, p2 := NewPair(t), NewPair(t)
	names := map[string]bool{}
	for _, n := range []string{p1.A.Name, p1.B.Name, p2.A.Name, p2.B.Name} {
		if names[n] {
			t.Fatalf("duplicate namespace name %s", n)
		}
		names[n] = true
	}
	for _, ns := range []*NS{p1.A, p1.B, p2.A, p2.B} {
		if len(ns.Link) > 15 {
			t.Errorf("link name %q longer than IFNAMSIZ-1", ns.Link)
		}
	}
}

func TestStartStopByPIDInsideNamespace(t *testing.T) {
	t.Parallel()
	p := NewPair(t)
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "marker"), []byte("private"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	// The process proves three things: it sees the namespace's veth, it sees our
	// private /run, and it stays up until stopped.
	proc, err := p.A.Start(Command{
		Path:       "sh",
		Args:       []string{"-c", `{ ip -o link show; cat /run/marker; } > "$0"; exec sleep 600`, out},
		PrivateRun: run,
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var got []byte
	for time.Now().Before(deadline) {
		got, _ = os.ReadFile(out)
		if strings.Contains(string(got), "private") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(got), p.A.Link) || !strings.Contains(string(got), "private") {
		t.Fatalf("process output %q: want link %s and the private /run marker", got, p.A.Link)
	}
	if exited, err := proc.Exited(); exited {
		t.Fatalf("process exited early: %v", err)
	}
	// Our /run is untouched by the private mount.
	if _, err := os.Stat("/run/marker"); err == nil {
		t.Fatal("/run/marker visible outside the process")
	}
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := proc.Exited(); !exited {
		t.Fatal("process still running after Stop")
	}
}

func TestDoJoinsNamespace(t *testing.T) {
	t.Parallel()
	p := NewPair(t)
	var found bool
	err := p.B.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifs {
			if i.Name == p.B.Link {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("interface %s not visible inside Do", p.B.Link)
	}
	// And we are back where we were.
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name == p.B.Link {
			t.Fatalf("interface %s visible after Do returned", p.B.Link)
		}
	}
}
