//go:build concentrator

package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/cygnet-load/internal/loadgen"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

var (
	flagQuick         = flag.Bool("quick", false, "a small run: scales 2000,5000; setup 3000; flood 10 s; rekey lifetime 30 s")
	flagScales        = flag.String("scales", "10000,50000,100000", "IKE SA counts held in the scale step")
	flagSetupCount    = flag.Int("setup-count", 20000, "IKE SAs per setup-rate measurement")
	flagReestablish   = flag.Int("reestablish", -1, "IKE SAs in the mass re-establishment step (-1: the largest scale; 0: skip)")
	flagSources       = flag.Int("sources", 100, "source addresses of the load generator")
	flagInflight      = flag.Int("inflight", 512, "handshakes in flight")
	flagChildRekey    = flag.Duration("child-rekey", 120*time.Second, "Child SA rekey time in the scale step (the steady-state rekey window is this long)")
	flagIKERekey      = flag.Duration("ike-rekey", 0, "IKE SA rekey time in the scale step (0: 4 h, outside the window)")
	flagCharon        = flag.Bool("charon", true, "measure charon too")
	flagCharonThreads = flag.Int("charon-threads", 32, "charon's worker threads (strongswan.conf charon.threads; its default is 16)")
	flagFloodRate     = flag.Float64("flood-rate", 20000, "spoofed IKE_SA_INIT requests per second")
	flagFloodTime     = flag.Duration("flood-duration", 30*time.Second, "how long the flood lasts")
	flagProfile       = flag.Bool("profile", true, "perf profile of each responder during a setup run")
	flagOut           = flag.String("out", "", "results directory (default: /tmp/cygnet-bench-<time>)")
	flagSteps         = flag.String("steps", "setup,scale,reestablish,flood", "steps to run")
	flagDaemonExtra   = flag.String("cygnetd-daemon", "", "extra settings for cygnetd's daemon block, YAML flow style without braces (e.g. \"memory_limit: 1g\" or \"gc_percent: 50\")")
	flagSetupTimeout  = flag.Duration("setup-timeout", 15*time.Minute, "bound on each setup phase (a responder that needs longer has failed that scale)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if err := netns.CheckPrereqs(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "cygnet-bench-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: no Go toolchain on the PATH to build cygnetd with")
		os.Exit(1)
	}
	cmd := exec.Command(gobin, "build", "-o", dir+"/", "github.com/cygnet-ipsec/cygnet/cmd/cygnetd",
		"github.com/cygnet-ipsec/cygnet/cmd/cygnetctl", "github.com/cygnet-ipsec/cygnet/cmd/cygnet-load")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: go build: %v\n%s", err, out)
		os.Exit(1)
	}
	bins.cygnetd, bins.cygnetctl, bins.load = filepath.Join(dir, "cygnetd"), filepath.Join(dir, "cygnetctl"), filepath.Join(dir, "cygnet-load")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Results is everything one run measured.
type Results struct {
	Machine     Machine       `json:"machine"`
	Date        time.Time     `json:"date"`
	Args        string        `json:"args"`
	Floor       Floor         `json:"key_exchange_floor"`
	Setup       []SetupResult `json:"setup"`
	Profiles    []Profile     `json:"profiles"`
	Scale       []ScaleResult `json:"scale"`
	Reestablish []ReestResult `json:"reestablish"`
	Flood       []FloodResult `json:"flood"`
	Errors      []string      `json:"errors"`
	// LoadAvg is /proc/loadavg after each step: the machine is shared, and other
	// work on it shows in every number here.
	LoadAvg []string `json:"loadavg"`
	out     string
}

// Machine says where the numbers come from.
type Machine struct {
	CPU    string  `json:"cpu"`
	Cores  int     `json:"cores"`
	MemGiB float64 `json:"mem_gib"`
	Kernel string  `json:"kernel"`
	Go     string  `json:"go"`
	Charon string  `json:"charon"`
	Commit string  `json:"commit"`
}

