package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// lineOf returns the 1-based number of the first line of text containing s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the configuration", s)
	return 0
}

// TestReload: a reload with a changed, a removed, an added and an unchanged connection
// replaces the changed connection's SAs, deletes the removed one's, brings up the added
// one and leaves the unchanged one's SAs exactly as they were (same SPIs on both
// sides). Bad files, by cygnetctl reload and by SIGHUP, are refused with file, line and
// key, and change nothing.
func TestReload(t *testing.T) {
	t.Parallel()
	site := siteConn
	keep := connSpec{name: "keep", children: []childSpec{{name: "kp", aTS: "198.51.100.128/26", bTS: "203.0.113.128/26", start: "start"}}}
	gone := connSpec{name: "gone", children: []childSpec{{name: "gn", aTS: "198.51.100.192/27", bTS: "203.0.113.192/27", start: "start"}}}
	extra := connSpec{name: "extra", children: []childSpec{{name: "ex", aTS: "198.51.100.224/27", bTS: "203.0.113.224/27", start: "start"}}}

	p := netns.NewPair(t)
	a, b := newDaemon(t, "a", p.A), newDaemon(t, "b", p.B)
	configA := func(conns ...connSpec) string { return render("a", p.A, p.B, a.socket, daemonOpts{}, conns...) }
	// B knows every connection from the start; it only answers.
	b.writeConfig(render("b", p.B, p.A, b.socket, daemonOpts{}, site, keep, gone, extra))
	a.writeConfig(configA(site, keep, gone))
	b.start()
	a.start()
	siteBefore := waitTunnel(t, a, b, "site", "net1", "net2")
	keepBefore := waitTunnel(t, a, b, "keep", "kp")
	waitTunnel(t, a, b, "gone", "gn")

	// 1. cygnetctl reload: site changed (net1's rekey_time), gone removed, extra added.
	site2 := site
	site2.children = append([]childSpec(nil), site.children...)
	site2.children[0].rekeyTime = "50m"
	a.writeConfig(configA(site2, keep, extra))
	out := a.mustCtl("reload")
	if want := "configuration reloaded: 1 added (extra), 1 removed (gone), 1 changed (site), 1 unchanged"; !strings.Contains(out, want) {
		t.Errorf("cygnetctl reload said %q, want %q", out, want)
	}
	siteAfter := waitTunnel(t, a, b, "site", "net1", "net2")
	waitTunnel(t, a, b, "extra", "ex")
	eventually(t, 20*time.Second, "gone deleted on both sides", func() string {
		for _, d := range []*daemon{a, b} {
			for _, sa := range d.sas() {
				if sa.Conn == "gone" {
					return fmt.Sprintf("%s still lists gone (%s)", d.name, sa.State)
				}
			}
		}
		return ""
	})
	if siteAfter.a.UniqueID == siteBefore.a.UniqueID || siteAfter.a.SPIi == siteBefore.a.SPIi {
		t.Errorf("site's IKE SA was not replaced: #%d %v_i before, #%d %v_i after", siteBefore.a.UniqueID, siteBefore.a.SPIi, siteAfter.a.UniqueID, siteAfter.a.SPIi)
	}
	// The replacement was made with the new definition: net1 rekeys within 50 minutes.
	if net1 := siteAfter.child("net1"); net1.RekeyAt == 0 || net1.RekeyAt > net1.Installed+50*60 {
		t.Errorf("site/net1 rekeys at %d, installed at %d: the new rekey_time (50m) was not used", net1.RekeyAt, net1.Installed)
	}
	if conns := a.mustCtl("list-conns"); !strings.Contains(conns, "net1: TUNNEL, rekeying every 3000s") || strings.Contains(conns, "gone:") {
		t.Errorf("list-conns after reload:\n%s", conns)
	}
	assertKept := func(step string) {
		t.Helper()
		now, why := pairState(a, b, "keep", "kp")
		switch {
		case why != "":
			t.Fatalf("%s: keep: %s", step, why)
		case now.a.UniqueID != keepBefore.a.UniqueID || now.a.SPIi != keepBefore.a.SPIi || now.a.SPIr != keepBefore.a.SPIr:
			t.Fatalf("%s: keep's IKE SA changed: #%d %v_i %v_r -> #%d %v_i %v_r", step, keepBefore.a.UniqueID, keepBefore.a.SPIi, keepBefore.a.SPIr, now.a.UniqueID, now.a.SPIi, now.a.SPIr)
		case !sameChild(now.child("kp"), keepBefore.child("kp")):
			t.Fatalf("%s: keep's Child SA changed: %+v -> %+v", step, keepBefore.child("kp"), now.child("kp"))
		}
	}
	assertKept("after reload")
	running := a.mustCtl("list-conns")
	state := func() string {
		var b strings.Builder
		for _, sa := range a.sas() {
			fmt.Fprintf(&b, "%s %v %v;", sa.Conn, sa.SPIi, sa.SPIr)
			for _, c := range sa.Children {
				fmt.Fprintf(&b, " %s %v %v", c.Name, c.SPIIn, c.SPIOut)
			}
		}
		return b.String()
	}
	before := state()

	// 2. A bad file by cygnetctl reload: refused, with file, line and key.
	bad := strings.Replace(configA(site2, keep), "    local_addrs:", "    bogus_key: 1\n    local_addrs:", 1)
	a.writeConfig(bad)
	r := a.ctl("reload")
	wantLoc := fmt.Sprintf("%s:%d: connections.site.bogus_key:", a.config, lineOf(t, bad, "bogus_key"))
	if r.code != 1 || !strings.Contains(r.stderr, wantLoc) || !strings.Contains(r.stderr, "unchanged") {
		t.Errorf("cygnetctl reload of a bad file: exit %d, stderr %q; want 1, %q and that the running configuration is unchanged", r.code, r.stderr, wantLoc)
	}

	// 3. A bad file by SIGHUP: the log says why, nothing changes.
	bad = strings.Replace(configA(site2, keep), "[198.51.100.64/26]", "[198.51.100.64/33]", 1)
	a.writeConfig(bad)
	a.signal(syscall.SIGHUP)
	wantLoc = fmt.Sprintf("%s:%d: connections.site.children.net2.local_ts:", a.config, lineOf(t, bad, "198.51.100.64/33"))
	eventually(t, 10*time.Second, "the log explains the refused SIGHUP reload", func() string {
		if !strings.Contains(a.log.String(), wantLoc) {
			return "no log line with " + wantLoc
		}
		return ""
	})
	if got := a.mustCtl("list-conns"); got != running {
		t.Errorf("list-conns changed after refused reloads:\n%s\nwas:\n%s", got, running)
	}
	if got := state(); got != before {
		t.Errorf("SAs changed after refused reloads:\n%s\nwas:\n%s", got, before)
	}

	// 4. A good file by SIGHUP takes effect: extra is removed, keep still untouched.
	a.writeConfig(configA(site2, keep))
	a.signal(syscall.SIGHUP)
	eventually(t, 20*time.Second, "extra deleted on both sides after SIGHUP", func() string {
		for _, d := range []*daemon{a, b} {
			for _, sa := range d.sas() {
				if sa.Conn == "extra" {
					return fmt.Sprintf("%s still lists extra (%s)", d.name, sa.State)
				}
			}
		}
		return ""
	})
	assertKept("after SIGHUP")
	if _, why := pairState(a, b, "site", "net1", "net2"); why != "" {
		t.Errorf("site after SIGHUP: %s", why)
	}
}

