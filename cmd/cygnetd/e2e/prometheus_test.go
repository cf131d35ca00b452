package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// prometheusBin is Debian's prometheus package's server (installed by .ci/deps.sh).
const prometheusBin = "/usr/bin/prometheus"

// nsGet sends GET path to addr from inside ns: the socket is made on a thread that has
// joined the namespace (its loopback is not the test's), the exchange happens outside.
func nsGet(ns *netns.NS, addr, path string) ([]byte, error) {
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// freePort returns a TCP port nothing listens on in ns's loopback.
func freePort(t *testing.T, ns *netns.NS) int {
	t.Helper()
	var port int
	if err := ns.Do(func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port = l.Addr().(*net.TCPAddr).Port
		return l.Close()
	}); err != nil {
		t.Fatal(err)
	}
	return port
}

// promQuery runs an instant PromQL query over Prometheus's HTTP API and returns the
// single sample's value ("" when the result is empty).
func promQuery(ns *netns.NS, addr, query string) (string, error) {
	body, err := nsGet(ns, addr, "/api/v1/query?query="+url.QueryEscape(query))
	if err != nil {
		return "", err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("query %s: %v: %s", query, err, body)
	}
	if r.Status != "success" {
		return "", fmt.Errorf("query %s: %s %s", query, r.Status, r.Error)
	}
	switch len(r.Data.Result) {
	case 0:
		return "", nil
	case 1:
		v, _ := r.Data.Result[0].Value[1].(string)
		return v, nil
	}
	return "", fmt.Errorf("query %s: %d samples, want one: %s", query, len(r.Data.Result), body)
}

// TestPrometheusScrape: a real Prometheus server scrapes cygnetd's /metrics and the
// PromQL query for established IKE SAs returns the number the test established.
func TestPrometheusScrape(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("%s is missing: install Debian's prometheus package (make test-deps runs .ci/deps.sh): %v", prometheusBin, err)
	}
	third := connSpec{name: "third", children: []childSpec{{name: "th", aTS: "198.51.100.192/26", bTS: "203.0.113.192/26", start: "start"}}}
	const metricsAddr = "127.0.0.1:9917" // the namespace's own loopback
	a, b := pairOf(t, daemonOpts{metrics: metricsAddr}, siteConn, otherConn, third)
	waitTunnel(t, a, b, "site", "net1", "net2")
	waitTunnel(t, a, b, "other", "oth")
	waitTunnel(t, a, b, "third", "th")
	const established = 3

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: cygnetd
    static_configs:
      - targets: ['%s']
`, metricsAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, a.ns))
	log := &syncBuffer{}
	prom, err := a.ns.Start(netns.Command{Path: prometheusBin, Stdout: log, Stderr: log, Args: []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + promAddr,
		"--log.level=warn",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := prom.Stop(); err != nil {
			t.Errorf("prometheus: %v", err)
		}
		if t.Failed() {
			t.Logf("--- prometheus log ---\n%s", log.String())
		}
	})

	var last string
	eventually(t, 60*time.Second, "Prometheus reports the established IKE SAs", func() string {
		if exited, err := prom.Exited(); exited {
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		}
		up, err := promQuery(a.ns, promAddr, `up{job="cygnetd"}`)
		if err != nil {
			return err.Error()
		}
		if up != "1" {
			return fmt.Sprintf("target up = %q (not scraped yet?)", up)
		}
		last, err = promQuery(a.ns, promAddr, `sum(cygnet_ike_sas_established{job="cygnetd"})`)
		if err != nil {
			return err.Error()
		}
		if last != fmt.Sprint(established) {
			return fmt.Sprintf("sum(cygnet_ike_sas_established) = %q, want %d", last, established)
		}
		return ""
	})
	if v, err := promQuery(a.ns, promAddr, `cygnet_child_sas_installed{connection="site"}`); err != nil || v != "2" {
		t.Errorf(`cygnet_child_sas_installed{connection="site"} = %q (%v), want 2`, v, err)
	}
	// The endpoint itself, read the same way, agrees.
	body, err := nsGet(a.ns, metricsAddr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `cygnet_ike_sas_established{connection="third"} 1`) {
		t.Errorf("/metrics lacks third's established IKE SA")
	}
}