// Floor is the cost of the key exchange alone, measured in this run.
type Floor struct {
	// ResponderX25519us is one responder's X25519 work per handshake: a key pair and
	// the shared secret (two scalar multiplications).
	ResponderX25519us float64 `json:"responder_x25519_us"`
	// ScalarMultUS is one X25519 scalar multiplication.
	ScalarMultUS float64 `json:"scalar_mult_us"`
}

// SetupResult is one responder's setup rate.
type SetupResult struct {
	Responder     string            `json:"responder"`
	Count         int               `json:"count"`
	Established   uint64            `json:"established"`
	Failed        uint64            `json:"failed"`
	Retransmits   uint64            `json:"retransmits"`
	Seconds       float64           `json:"seconds"`
	Rate          float64           `json:"rate_per_s"`
	PeakRate      uint64            `json:"peak_rate_per_s"`
	Latency       loadgen.Latency   `json:"latency"`
	CPUus         float64           `json:"responder_cpu_us_per_ike_sa"`
	CPUTimesFloor float64           `json:"times_floor"`
	LoadCPUus     float64           `json:"load_cpu_us_per_ike_sa"`
	RSSMiB        float64           `json:"responder_rss_mib"`
	Failures      map[string]uint64 `json:"failures,omitempty"`
}

// Profile is the top of a responder's CPU profile during a setup run.
type Profile struct {
	Responder string `json:"responder"`
	File      string `json:"file"`
	Flat      string `json:"flat"`
	Children  string `json:"children"`
}

// ScaleResult is one held population.
type ScaleResult struct {
	Responder      string            `json:"responder"`
	Target         int               `json:"target"`
	Established    uint64            `json:"established"`
	Failed         uint64            `json:"failed"`
	SetupSeconds   float64           `json:"setup_seconds"`
	SetupRate      float64           `json:"setup_rate"`
	Latency        loadgen.Latency   `json:"latency"`
	ResponderSAs   int               `json:"responder_ike_sas"`
	RSSBaseMiB     float64           `json:"rss_base_mib"`
	RSSMiB         float64           `json:"rss_mib"`
	KiBPerIKESA    float64           `json:"kib_per_ike_sa"`
	ListSAsSeconds float64           `json:"list_sas_seconds"`
	ListSAsCount   int               `json:"list_sas_lines"`
	ListSAsError   string            `json:"list_sas_error,omitempty"`
	MetricsMS      float64           `json:"metrics_ms"`
	MetricsBytes   int               `json:"metrics_bytes"`
	RekeyWindowS   float64           `json:"rekey_window_s"`
	ChildRekeys    uint64            `json:"child_rekeys_in_window"`
	IKERekeys      uint64            `json:"ike_rekeys_in_window"`
	RekeyRate      float64           `json:"rekeys_per_s"`
	RekeyCPUPct    float64           `json:"responder_cpu_pct_in_window"`
	RekeyCPUus     float64           `json:"responder_cpu_us_per_rekey"`
	Lost           uint64            `json:"lost"`
	Losses         map[string]uint64 `json:"losses,omitempty"`
	DeleteSeconds  float64           `json:"delete_seconds"`
	Deleted        uint64            `json:"deleted"`
	LoadRSSMiB     float64           `json:"load_rss_mib"`
}

// ReestResult is the mass re-establishment after the load generator restarts.
type ReestResult struct {
	Responder      string            `json:"responder"`
	Count          int               `json:"count"`
	FirstSeconds   float64           `json:"first_setup_seconds"`
	SecondSeconds  float64           `json:"second_setup_seconds"`
	Established    uint64            `json:"second_established"`
	Failed         uint64            `json:"second_failed"`
	Failures       map[string]uint64 `json:"second_failures,omitempty"`
	Latency        loadgen.Latency   `json:"second_latency"`
	SAsAfterSecond int               `json:"responder_ike_sas_after_second"`
	CleanSeconds   float64           `json:"seconds_until_responder_holds_count"`
	CleanTimedOut  bool              `json:"clean_timed_out"`
	RSSPeakMiB     float64           `json:"rss_peak_mib"`
}

