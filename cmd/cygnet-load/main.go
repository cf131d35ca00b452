// Command cygnet-load is an IKEv2 load generator (RFC 7296) built on cygnet's pure
// protocol core (actors/ike), driven by its own event loops over UDP sockets rather than
// by cygnetd's actor tree: it opens many IKE SAs, each with one or more Child SAs, at a
// chosen rate or as fast as a bound on handshakes in flight allows, from many source
// addresses and ports; holds them (rekeying when lifetimes are short), deletes them,
// and stops by itself. It works against any IKEv2 responder that accepts PSK
// authentication (cygnetd, strongSwan's charon).
//
// Child SAs are negotiated but installed in no kernel on the load side: no ESP flows.
//
// Output: a progress line on stderr every second (established and failed per second,
// IKE and Child SAs up, handshakes in flight, retransmissions, latency percentiles of
// IKE_SA_INIT + IKE_AUTH), and a JSON summary on stdout (or -json FILE) at the end.
//
//	cygnet-load -target 192.0.2.2:500 -src 192.0.2.10-192.0.2.59 -psk-file key \
//	    -count 10000 -rate 2000 -children 1 -hold 30s
//	cygnet-load respond -listen 192.0.2.2:500 -psk-file key -remote-ts 10.128.0.0/9
//	cygnet-load flood -target 192.0.2.2:500 -spoof 198.51.100.128/25 -rate 20000 -duration 30s
//
// The respond subcommand is the same core as a responder, with no actor tree and no
// kernel: the floor cygnetd's shell adds its cost to. The flood subcommand sends
// IKE_SA_INIT requests from spoofed addresses through a raw socket (needs CAP_NET_RAW),
// to see COOKIEs engage (RFC 7296 §2.6).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/cygnet-load/internal/loadgen"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "respond":
		err = respond(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "flood":
		err = flood(os.Args[2:])
	default:
		err = initiate(os.Args[1:])
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cygnet-load:", err)
		}
		os.Exit(1)
	}
}

