package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// xfrmPolicy is one entry of `ip xfrm policy list`, reduced to what identifies it.
type xfrmPolicy struct {
	src, dst, dir string
	reqid         uint32
}

func (p xfrmPolicy) String() string {
	return fmt.Sprintf("%s→%s %s reqid %#x", p.src, p.dst, p.dir, p.reqid)
}

// cygnetTag is the top byte of every reqid cygnet installs (kernel.ReqidTag); the test
// reads it from the kernel's own tables, so it does not import the constant.
const cygnetTag = 0xc7

func (p xfrmPolicy) cygnets() bool { return p.reqid>>24 == cygnetTag }

// policies lists the namespace's XFRM policies with iproute2.
func policies(t *testing.T, ns *netns.NS) []xfrmPolicy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "ip", "xfrm", "policy", "list")
	if err != nil {
		t.Fatalf("ip xfrm policy list: %v\n%s", err, out)
	}
	var ps []xfrmPolicy
	for _, block := range strings.Split(string(out), "\nsrc ") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(block), "src "))
		if len(f) < 3 || f[1] != "dst" {
			continue
		}
		p := xfrmPolicy{src: f[0], dst: f[2]}
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "dir":
				p.dir = f[i+1]
			case "reqid":
				v, err := strconv.ParseUint(f[i+1], 0, 32)
				if err != nil {
					t.Fatalf("reqid %q in:\n%s", f[i+1], out)
				}
				p.reqid = uint32(v)
			}
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b xfrmPolicy) int { return strings.Compare(a.String(), b.String()) })
	return ps
}

// describe prints policies without their reqids (which a new run may reuse), marking
// cygnet's.
func describe(ps []xfrmPolicy) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		owner := "foreign"
		if p.cygnets() {
			owner = "cygnet"
		}
		s[i] = fmt.Sprintf("%s→%s %s %s", p.src, p.dst, p.dir, owner)
	}
	return strings.Join(s, "; ")
}

// TestKillRestartLeavesNothing: cygnetd on the XFRM backend installs trap policies
// (start_action trap: policies only, which this kernel supports without ESP) in its
// namespace; killed with SIGKILL it leaves them behind; restarted with another
// configuration it removes them before installing its own, so the SPD then holds
// exactly the new run's policies and a foreign policy that was never cygnet's; a
// graceful stop removes the new run's policies too.
func TestKillRestartLeavesNothing(t *testing.T) {
	t.Parallel()
	p := netns.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A policy that is not cygnet's (untagged reqid 7): it must survive everything.
	if out, err := p.A.Run(ctx, "ip", "xfrm", "policy", "add", "src", "10.9.0.0/24", "dst", "10.8.0.0/24", "dir", "out",
		"tmpl", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "reqid", "7", "mode", "tunnel"); err != nil {
		t.Fatalf("adding a foreign policy: %v\n%s", err, out)
	}
	foreign := "10.9.0.0/24→10.8.0.0/24 out foreign"

	trap := func(aTS, bTS string) connSpec {
		return connSpec{name: "trapped", children: []childSpec{{name: "tr", aTS: aTS, bTS: bTS, start: "trap"}}}
	}
	a := newDaemon(t, "a", p.A, "--kernel", "xfrm")
	a.writeConfig(render("a", p.A, p.B, a.socket, daemonOpts{}, trap("198.51.100.0/24", "203.0.113.0/24")))
	a.start()
	if !strings.Contains(a.log.String(), "kernel backend: xfrm") {
		t.Fatalf("--kernel xfrm: the log does not say the XFRM backend is used")
	}
	first := foreign + "; 198.51.100.0/24→203.0.113.0/24 out cygnet"
	eventually(t, 10*time.Second, "the trap policy installed", func() string {
		if got := describe(policies(t, p.A)); got != first {
			return fmt.Sprintf("SPD: %s; want %s", got, first)
		}
		return ""
	})

	a.kill()
	if got := describe(policies(t, p.A)); got != first {
		t.Fatalf("after SIGKILL the SPD is %s; want the killed run's trap policy still there: %s", got, first)
	}

	// The next run traps other subnets: whatever of the first run's is still in the SPD
	// afterwards is a leftover.
	a.writeConfig(render("a", p.A, p.B, a.socket, daemonOpts{}, trap("198.51.100.0/25", "203.0.113.0/25")))
	a.start()
	second := "10.9.0.0/24→10.8.0.0/24 out foreign; 198.51.100.0/25→203.0.113.0/25 out cygnet"
	eventually(t, 10*time.Second, "only the new run's trap policy and the foreign one", func() string {
		if got := describe(policies(t, p.A)); got != second {
			return fmt.Sprintf("SPD: %s; want %s", got, second)
		}
		return ""
	})
	if !strings.Contains(a.log.String(), `"msg":"removed kernel state left by a previous run","sas":0,"policies":1`) {
		t.Errorf("the restarted daemon's log does not report removing the killed run's policy")
	}

	a.stop()
	if got := describe(policies(t, p.A)); got != foreign {
		t.Errorf("after a graceful stop the SPD is %s; want only %s", got, foreign)
	}
}