// FloodResult is a half-open flood with legitimate clients connecting.
type FloodResult struct {
	Responder     string            `json:"responder"`
	FloodRate     float64           `json:"flood_rate"`
	FloodSent     uint64            `json:"flood_sent"`
	Legit         int               `json:"legit_count"`
	LegitEst      uint64            `json:"legit_established"`
	LegitFailed   uint64            `json:"legit_failed"`
	LegitFailures map[string]uint64 `json:"legit_failures,omitempty"`
	LegitCookies  uint64            `json:"legit_cookies_received"`
	LegitRetx     uint64            `json:"legit_retransmits"`
	Latency       loadgen.Latency   `json:"legit_latency"`
	MaxHalfOpen   int               `json:"max_half_open"`
	RSSBeforeMiB  float64           `json:"rss_before_mib"`
	RSSMaxMiB     float64           `json:"rss_max_mib"`
	CPUPct        float64           `json:"responder_cpu_pct"`
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func TestConcentrator(t *testing.T) {
	if *flagQuick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]string{"scales": "2000,5000", "setup-count": "3000", "flood-duration": "10s", "child-rekey": "30s"}
		for name, v := range quick {
			if !set[name] {
				_ = flag.Set(name, v)
			}
		}
	}
	steps := map[string]bool{}
	for _, s := range strings.Split(*flagSteps, ",") {
		steps[strings.TrimSpace(s)] = true
	}
	var scales []int
	for _, s := range strings.Split(*flagScales, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("-scales: %q", s)
		}
		scales = append(scales, n)
	}
	out := *flagOut
	if out == "" {
		out = filepath.Join(os.TempDir(), "cygnet-bench-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	res := &Results{Machine: machine(), Date: time.Now().UTC(), Args: strings.Join(os.Args[1:], " "), out: out}
	t.Logf("results in %s", out)
	defer res.write(t)

	res.Floor = measureFloor(t)
	t.Logf("key-exchange floor: %.1f µs per responder handshake (%.1f µs per X25519 scalar multiplication)",
		res.Floor.ResponderX25519us, res.Floor.ScalarMultUS)

	e := newEnv(t, *flagSources)
	kinds := []string{"cygnetd", "core"}
	if *flagCharon {
		kinds = append(kinds, "charon")
	}
	if steps["setup"] {
		setupKinds := kinds
		if *flagCharon {
			setupKinds = append(setupKinds, "charon-netlink")
		}
		for _, k := range setupKinds {
			t.Run("setup/"+k, func(t *testing.T) {
				r := measureSetup(t, e, k, res)
				res.Setup = append(res.Setup, r)
				t.Logf("%+v", r)
			})
			res.write(t)
		}
		if *flagProfile {
			for _, k := range kinds {
				t.Run("profile/"+k, func(t *testing.T) { res.Profiles = append(res.Profiles, profileSetup(t, e, k, out)) })
				res.write(t)
			}
		}
	}
	if steps["scale"] {
		gaveUp := map[string]bool{} // a responder that failed a scale is not tried at the next
		for _, n := range scales {
			for _, k := range kinds {
				if k == "core" || gaveUp[k] {
					continue
				}
				t.Run(fmt.Sprintf("scale/%s/%d", k, n), func(t *testing.T) {
					r := measureScale(t, e, k, n)
					res.Scale = append(res.Scale, r)
					t.Logf("%+v", r)
					if r.Established < uint64(n) || r.ListSAsError != "" {
						gaveUp[k] = true
						res.Errors = append(res.Errors, fmt.Sprintf("%s: %d of %d IKE SAs held (%s); larger scales skipped", k, r.Established, n, r.ListSAsError))
					}
				})
				res.write(t)
			}
		}
	}
	if n := *flagReestablish; steps["reestablish"] && n != 0 {
		if n < 0 {
			n = slices.Max(scales)
		}
		for _, k := range kinds {
			if k == "core" {
				continue
			}
			n := n
			if k == "charon" && len(res.Scale) > 0 {
				// As far as it goes: the largest population charon held in the scale step.
				held := 0
				for _, s := range res.Scale {
					if s.Responder == k && s.Established == uint64(s.Target) {
						held = max(held, s.Target)
					}
				}
				if held == 0 {
					res.Errors = append(res.Errors, "charon: re-establishment skipped (it held no scale fully)")
					continue
				}
				n = min(n, held)
			}
			t.Run(fmt.Sprintf("reestablish/%s/%d", k, n), func(t *testing.T) {
				r := measureReestablish(t, e, k, n)
				res.Reestablish = append(res.Reestablish, r)
				t.Logf("%+v", r)
			})
			res.write(t)
		}
	}
	if steps["flood"] {
		for _, k := range kinds {
			if k == "core" {
				continue
			}
			t.Run("flood/"+k, func(t *testing.T) {
				r := measureFlood(t, e, k)
				res.Flood = append(res.Flood, r)
				t.Logf("%+v", r)
			})
			res.write(t)
		}
	}
}

// startResponder starts a fresh responder of kind.
func startResponder(t *testing.T, e *env, kind string, o respOpts) responder {
	switch kind {
	case "cygnetd":
		return startCygnetd(t, e, o)
	case "core":
		return startCore(t, e)
	case "charon":
		return startCharon(t, e, o)
	case "charon-netlink":
		o.charonNetlink = true
		return startCharon(t, e, o)
	}
	t.Fatalf("unknown responder %q", kind)
	return nil
}

// measureFloor times the key exchange alone: what a responder must compute per
// handshake whatever else it does (X25519: a key pair and a shared secret).
func measureFloor(t *testing.T) Floor {
	g, err := ikecrypto.Group(wire.KECurve25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := g.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peer := priv.Public()
	// CPU time of this thread (RUSAGE_THREAD), not wall time: the machine is shared,
	// and waiting for a core is not the key exchange's cost.
	perOp := func(n int, op func() error) float64 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := threadCPU()
		for range n {
			if err := op(); err != nil {
				t.Fatal(err)
			}
		}
		return float64(threadCPU()-t0) / float64(n) / 1e3
	}
	respond := func() error { _, _, err := g.Respond(rand.Reader, peer); return err }
	mult := func() error { _, err := priv.SharedSecret(peer); return err }
	perOp(200, respond) // warm up
	f := Floor{ResponderX25519us: perOp(5000, respond), ScalarMultUS: perOp(5000, mult)}
	return f
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRate is the best one-second established count of a run's timeline.
func peakRate(r *loadgen.Report) uint64 {
	var best uint64
	for _, s := range r.Timeline {
		best = max(best, s.Established)
	}
	return best
}

// measureSetup: a fresh responder, N IKE SAs with one Child SA each as fast as the
// in-flight bound allows, the responder's CPU before and after (rusage via
// /proc/PID/stat), no delete phase (its CPU is not setup cost).
func measureSetup(t *testing.T, e *env, kind string, res *Results) SetupResult {
	n := *flagSetupCount
	r := startResponder(t, e, kind, respOpts{})
	time.Sleep(time.Second)
	cpu0, err := e.cpuTime(r.Pid())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	l := startLoad(t, e, loadArgs{count: n, inflight: *flagInflight, del: false, setupTimeout: *flagSetupTimeout})
	rep, err := l.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cpu1, err := e.cpuTime(r.Pid())
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := rss(r.Pid())
	out := SetupResult{Responder: kind, Count: n, Established: rep.Established, Failed: rep.Failed,
		Retransmits: rep.Retransmits, Seconds: rep.SetupSeconds, Rate: rep.SetupRate, PeakRate: peakRate(rep),
		Latency: rep.Latency, RSSMiB: mib(rs), Failures: rep.Failures}
	if rep.Established > 0 {
		out.CPUus = float64((cpu1-cpu0)/time.Microsecond) / float64(rep.Established)
		out.LoadCPUus = (rep.CPUUserSeconds + rep.CPUSysSeconds) * 1e6 / float64(rep.Established)
	}
	if res.Floor.ResponderX25519us > 0 {
		out.CPUTimesFloor = out.CPUus / res.Floor.ResponderX25519us
	}
	shortfall(t, kind, rep.Established, n, rep.Failures)
	return out
}

// shortfall reports IKE SAs that did not come up: a failure for cygnet's responders,
// a result for charon (measured "as far as it goes").
func shortfall(t *testing.T, kind string, got uint64, want int, why map[string]uint64) {
	if got == uint64(want) {
		return
	}
	if strings.HasPrefix(kind, "charon") {
		t.Logf("%s: %d of %d IKE SAs established (%v)", kind, got, want, why)
		return
	}
	t.Errorf("%s: %d of %d IKE SAs established (%v)", kind, got, want, why)
}

// profileSetup repeats a (smaller) setup run with perf recording the responder.
func profileSetup(t *testing.T, e *env, kind, outDir string) Profile {
	if _, err := exec.LookPath("perf"); err != nil {
		t.Fatalf("perf not installed (Debian package linux-perf): %v", err)
	}
	r := startResponder(t, e, kind, respOpts{})
	time.Sleep(time.Second)
	data := filepath.Join(outDir, "perf-"+kind+".data")
	perf := exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(r.Pid()), "-o", data)
	perfOut := &syncBuffer{}
	perf.Stdout, perf.Stderr = perfOut, perfOut
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	l := startLoad(t, e, loadArgs{count: min(*flagSetupCount, 10000), inflight: *flagInflight, del: false})
	if _, err := l.wait(ctx); err != nil {
		t.Fatal(err)
	}
	_ = perf.Process.Signal(os.Interrupt)
	_ = perf.Wait()
	report := func(args ...string) string {
		out, err := exec.Command("perf", append([]string{"report", "-i", data, "--stdio", "--percent-limit", "1.5"}, args...)...).CombinedOutput()
		if err != nil {
			t.Errorf("perf report: %v\n%s", err, out)
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			// perf pads every line with empty sort columns ("-      -").
			l = strings.TrimRight(l, " ")
			l = strings.TrimRight(strings.TrimSuffix(strings.TrimSuffix(l, "-"), " "), " ")
			l = strings.TrimRight(strings.TrimSuffix(l, "-"), " ")
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	p := Profile{Responder: kind, File: data,
		Flat:     report("--no-children", "-g", "none", "--sort", "dso,symbol"),
		Children: report("--children", "-g", "none", "--sort", "symbol")}
	if kind == "charon" {
		// Debian's strongSwan libraries are stripped: where the time goes is told by
		// library (libipsec is kernel-libipsec's userspace ESP).
		p.Flat = report("--no-children", "-g", "none", "--sort", "dso")
	}
	txt := filepath.Join(outDir, "perf-"+kind+".txt")
	_ = os.WriteFile(txt, []byte("== flat (self) ==\n"+p.Flat+"\n\n== with children ==\n"+p.Children+"\n"), 0o644)
	return p
}

// measureScale holds n IKE SAs: memory, listings, metrics, then one Child SA rekey
// period of steady-state rekeys, then the delete of everything.
func measureScale(t *testing.T, e *env, kind string, n int) ScaleResult {
	r := startResponder(t, e, kind, respOpts{})
	time.Sleep(time.Second)
	base, _ := rss(r.Pid())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	l := startLoad(t, e, loadArgs{count: n, inflight: *flagInflight, hold: 2 * time.Hour, del: true,
		childRekey: *flagChildRekey, ikeRekey: *flagIKERekey, drain: 3 * time.Minute, setupTimeout: *flagSetupTimeout})
	start := time.Now()
	setup, err := l.waitSetup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := ScaleResult{Responder: kind, Target: n, Established: setup.Established, Failed: setup.Failed,
		SetupSeconds: setup.SetupSeconds, SetupRate: setup.SetupRate, Latency: setup.Latency, RSSBaseMiB: mib(base)}
	time.Sleep(3 * time.Second)
	if v, err := rss(r.Pid()); err == nil {
		out.RSSMiB = mib(v)
		if setup.Established > 0 {
			out.KiBPerIKESA = float64(v-min(base, v)) / 1024 / float64(setup.Established)
		}
	}
	if v, err := r.IKESAs(ctx); err == nil && kind != "charon" {
		out.ResponderSAs = v
	}
	// list-sas: best of three (the first pays for page faults).
	best := time.Duration(0)
	for i := 0; i < 3; i++ {
		d, cnt, err := r.ListSAs(ctx)
		if err != nil {
			out.ListSAsError = err.Error()
			break
		}
		if best == 0 || d < best {
			best = d
		}
		out.ListSAsCount = cnt
	}
	out.ListSAsSeconds = best.Seconds()
	if kind == "charon" {
		out.ResponderSAs = out.ListSAsCount
	}
	bestM := time.Duration(0)
	for i := 0; i < 3; i++ {
		d, size, err := r.Scrape(ctx)
		if err != nil {
			t.Errorf("metrics: %v", err)
			break
		}
		if bestM == 0 || d < bestM {
			bestM = d
		}
		out.MetricsBytes = size
	}
	out.MetricsMS = float64(bestM) / 1e6
	// Steady-state rekeys: one full Child SA rekey period once the first wave began.
	waveStart := start.Add(*flagChildRekey)
	if d := time.Until(waveStart); d > 0 {
		time.Sleep(d)
	}
	ike0, child0 := l.progress.rekeys()
	cpu0, _ := e.cpuTime(r.Pid())
	w0 := time.Now()
	time.Sleep(*flagChildRekey)
	ike1, child1 := l.progress.rekeys()
	cpu1, _ := e.cpuTime(r.Pid())
	win := time.Since(w0)
	out.RekeyWindowS = win.Seconds()
	out.ChildRekeys, out.IKERekeys = child1-child0, ike1-ike0
	rekeys := out.ChildRekeys + out.IKERekeys
	out.RekeyRate = float64(rekeys) / win.Seconds()
	out.RekeyCPUPct = 100 * float64(cpu1-cpu0) / float64(win)
	if rekeys > 0 {
		out.RekeyCPUus = float64((cpu1-cpu0)/time.Microsecond) / float64(rekeys)
	}
	if v, err := rss(l.proc.Pid); err == nil {
		out.LoadRSSMiB = mib(v)
	}
	l.interrupt()
	rep, err := l.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out.Lost, out.Losses, out.DeleteSeconds, out.Deleted = rep.Lost, rep.Losses, rep.DeleteSeconds, rep.Deleted
	shortfall(t, kind, out.Established, n, setup.Failures)
	return out
}

// measureReestablish: the load generator establishes n IKE SAs, stops without deleting
// them (a crash), and a new run with the same identities establishes them again. The
// responder runs liveness checks (30 s) so that it can find the old ones dead.
func measureReestablish(t *testing.T, e *env, kind string, n int) ReestResult {
	r := startResponder(t, e, kind, respOpts{dpd: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	out := ReestResult{Responder: kind, Count: n}
	var peak uint64
	sample := func() {
		if v, err := rss(r.Pid()); err == nil {
			peak = max(peak, v)
		}
	}
	first := startLoad(t, e, loadArgs{count: n, inflight: *flagInflight, del: false, setupTimeout: *flagSetupTimeout})
	rep1, err := first.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out.FirstSeconds = rep1.SetupSeconds
	sample()
	second := startLoad(t, e, loadArgs{count: n, inflight: *flagInflight, hold: 2 * time.Hour, del: false, setupTimeout: *flagSetupTimeout})
	setup, err := second.waitSetup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	sample()
	out.SecondSeconds, out.Established, out.Failed, out.Failures, out.Latency =
		setup.SetupSeconds, setup.Established, setup.Failed, setup.Failures, setup.Latency
	if v, err := r.IKESAs(ctx); err == nil {
		out.SAsAfterSecond = v
	}
	// Until the responder holds exactly the new ones (bounded: liveness needs about
	// 30 s + the retransmission schedule to declare a peer dead).
	deadline := time.Now().Add(5 * time.Minute)
	for {
		v, err := r.IKESAs(ctx)
		sample()
		if err == nil && v <= n {
			out.CleanSeconds = time.Since(restart).Seconds() + out.SecondSeconds
			break
		}
		if time.Now().After(deadline) {
			out.CleanTimedOut = true
			out.CleanSeconds = time.Since(restart).Seconds() + out.SecondSeconds
			break
		}
		time.Sleep(5 * time.Second)
	}
	out.RSSPeakMiB = mib(peak)
	second.interrupt()
	if _, err := second.wait(ctx); err != nil {
		t.Error(err)
	}
	return out
}

// measureFlood: spoofed IKE_SA_INIT requests at a high rate while a few legitimate
// clients connect, with the responder's default half-open policy (cookies above 30
// half-open IKE SAs, at most 5 per peer address: strongSwan's and cygnetd's defaults).
func measureFlood(t *testing.T, e *env, kind string) FloodResult {
	r := startResponder(t, e, kind, respOpts{cookieThreshold: 30, blockThreshold: 5})
	time.Sleep(time.Second)
	out := FloodResult{Responder: kind, FloodRate: *flagFloodRate, Legit: 2000}
	before, _ := rss(r.Pid())
	out.RSSBeforeMiB = mib(before)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	fl := &syncBuffer{}
	flood, err := e.p.A.Start(netns.Command{Path: bins.load, Args: []string{"flood",
		"-target", fmt.Sprintf("%s:500", e.resp), "-spoof", spoofPrefix.String(),
		"-rate", fmt.Sprint(*flagFloodRate), "-duration", flagFloodTime.String(), "-ike", ikeProposal}, Stdout: fl, Stderr: fl})
	if err != nil {
		t.Fatal(err)
	}
	cpu0, _ := e.cpuTime(r.Pid())
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	legitRate := float64(out.Legit) / max(1, flagFloodTime.Seconds()-4)
	l := startLoad(t, e, loadArgs{count: out.Legit, rate: legitRate, inflight: 64, del: false})
	var maxRSS uint64
	for {
		select {
		case <-flood.Done():
		case <-time.After(time.Second):
			if v, err := rss(r.Pid()); err == nil {
				maxRSS = max(maxRSS, v)
			}
			if h, err := r.HalfOpen(ctx); err == nil {
				out.MaxHalfOpen = max(out.MaxHalfOpen, h)
			}
			continue
		}
		break
	}
	cpu1, _ := e.cpuTime(r.Pid())
	out.CPUPct = 100 * float64(cpu1-cpu0) / float64(time.Since(t0))
	var fr loadgen.FloodReport
	if err := json.Unmarshal([]byte(fl.String()), &fr); err != nil {
		t.Errorf("flood report: %v: %s", err, fl.String())
	}
	out.FloodSent = fr.Sent
	rep, err := l.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out.LegitEst, out.LegitFailed, out.LegitFailures, out.LegitCookies, out.LegitRetx, out.Latency =
		rep.Established, rep.Failed, rep.Failures, rep.CookiesSeen, rep.Retransmits, rep.Latency
	out.RSSMaxMiB = mib(maxRSS)
	return out
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(firstLines(string(b), 1), "MemTotal: %f kB", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "strongswan-charon").Output(); err == nil {
		m.Charon = "strongSwan " + strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}