// readPSK takes the key from -psk-file (trailing newline dropped) or -psk.
func readPSK(inline, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("psk file: %w", err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	if inline == "" {
		return nil, errors.New("no pre-shared key: give -psk or -psk-file")
	}
	return []byte(inline), nil
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" || item == "dynamic" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func writeJSON(path string, v any) error {
	var w io.Writer = os.Stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func initiate(args []string) error {
	fs := flag.NewFlagSet("cygnet-load", flag.ContinueOnError)
	var (
		target     = fs.String("target", "", "responder IKE address:port (e.g. 192.0.2.2:500)")
		targetNATT = fs.Uint("target-natt-port", 4500, "responder's NAT-T port")
		src        = fs.String("src", "", "source addresses: list of addresses, ranges a-b, prefixes")
		portsPer   = fs.Int("ports-per-addr", 1, "IKE/NAT-T port pairs per source address")
		basePort   = fs.Uint("base-port", 500, "first local port of each address (IKE; NAT-T is +1); 0 = ephemeral")
		ikeProps   = fs.String("ike", "aes256gcm16-prfsha256-x25519", "IKE proposals (strongSwan syntax)")
		espProps   = fs.String("esp", "aes256gcm16", "ESP proposals (strongSwan syntax)")
		psk        = fs.String("psk", "", "pre-shared key (prefer -psk-file)")
		pskFile    = fs.String("psk-file", "", "file holding the pre-shared key")
		idFormat   = fs.String("id", "load-%d.cygnet.test", "identity of IKE SA n (fmt pattern with %d)")
		remoteID   = fs.String("remote-id", "%any", "identity required of the responder")
		children   = fs.Int("children", 1, "Child SAs per IKE SA (0: childless, RFC 6023)")
		tsPool     = fs.String("ts-pool", "10.128.0.0/9", "prefix each Child SA's TSi host comes from; \"dynamic\" = the source address")
		remoteTS   = fs.String("remote-ts", "dynamic", "TSr prefixes (\"dynamic\" = the responder's address)")
		count      = fs.Int("count", 100, "IKE SAs to establish")
		rate       = fs.Float64("rate", 0, "IKE SAs started per second (0: as fast as -inflight allows)")
		inflight   = fs.Int("inflight", 256, "most handshakes in progress at once")
		hold       = fs.Duration("hold", 0, "how long to keep the IKE SAs once set up")
		ikeRekey   = fs.Duration("ike-rekey", 0, "IKE SA rekey time (0: 4h)")
		childRekey = fs.Duration("child-rekey", 0, "Child SA rekey time (0: 1h)")
		ikeOver    = fs.Duration("ike-over-time", 0, "IKE SA over time (0: a tenth of the rekey time)")
		childLife  = fs.Duration("child-life-time", 0, "Child SA hard lifetime (0: 110% of the rekey time)")
		del        = fs.Bool("delete", true, "delete every IKE SA at the end (false: just stop, like a crash)")
		drain      = fs.Duration("drain", 30*time.Second, "bound on the delete phase")
		duration   = fs.Duration("duration", 10*time.Minute, "bound on setup and hold together")
		setupTO    = fs.Duration("setup-timeout", 0, "bound on the setup phase alone (0: only -duration)")
		rtxTimeout = fs.Duration("retransmit-timeout", 0, "first retransmission after (0: 4s)")
		rtxTries   = fs.Int("retransmit-tries", 0, "retransmissions before giving up (0: 5)")
		shards     = fs.Int("shards", 0, "event loops (0: GOMAXPROCS)")
		workers    = fs.Int("workers", 0, "key-exchange workers (0: GOMAXPROCS)")
		jsonOut    = fs.String("json", "-", "where the JSON summary goes (- = stdout)")
		setupJSON  = fs.String("setup-json", "", "write the report so far to this file when the setup phase ends")
		quiet      = fs.Bool("quiet", false, "no progress line")
		trace      = fs.Int("trace", 0, "print every event and effect of the first N IKE SAs on stderr")
		cpuprofile = fs.String("cpuprofile", "", "write a CPU profile of the run")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tgt, err := netip.ParseAddrPort(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	sources, err := loadgen.ParseAddrList(*src)
	if err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	key, err := readPSK(*psk, *pskFile)
	if err != nil {
		return err
	}
	rts, err := parsePrefixes(*remoteTS)
	if err != nil {
		return fmt.Errorf("-remote-ts: %w", err)
	}
	cfg := loadgen.Config{
		Target: tgt, TargetNATTPort: uint16(*targetNATT), Sources: sources, PortsPerAddr: *portsPer,
		BasePort: uint16(*basePort), IKEProposals: *ikeProps, ESPProposals: *espProps, PSK: key,
		IDFormat: *idFormat, RemoteID: *remoteID, Children: *children, RemoteTS: rts,
		Count: *count, Rate: *rate, MaxInFlight: *inflight, Hold: *hold,
		IKERekey: *ikeRekey, ChildRekey: *childRekey, IKEOverTime: *ikeOver, ChildLifeTime: *childLife,
		Delete: *del, DrainTimeout: *drain, Duration: *duration, SetupTimeout: *setupTO,
		Retransmit: ike.Retransmit{Timeout: *rtxTimeout, Tries: *rtxTries},
		Shards:     *shards, Workers: *workers,
	}
	if *tsPool != "" && *tsPool != "dynamic" {
		if cfg.LocalTSPool, err = netip.ParsePrefix(*tsPool); err != nil {
			return fmt.Errorf("-ts-pool: %w", err)
		}
	}
	if !*quiet {
		cfg.Progress, cfg.ProgressTTY = os.Stderr, isTerminal(os.Stderr)
	}
	if *setupJSON != "" {
		cfg.SetupDone = func(r *loadgen.Report) {
			if err := writeJSON(*setupJSON, r); err != nil {
				fmt.Fprintln(os.Stderr, "cygnet-load: -setup-json:", err)
			}
		}
	}
	if *trace > 0 {
		cfg.Trace, cfg.TraceFirst = os.Stderr, *trace
	}
	stopProfile, err := startProfile(*cpuprofile)
	if err != nil {
		return fmt.Errorf("-cpuprofile: %w", err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := loadgen.Run(ctx, cfg)
	stopProfile()
	if err != nil {
		return err
	}
	return writeJSON(*jsonOut, rep)
}

func respond(args []string) error {
	fs := flag.NewFlagSet("cygnet-load respond", flag.ContinueOnError)
	var (
		listen     = fs.String("listen", "", "IKE addresses:ports to answer on, comma-separated")
		nattPort   = fs.Uint("natt-port", 4500, "NAT-T port on each listen address")
		ikeProps   = fs.String("ike", "aes256gcm16-prfsha256-x25519", "IKE proposals (strongSwan syntax)")
		espProps   = fs.String("esp", "aes256gcm16", "ESP proposals (strongSwan syntax)")
		psk        = fs.String("psk", "", "pre-shared key (prefer -psk-file)")
		pskFile    = fs.String("psk-file", "", "file holding the pre-shared key")
		id         = fs.String("id", "responder.cygnet.test", "our identity")
		remoteID   = fs.String("remote-id", "%any", "identity required of initiators")
		localTS    = fs.String("local-ts", "dynamic", "TSr prefixes")
		remoteTS   = fs.String("remote-ts", "10.128.0.0/9", "TSi prefixes accepted")
		cookies    = fs.Int("cookie-threshold", 0, "half-open IKE SAs above which COOKIEs are demanded (0: never)")
		duration   = fs.Duration("duration", 0, "stop after this long (0: on SIGINT/SIGTERM)")
		every      = fs.Duration("stats-every", time.Second, "progress line interval (0: none)")
		shards     = fs.Int("shards", 0, "event loops (0: GOMAXPROCS)")
		workers    = fs.Int("workers", 0, "key-exchange workers (0: GOMAXPROCS)")
		jsonOut    = fs.String("json", "-", "where the final counters go (- = stdout)")
		cpuprofile = fs.String("cpuprofile", "", "write a CPU profile")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var addrs []netip.AddrPort
	for _, a := range strings.Split(*listen, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return fmt.Errorf("-listen: %w", err)
		}
		addrs = append(addrs, ap)
	}
	key, err := readPSK(*psk, *pskFile)
	if err != nil {
		return err
	}
	lts, err := parsePrefixes(*localTS)
	if err != nil {
		return fmt.Errorf("-local-ts: %w", err)
	}
	rts, err := parsePrefixes(*remoteTS)
	if err != nil {
		return fmt.Errorf("-remote-ts: %w", err)
	}
	r, err := loadgen.NewResponder(loadgen.ResponderConfig{
		Listen: addrs, NATTPort: uint16(*nattPort), IKEProposals: *ikeProps, ESPProposals: *espProps,
		PSK: key, LocalID: *id, RemoteID: *remoteID, LocalTS: lts, RemoteTS: rts,
		CookieThreshold: *cookies, Shards: *shards, Workers: *workers,
	})
	if err != nil {
		return err
	}
	stopProfile, err := startProfile(*cpuprofile)
	if err != nil {
		r.Close()
		return fmt.Errorf("-cpuprofile: %w", err)
	}
	r.Start()
	ctx, cancel := signalContext()
	defer cancel()
	if *duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, *duration)
		defer c2()
	}
	fmt.Fprintf(os.Stderr, "responding on %v (NAT-T %v)\n", r.Addrs(), r.NATTAddrs())
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-tick:
			st := r.Stats()
			fmt.Fprintf(os.Stderr, "established=%d up=%d children=%d half-open=%d cookies=%d dropped=%d rekeys=%d/%d\n",
				st.Established, st.IKEUp, st.ChildUp, st.HalfOpen, st.CookiesSent, st.Dropped, st.IKERekeys, st.ChildRekeys)
		case <-ctx.Done():
			done = true
		}
	}
	r.Close()
	stopProfile()
	return writeJSON(*jsonOut, r.Stats())
}

func flood(args []string) error {
	fs := flag.NewFlagSet("cygnet-load flood", flag.ContinueOnError)
	var (
		target   = fs.String("target", "", "responder IKE address:port (IPv4)")
		spoof    = fs.String("spoof", "", "prefix the spoofed source addresses come from")
		rate     = fs.Float64("rate", 10000, "IKE_SA_INIT requests per second")
		duration = fs.Duration("duration", 10*time.Second, "how long to send")
		ikeProps = fs.String("ike", "aes256gcm16-prfsha256-x25519", "IKE proposals of the requests")
		jsonOut  = fs.String("json", "-", "where the JSON report goes (- = stdout)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tgt, err := netip.ParseAddrPort(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	sp, err := netip.ParsePrefix(*spoof)
	if err != nil {
		return fmt.Errorf("-spoof: %w", err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := loadgen.Flood(ctx, loadgen.FloodConfig{Target: tgt, Spoof: sp, Rate: *rate, Duration: *duration, IKEProposals: *ikeProps})
	if err != nil {
		return err
	}
	return writeJSON(*jsonOut, rep)
}
