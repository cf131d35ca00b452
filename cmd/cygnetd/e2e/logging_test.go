package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// daemon.log.subsystems applies to every line cygnetd writes, the actor tree's
// included: with everything at warn but the family subsystem at debug, the IKE
// family's lines (the manager's "IKE SA established" for it, the notifies at debug)
// appear (a refused Child SA makes a debug one: N(TS_UNACCEPTABLE) received), and no line below warn from any other subsystem does — no Child SA line
// (child at warn), no manager, socket, protoactor, kernel, control or daemon info.
func TestLogLevelsPerSubsystem(t *testing.T) {
	t.Parallel()
	conn := connSpec{name: "site", children: []childSpec{{name: "net", aTS: "198.51.100.0/26", bTS: "203.0.113.0/26", start: "start"},
		{name: "bad", aTS: "198.51.100.0/24", bTS: "192.0.2.128/25", onlyOnSide: "a"}}}
	a, b := pairOf(t, daemonOpts{}, conn)
	waitTunnel(t, a, b, "site", "net")
	a.stop()

	a2 := newDaemon(t, "a2", a.ns)
	cfg := strings.Replace(render("a", a.ns, b.ns, a2.socket, daemonOpts{}, conn),
		"  log: {format: json, level: debug}", "  log: {format: json, level: warn, subsystems: {family: debug}}", 1)
	if !strings.Contains(cfg, "subsystems: {family: debug}") {
		t.Fatal("the test's configuration edit did not apply")
	}
	a2.writeConfig(cfg)
	a2.start()
	waitTunnel(t, a2, b, "site", "net")
	// A Child SA the peer refuses: N(TS_UNACCEPTABLE) received is a debug line of the
	// family subsystem; "Child SA failed" a warning of the child subsystem.
	if r := a2.ctl("initiate", "--child", "bad"); r.code != 1 {
		t.Fatalf("initiate --child bad: exit %d, %q; want 1", r.code, r.stderr)
	}
	a2.stop()

	var familyDebug, ikeUp bool
	for _, ln := range strings.Split(strings.TrimSpace(a2.log.String()), "\n") {
		var e struct {
			Level, Logger, Msg string
		}
		if err := json.Unmarshal([]byte(ln), &e); err != nil {
			t.Errorf("log line is not JSON: %q", ln)
			continue
		}
		switch {
		case e.Msg == "Child SA established":
			t.Errorf("a Child SA info line with the child subsystem at warn: %s", ln)
		case e.Logger == "family" && e.Level == "debug":
			familyDebug = true
		case e.Logger == "family" && e.Msg == "IKE SA established":
			ikeUp = true
		case e.Logger != "family" && (e.Level == "debug" || e.Level == "info"):
			t.Errorf("a line below warn from %q (at warn): %s", e.Logger, ln)
		}
	}
	if !familyDebug || !ikeUp {
		t.Errorf("family at debug: a debug line: %v, \"IKE SA established\": %v; want both\n%s", familyDebug, ikeUp, a2.log.String())
	}
}
