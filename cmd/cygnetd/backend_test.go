package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// TestProbeLeavesNothing runs the ESP probe in a namespace the test owns (the path
// taken when no throw-away namespace can be made) and checks that the SAD is empty
// afterwards, whichever answer the kernel gave: nil (ESP works) or a refusal that says
// the kernel lacks something (kernel.ErrUnsupported).
func TestProbeLeavesNothing(t *testing.T) {
	p := netns.NewPair(t)
	h, err := vnetns.GetFromName(p.A.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = probeESPIn(ctx, h)
	if err != nil && !errors.Is(err, kernel.ErrUnsupported) {
		t.Fatalf("probe: %v; want nil or kernel.ErrUnsupported", err)
	}
	t.Logf("this kernel: %v", err)
	out, rerr := p.A.Run(ctx, "ip", "xfrm", "state", "list")
	if rerr != nil {
		t.Fatalf("ip xfrm state: %v\n%s", rerr, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("the probe left ESP state behind:\n%s", s)
	}
}

// TestThrowAwayNetns: the probe's namespace is a new one, and the caller's thread is
// back in its own afterwards.
func TestThrowAwayNetns(t *testing.T) {
	own, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	h, err := throwAwayNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Equal(own) {
		t.Fatalf("throwAwayNetns returned the caller's namespace")
	}
	after, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(own) {
		t.Fatalf("the calling goroutine's thread was left in another namespace")
	}
}