// runCygnetd runs cygnetd to completion (with a bound) in the test's own namespace:
// only for configurations that cannot start, or --check, which touch nothing.
func runCygnetd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cygnetdBin, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("cygnetd %s: %v\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String(), e.String(), code
}

// TestBadConfigAtStart: a file that does not load ends cygnetd at once with status 1 and
// every problem as file:line: key: message; nothing is started (no control socket).
func TestBadConfigAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := &netns.Pair{A: &netns.NS{Outer: netns.OuterA}, B: &netns.NS{Outer: netns.OuterB}}
	sock := filepath.Join(dir, "cygnet.sock")
	good := render("a", p.A, p.B, sock, daemonOpts{}, siteConn)
	path := filepath.Join(dir, "cygnet.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	write(good)
	if out, errOut, code := runCygnetd(t, "--config", path, "--check"); code != 0 || !strings.Contains(out, "configuration OK (1 connections)") {
		t.Errorf("--check of a good file: exit %d, %q %q", code, out, errOut)
	}

	bad := strings.Replace(good, "[198.51.100.0/26]", "[198.51.100.0/33]", 1)
	bad = strings.Replace(bad, "start_action: start", "start_action: sometimes", 1)
	write(bad)
	_, errOut, code := runCygnetd(t, "--config", path)
	if code != 1 {
		t.Errorf("cygnetd with a bad file: exit %d, want 1\n%s", code, errOut)
	}
	for _, want := range []string{
		fmt.Sprintf("%s:%d: connections.site.children.net1.local_ts:", path, lineOf(t, bad, "198.51.100.0/33")),
		fmt.Sprintf("%s:%d: connections.site.children.net1.start_action:", path, lineOf(t, bad, "sometimes")),
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("a control socket exists although cygnetd refused its configuration")
	}
	if _, _, code := runCygnetd(t, "--config", path, "--check"); code != 1 {
		t.Errorf("--check of a bad file: exit %d, want 1", code)
	}
	if _, errOut, code := runCygnetd(t, "--config", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errOut, "missing.yaml: cannot read the configuration") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCygnetd(t, "--config", path, "--kernel", "fpga"); code != 2 || !strings.Contains(errOut, "--kernel: expected auto, xfrm or memory") {
		t.Errorf("--kernel fpga: exit %d, %q; want 2 and the choices", code, errOut)
	}
}
