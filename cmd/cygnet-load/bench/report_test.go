//go:build concentrator

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// write saves results.json and results.md (markdown tables for docs/benchmarks.md).
func (r *Results) write(t *testing.T) {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.LoadAvg = append(r.LoadAvg, fmt.Sprintf("%s after %d steps: %s", time.Now().UTC().Format("15:04:05"),
			len(r.Setup)+len(r.Profiles)+len(r.Scale)+len(r.Reestablish)+len(r.Flood), strings.TrimSpace(string(b))))
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Errorf("results: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(r.out, "results.json"), b, 0o644); err != nil {
		t.Errorf("results: %v", err)
	}
	if err := os.WriteFile(filepath.Join(r.out, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		t.Errorf("results: %v", err)
	}
}

func (r *Results) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	m := r.Machine
	p("Run %s (commit %s): %s, %d cores, %.0f GiB, Linux %s, %s, %s.", r.Date.Format("2006-01-02 15:04 MST"),
		m.Commit, m.CPU, m.Cores, m.MemGiB, m.Kernel, m.Go, m.Charon)
	p("Arguments: `%s`", r.Args)
	p("")
	p("Key-exchange floor: %.1f µs of X25519 per responder handshake (%.1f µs per scalar multiplication).",
		r.Floor.ResponderX25519us, r.Floor.ScalarMultUS)
	if len(r.Setup) > 0 {
		p("")
		p("| responder | IKE SAs | established | failed | rtx | setup s | rate /s | peak /s | p50 ms | p90 ms | p99 ms | responder CPU µs/SA | × floor | load CPU µs/SA | RSS MiB |")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, s := range r.Setup {
			p("| %s | %d | %d | %d | %d | %.1f | %.0f | %d | %.1f | %.1f | %.1f | %.0f | %.2f | %.0f | %.0f |", s.Responder, s.Count,
				s.Established, s.Failed, s.Retransmits, s.Seconds, s.Rate, s.PeakRate, s.Latency.P50ms, s.Latency.P90ms,
				s.Latency.P99ms, s.CPUus, s.CPUTimesFloor, s.LoadCPUus, s.RSSMiB)
		}
	}
	if len(r.Scale) > 0 {
		p("")
		p("| responder | held | established | responder IKE SAs | RSS MiB | KiB/IKE SA | list-sas s | /metrics ms | rekeys/s | CPU %% in window | µs/rekey | lost | delete s |")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, s := range r.Scale {
			ls := fmt.Sprintf("%.2f", s.ListSAsSeconds)
			if s.ListSAsError != "" {
				ls = "error"
			}
			met := fmt.Sprintf("%.1f", s.MetricsMS)
			if s.MetricsBytes == 0 {
				met = "—"
			}
			p("| %s | %d | %d | %d | %.0f | %.1f | %s | %s | %.0f | %.0f | %.0f | %d | %.1f |", s.Responder, s.Target, s.Established,
				s.ResponderSAs, s.RSSMiB, s.KiBPerIKESA, ls, met, s.RekeyRate, s.RekeyCPUPct, s.RekeyCPUus, s.Lost, s.DeleteSeconds)
		}
	}
	if len(r.Reestablish) > 0 {
		p("")
		p("| responder | IKE SAs | first setup s | re-established | failed | second setup s | responder IKE SAs after | s until responder holds only the new | peak RSS MiB |")
		p("|---|---|---|---|---|---|---|---|---|")
		for _, s := range r.Reestablish {
			clean := fmt.Sprintf("%.0f", s.CleanSeconds)
			if s.CleanTimedOut {
				clean = "> " + clean + " (gave up)"
			}
			p("| %s | %d | %.1f | %d | %d | %.1f | %d | %s | %.0f |", s.Responder, s.Count, s.FirstSeconds, s.Established, s.Failed,
				s.SecondSeconds, s.SAsAfterSecond, clean, s.RSSPeakMiB)
		}
	}
	if len(r.Flood) > 0 {
		p("")
		p("| responder | flood /s | sent | legit | established | failed | cookies | p50 ms | p99 ms | max half-open | RSS before→max MiB | CPU %% |")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, s := range r.Flood {
			p("| %s | %.0f | %d | %d | %d | %d | %d | %.1f | %.1f | %d | %.0f→%.0f | %.0f |", s.Responder, s.FloodRate, s.FloodSent,
				s.Legit, s.LegitEst, s.LegitFailed, s.LegitCookies, s.Latency.P50ms, s.Latency.P99ms, s.MaxHalfOpen,
				s.RSSBeforeMiB, s.RSSMaxMiB, s.CPUPct)
		}
	}
	if len(r.Errors) > 0 {
		p("")
		for _, e := range r.Errors {
			p("- %s", e)
		}
	}
	if len(r.LoadAvg) > 0 {
		p("")
		p("Load average (1, 5, 15 min) during the run: %s … %s", r.LoadAvg[0], r.LoadAvg[len(r.LoadAvg)-1])
	}
	for _, pr := range r.Profiles {
		p("")
		p("Profile of %s during a setup run (perf, self time, ≥ 1.5%%):", pr.Responder)
		p("```")
		p("%s", firstLines(pr.Flat, 40))
		p("```")
	}
	return b.String()
}
