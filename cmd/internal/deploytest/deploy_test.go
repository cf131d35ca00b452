package deploytest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/metrics"
)

const deployDir = "../../../deploy"

func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install Debian's %s package (.ci/deps.sh does)", name, err, pkg)
	}
	return p
}

func runIn(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := filepath.Join(deployDir, "prometheus")
	out := runIn(t, dir, promtool, "check", "rules", "cygnet-rules.yml")
	if !strings.Contains(out, "SUCCESS: 7 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	out = runIn(t, dir, promtool, "test", "rules", "cygnet-rules.test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
	runIn(t, dir, promtool, "check", "config", "prometheus.yml")
}

// Every alert in the rules file has a test in which it fires.
func TestEveryAlertIsTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus/cygnet-rules.yml"), &rules)
	readYAML(t, filepath.Join(deployDir, "prometheus/cygnet-rules.test.yml"), &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test in which it fires", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts found in cygnet-rules.yml")
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// exported returns every series name cygnetd exports (histograms with their _bucket,
// _sum and _count), after every Recorder method was called once.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New(metrics.Options{})
	m.SetConnections([]string{"ab"})
	m.IKESAEstablished("ab")
	m.ChildSAInstalled("ab")
	m.HalfOpenChanged(1)
	m.NotifySent("COOKIE")
	m.NotifyReceived("COOKIE")
	m.ChildFailed("ab", "kernel")
	m.FamilyTeardown("timeout")
	m.CookieSent()
	m.ActorStopped(telemetry.ActorChild, telemetry.StopPanic)
	m.ConfigReloaded(true, time.Now())
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		if mf.GetType().String() == "HISTOGRAM" {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:cygnet|process|go)_[a-z0-9_]+\b`)

// dashboardExprs returns every PromQL expression in the Grafana dashboard: panel targets
// and templating queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana/cygnet-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	if len(exprs) < 10 {
		t.Fatalf("dashboard has only %d expressions", len(exprs))
	}
	return exprs
}

func ruleExprs(t *testing.T) []string {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus/cygnet-rules.yml"), &rules)
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

// Every metric the dashboard and the alert rules name is one cygnetd exports, and every
// cygnet metric family appears on the dashboard.
func TestMetricNamesExist(t *testing.T) {
	have := exported(t)
	used := map[string]bool{}
	for src, exprs := range map[string][]string{"dashboard": dashboardExprs(t), "rules": ruleExprs(t)} {
		for _, e := range exprs {
			for _, n := range metricName.FindAllString(e, -1) {
				used[n] = true
				if !have[n] {
					t.Errorf("%s uses %s, which cygnetd does not export (in %q)", src, n, e)
				}
			}
		}
	}
	var missing []string
	for n := range have {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(n, "cygnet_") && !used[n] && !used[base+"_bucket"] && !used[base] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("cygnet metrics not on the dashboard: %s", strings.Join(missing, ", "))
	}
}

// The example configurations load without errors or warnings (as installed: mode 0600).
func TestExamplesLoad(t *testing.T) {
	cfgs := map[string]*config.Config{}
	for _, name := range []string{"site-a.yaml", "site-b.yaml", "concentrator.yaml"} {
		data, err := os.ReadFile(filepath.Join(deployDir, "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(p, config.Options{})
		if err != nil {
			t.Errorf("%s:\n%v", name, err)
			continue
		}
		if len(cfg.Warnings) > 0 {
			t.Errorf("%s: warnings:\n%s", name, strings.Join(cfg.Warnings, "\n"))
		}
		cfgs[name] = cfg
	}
	a, b := cfgs["site-a.yaml"], cfgs["site-b.yaml"]
	if a == nil || b == nil {
		return
	}
	// The pair mirrors itself: each side's local is the other's remote.
	ca, cb := a.Connections[0], b.Connections[0]
	if ca.Local.ID != cb.Remote.ID || ca.Remote.ID != cb.Local.ID || !slices.Equal(ca.LocalAddrs, cb.RemoteAddrs) ||
		!slices.Equal(ca.RemoteAddrs, cb.LocalAddrs) || !slices.Equal(ca.Proposals, cb.Proposals) {
		t.Errorf("site-a and site-b do not mirror each other:\n%v\n%v", ca, cb)
	}
	for _, chA := range ca.Children {
		_, chB, ok := b.Child(chA.Name)
		if !ok {
			t.Errorf("site-b lacks child %s", chA.Name)
			continue
		}
		if config.TSList(chA.LocalTS) != config.TSList(chB.RemoteTS) || config.TSList(chA.RemoteTS) != config.TSList(chB.LocalTS) ||
			!slices.Equal(chA.ESPProposals, chB.ESPProposals) {
			t.Errorf("child %s: A %s === %s, B %s === %s", chA.Name, config.TSList(chA.LocalTS), config.TSList(chA.RemoteTS),
				config.TSList(chB.LocalTS), config.TSList(chB.RemoteTS))
		}
	}
	pa, _ := a.PSK(ca.Local.ID, ca.Remote.ID)
	pb, _ := b.PSK(cb.Local.ID, cb.Remote.ID)
	if pa == nil || pb == nil || !pa.PSK.Equal(pb.PSK) {
		t.Error("site-a and site-b do not share their PSK")
	}
	// The concentrator finds a branch's own key by the identity it presents.
	if c := cfgs["concentrator.yaml"]; c != nil {
		conn, _ := c.Connection("branches")
		for i, id := range []string{"@branch-0001.example.net", "@branch-0002.example.net", "@branch-0003.example.net"} {
			peer, _ := config.ParseIdentity(id)
			s, ok := c.PSK(conn.Local.ID, peer)
			if want := "ike-branch-000" + strconv.Itoa(i+1); !ok || s.Name != want {
				t.Errorf("PSK for %s = %v, want %s", id, s, want)
			}
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	data, err := os.ReadFile(filepath.Join(deployDir, "systemd/cygnetd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE\n",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE\n",
		"ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n", "NoNewPrivileges=yes\n",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n", "RuntimeDirectory=cygnet\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("cygnetd.service lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(unit, "CAP_NET_RAW") && !strings.Contains(unit, "# CAP_NET_RAW is not needed") {
		t.Error("cygnetd.service grants CAP_NET_RAW")
	}
	// systemd-analyze needs the executables to exist: point them at /bin/true.
	dir := t.TempDir()
	p := filepath.Join(dir, "cygnetd.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/sbin/cygnetd", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", p)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for cygnetd.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security exposure: %.1f", score)
	if score > 2.5 {
		t.Errorf("exposure level %.1f, want at most 2.5 (systemd's \"OK\" band)", score)
	}
}
