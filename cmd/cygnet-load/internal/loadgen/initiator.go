package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// Config is one load run: which responder, from where, with what, how many, how fast,
// for how long.
type Config struct {
	// Target is the responder's IKE address and port (RFC 7296 §2: UDP 500).
	Target netip.AddrPort
	// TargetNATTPort is the responder's NAT-T port, used when a NAT is detected (or
	// faked, as charon's kernel-libipsec does); default 4500 (RFC 3948).
	TargetNATTPort uint16

	// Sources are the local addresses IKE SAs come from. Each address gets
	// PortsPerAddr slots; a slot is a pair of UDP ports: (BasePort+2k) for IKE and
	// (BasePort+2k+1) for NAT-T. BasePort 0 binds ephemeral ports. IKE SA number n uses
	// slot n mod (number of slots).
	Sources      []netip.Addr
	PortsPerAddr int
	BasePort     uint16

	// IKEProposals and ESPProposals are strongSwan proposal strings
	// ("aes256gcm16-prfsha256-x25519"), parsed by wire/proposal.
	IKEProposals string
	ESPProposals string
	// PSK is the pre-shared key (RFC 7296 §2.15) every IKE SA authenticates with.
	PSK []byte
	// IDFormat makes IKE SA n's identity (IDi, RFC 7296 §3.5) with fmt.Sprintf(IDFormat,
	// n), read as swanctl reads identities ("load-%d.cygnet.test" is an ID_FQDN).
	// Distinct identities keep responders that enforce unique IDs from replacing one
	// load client's IKE SA with another's.
	IDFormat string
	// RemoteID is the identity required of the responder ("%any" by default).
	RemoteID string

	// Children is the number of Child SAs per IKE SA: the first rides in IKE_AUTH, the
	// others follow with CREATE_CHILD_SA (RFC 7296 §1.2, §1.3.1). Zero asks for a
	// childless IKE SA (RFC 6023).
	Children int
	// LocalTSPool, when valid, gives every Child SA its own host traffic selector
	// (TSi, RFC 7296 §3.13) drawn in order from this prefix; otherwise TSi is the
	// source address ("dynamic"). RemoteTS is TSr; empty is the responder's address.
	// No traffic flows: Child SAs are not installed in any kernel on this side.
	LocalTSPool netip.Prefix
	RemoteTS    []netip.Prefix

	// Count is the number of IKE SAs to establish. Rate is how many to start per
	// second (0: as fast as MaxInFlight allows). MaxInFlight bounds the handshakes in
	// progress at once (default 256).
	Count       int
	Rate        float64
	MaxInFlight int

	// Hold is how long the IKE SAs are kept once the setup phase is over; rekeys
	// happen during it when IKERekey / ChildRekey are shorter. Zero lifetimes keep
	// strongSwan's defaults (4 h, 1 h). Rekeys use the core's jitter (RandTime).
	Hold       time.Duration
	IKERekey   time.Duration
	ChildRekey time.Duration
	// IKEOverTime is how long an IKE SA may outlive IKERekey before it is closed
	// (swanctl over_time; default a tenth of the rekey time), ChildLifeTime the Child
	// SAs' hard lifetime (swanctl life_time; default 110% of the rekey time). Very short
	// rekey times want longer margins than these defaults give. Rekeys are jittered by
	// up to a tenth of the rekey time (swanctl rand_time) whatever the margins.
	IKEOverTime   time.Duration
	ChildLifeTime time.Duration
	// Delete terminates every IKE SA at the end (INFORMATIONAL with Delete, RFC 7296
	// §1.4.1). Without it the run just stops, as a crashed client would.
	Delete bool
	// SetupTimeout bounds the setup phase alone (0: only Duration does): when it is
	// over, no more IKE SAs are started and the hold phase begins with those up.
	SetupTimeout time.Duration
	// DrainTimeout bounds the delete phase (default 30 s).
	DrainTimeout time.Duration
	// Duration bounds the setup and hold phases together (default 10 min).
	Duration time.Duration

	// Retransmit overrides the core's retransmission schedule (strongSwan's
	// defaults: 4 s, base 1.8, 5 tries).
	Retransmit ike.Retransmit

	// Shards is the number of event loops; Workers the key-exchange workers (both
	// default to GOMAXPROCS).
	Shards, Workers int

	// Progress receives a line per ProgressEvery (default 1 s); ProgressTTY redraws
	// one line in place instead.
	Progress      io.Writer
	ProgressEvery time.Duration
	ProgressTTY   bool

	// SetupDone, when set, is called once when the setup phase ends (every IKE SA
	// established or failed, or Duration over), with the report so far, before the
	// hold phase: an orchestrator learns that the IKE SAs are up.
	SetupDone func(*Report)

	// ListenUDP, when set, opens the sockets instead of net.ListenUDP (a test opens
	// them inside a network namespace this way).
	ListenUDP func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)

	// Trace, when set, receives every event and effect of the first TraceFirst IKE
	// SAs (for debugging a responder's behaviour; the text never holds key material).
	Trace      io.Writer
	TraceFirst int
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.TargetNATTPort == 0 {
		d.TargetNATTPort = ike.DefaultNATTPort
	}
	if d.PortsPerAddr == 0 {
		d.PortsPerAddr = 1
	}
	if d.IDFormat == "" {
		d.IDFormat = "load-%d.cygnet.test"
	}
	if d.RemoteID == "" {
		d.RemoteID = "%any"
	}
	if d.MaxInFlight == 0 {
		d.MaxInFlight = 256
	}
	if d.DrainTimeout == 0 {
		d.DrainTimeout = 30 * time.Second
	}
	if d.Duration == 0 {
		d.Duration = 10 * time.Minute
	}
	if d.ProgressEvery == 0 {
		d.ProgressEvery = time.Second
	}
	return d
}

// slot is one source: an address with its IKE and NAT-T ports.
type slot struct {
	addr      netip.Addr
	ike, natt uint16
}

// initiator is the state of a Run beside the engine.
type initiator struct {
	cfg      Config
	base     ike.Connection
	slots    []slot
	inflight chan struct{} // one token per handshake in progress
	live     atomic.Int64  // families not yet ended
	tsBase   netip.Addr
}

// Report is a run's result, printed as JSON.
type Report struct {
	Target       string    `json:"target"`
	IKEProposals string    `json:"ike_proposals"`
	ESPProposals string    `json:"esp_proposals"`
	Children     int       `json:"children_per_ike_sa"`
	Count        int       `json:"count"`
	Rate         float64   `json:"rate"`
	MaxInFlight  int       `json:"max_in_flight"`
	Slots        int       `json:"source_slots"`
	Started      time.Time `json:"started"`
	Stopped      string    `json:"stopped"` // done, setup-timeout, duration or interrupted

	SetupSeconds  float64 `json:"setup_seconds"` // first start to last settled
	SetupRate     float64 `json:"setup_rate"`    // established per second of setup
	HoldSeconds   float64 `json:"hold_seconds"`
	DeleteSeconds float64 `json:"delete_seconds"`

	Launched    uint64 `json:"launched"`
	Established uint64 `json:"established"`
	Failed      uint64 `json:"failed"`
	Lost        uint64 `json:"lost"`
	Deleted     uint64 `json:"deleted"`
	LeftUp      int64  `json:"ike_up_at_end"`
	ChildrenUp  int64  `json:"children_up_at_end"`
	IKERekeys   uint64 `json:"ike_rekeys"`
	ChildRekeys uint64 `json:"child_rekeys"`
	Retransmits uint64 `json:"retransmits"`
	Dropped     uint64 `json:"dropped"`
	SendErrors  uint64 `json:"send_errors"`
	CookiesSeen uint64 `json:"cookies_received"`

	// Latency is IKE_SA_INIT + IKE_AUTH: from Initiate to the IKE SA established.
	Latency Latency `json:"latency"`

	Failures         map[string]uint64 `json:"failures_by_reason"`
	Losses           map[string]uint64 `json:"losses_by_reason"`
	ChildFailures    map[string]uint64 `json:"child_failures_by_reason"`
	NotifiesReceived map[string]uint64 `json:"error_notifies_received"`
	RetransmitsBy    map[string]uint64 `json:"retransmits_by_exchange"`
	Drops            map[string]uint64 `json:"drops_by_reason"`

	Timeline []Second `json:"timeline"`

	CPUUserSeconds float64 `json:"cpu_user_seconds"`
	CPUSysSeconds  float64 `json:"cpu_sys_seconds"`
	MaxRSSMiB      float64 `json:"max_rss_mib"`
}

// Run establishes cfg.Count IKE SAs, holds them for cfg.Hold, optionally deletes them,
// and reports. It stops by itself (count reached, Duration over) or when ctx ends, in
// which case it still deletes (within DrainTimeout) if asked to.
func Run(ctx context.Context, c Config) (*Report, error) {
	cfg := c.withDefaults()
	in := &initiator{cfg: cfg, inflight: make(chan struct{}, cfg.MaxInFlight)}
	if err := in.build(); err != nil {
		return nil, err
	}
	stats := newStats()
	e, err := newEngine(cfg.Shards, cfg.Workers, stats)
	if err != nil {
		return nil, err
	}
	e.ini = in
	if cfg.ListenUDP != nil {
		e.listenUDP = cfg.ListenUDP
	}
	if err := in.openSlots(e); err != nil {
		e.stop()
		return nil, err
	}
	e.start()
	defer e.stop()

	rep := &Report{Target: cfg.Target.String(), IKEProposals: cfg.IKEProposals, ESPProposals: cfg.ESPProposals,
		Children: cfg.Children, Count: cfg.Count, Rate: cfg.Rate, MaxInFlight: cfg.MaxInFlight,
		Slots: len(in.slots), Started: time.Now()}

	start := time.Now()
	phaseCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var progWG sync.WaitGroup
	progDone := make(chan struct{})
	progWG.Add(1)
	go func() {
		defer progWG.Done()
		in.progress(stats, start, progDone, rep)
	}()

	// The setup phase: until every IKE SA established or failed, or SetupTimeout.
	setupCtx, setupCancel := phaseCtx, context.CancelFunc(func() {})
	if cfg.SetupTimeout > 0 {
		setupCtx, setupCancel = context.WithTimeout(phaseCtx, cfg.SetupTimeout)
	}
	defer setupCancel()
	launchDone := make(chan struct{})
	go func() {
		defer close(launchDone)
		in.launch(setupCtx, e)
	}()
	for stats.settled.Load() < uint64(cfg.Count) && setupCtx.Err() == nil {
		sleepCtx(setupCtx, 10*time.Millisecond)
	}
	setupTimedOut := stats.settled.Load() < uint64(cfg.Count) && phaseCtx.Err() == nil
	setupCancel() // no more launches
	<-launchDone
	setupEnd := time.Now()
	rep.SetupSeconds = setupEnd.Sub(start).Seconds()
	if rep.SetupSeconds > 0 {
		rep.SetupRate = float64(stats.Established.Load()) / rep.SetupSeconds
	}
	if cfg.SetupDone != nil {
		interim := *rep
		stats.fill(&interim)
		cfg.SetupDone(&interim)
	}
	// Hold.
	if phaseCtx.Err() == nil {
		sleepCtx(phaseCtx, cfg.Hold)
	}
	rep.HoldSeconds = time.Since(setupEnd).Seconds()
	switch {
	case ctx.Err() != nil:
		rep.Stopped = "interrupted"
	case setupTimedOut:
		rep.Stopped = "setup-timeout"
	case stats.settled.Load() < uint64(cfg.Count):
		rep.Stopped = "duration"
	default:
		rep.Stopped = "done"
	}
	cancel()

	if cfg.Delete {
		delStart := time.Now()
		for _, sh := range e.shards {
			e.post(sh, msg{kind: msgFunc, fn: func(sh *shard) { sh.terminateAll() }})
		}
		drainCtx, dcancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
		for in.live.Load() > 0 && drainCtx.Err() == nil {
			sleepCtx(drainCtx, 10*time.Millisecond)
		}
		dcancel()
		rep.DeleteSeconds = time.Since(delStart).Seconds()
	}
	close(progDone)
	progWG.Wait()
	e.stop()

	stats.fill(rep)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		rep.CPUUserSeconds = float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6
		rep.CPUSysSeconds = float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
		rep.MaxRSSMiB = float64(ru.Maxrss) / 1024
	}
	return rep, nil
}

// fill copies the counters into rep.
func (st *Stats) fill(rep *Report) {
	rep.Launched = st.Launched.Load()
	rep.Established = st.Established.Load()
	rep.Failed = st.Failed.Load()
	rep.Lost = st.Lost.Load()
	rep.Deleted = st.Deleted.Load()
	rep.LeftUp = st.IKEUp.Load()
	rep.ChildrenUp = st.ChildUp.Load()
	rep.IKERekeys = st.IKERekeys.Load()
	rep.ChildRekeys = st.ChildRekeys.Load()
	rep.Retransmits = st.Retransmits.Load()
	rep.Dropped = st.Dropped.Load()
	rep.SendErrors = st.SendErrors.Load()
	rep.CookiesSeen = st.CookiesSeen.Load()
	rep.Latency = st.Latency.Summary()
	rep.Failures = st.snapshot(st.failures)
	rep.Losses = st.snapshot(st.losses)
	rep.ChildFailures = st.snapshot(st.childFailures)
	rep.NotifiesReceived = st.snapshot(st.notifies)
	rep.RetransmitsBy = st.snapshot(st.retransmitsByEx)
	rep.Drops = st.snapshot(st.drops)
}

// build checks the configuration and makes the connection every IKE SA copies.
func (in *initiator) build() error {
	cfg := in.cfg
	if !cfg.Target.IsValid() {
		return errors.New("load: no target address")
	}
	if len(cfg.Sources) == 0 {
		return errors.New("load: no source addresses")
	}
	if cfg.Count <= 0 {
		return errors.New("load: count must be positive")
	}
	if cfg.Children < 0 {
		return errors.New("load: negative number of children")
	}
	if len(cfg.PSK) == 0 {
		return errors.New("load: no pre-shared key")
	}
	if cfg.BasePort != 0 && int(cfg.BasePort)+2*cfg.PortsPerAddr > 65536 {
		return fmt.Errorf("load: %d port pairs from %d run past 65535", cfg.PortsPerAddr, cfg.BasePort)
	}
	ikeProps, err := proposal.Parse(wire.ProtoIKE, cfg.IKEProposals)
	if err != nil {
		return fmt.Errorf("load: IKE proposals: %w", err)
	}
	espProps, err := proposal.Parse(wire.ProtoESP, cfg.ESPProposals)
	if err != nil {
		return fmt.Errorf("load: ESP proposals: %w", err)
	}
	remoteID, err := ike.ParseIdentity(cfg.RemoteID)
	if err != nil {
		return fmt.Errorf("load: remote identity: %w", err)
	}
	if _, err := ike.ParseIdentity(fmt.Sprintf(cfg.IDFormat, 0)); err != nil {
		return fmt.Errorf("load: identity format %q: %w", cfg.IDFormat, err)
	}
	if cfg.LocalTSPool.IsValid() {
		in.tsBase = cfg.LocalTSPool.Masked().Addr()
		if need := cfg.Count * max(cfg.Children, 1); cfg.LocalTSPool.Addr().Is4() && cfg.LocalTSPool.Bits() > 32-bitsFor(need) {
			return fmt.Errorf("load: traffic selector pool %v is too small for %d Child SAs", cfg.LocalTSPool, need)
		}
	}
	var remoteTS []ike.TrafficSelector
	for _, p := range cfg.RemoteTS {
		remoteTS = append(remoteTS, ike.TSFromPrefix(p))
	}
	base := ike.Connection{
		Name:        "load",
		RemoteAddrs: []netip.Addr{cfg.Target.Addr()},
		RemotePort:  cfg.Target.Port(),
		Proposals:   ikeProps,
		Local:       ike.AuthConfig{Auth: ike.AuthPSK},
		Remote:      ike.AuthConfig{ID: remoteID, Auth: ike.AuthPSK},
		PSK:         ike.Secret(cfg.PSK),
		RekeyTime:   cfg.IKERekey,
		OverTime:    cfg.IKEOverTime,
		RandTime:    cfg.IKERekey / 10, // strongSwan's default, kept when OverTime grows
		Retransmit:  cfg.Retransmit,
	}
	if cfg.Children == 0 {
		base.Childless = ike.ChildlessForce
	}
	for k := range cfg.Children {
		base.Children = append(base.Children, ike.ChildConfig{
			Name: fmt.Sprintf("child%d", k), ESPProposals: espProps, RemoteTS: remoteTS,
			StartAction: ike.ActionStart, RekeyTime: cfg.ChildRekey, LifeTime: cfg.ChildLifeTime,
			RandTime: cfg.ChildRekey / 10,
		})
	}
	probe := base
	probe.Local.ID, _ = ike.ParseIdentity(fmt.Sprintf(cfg.IDFormat, 0))
	if err := probe.Validate(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	in.base = base
	return nil
}

func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// openSlots binds the IKE and NAT-T socket of every slot.
func (in *initiator) openSlots(e *engine) error {
	cfg := in.cfg
	for _, a := range cfg.Sources {
		for k := range cfg.PortsPerAddr {
			var ikePort, nattPort uint16
			if cfg.BasePort != 0 {
				ikePort, nattPort = cfg.BasePort+uint16(2*k), cfg.BasePort+uint16(2*k+1)
			}
			s1, err := e.listen(netip.AddrPortFrom(a, ikePort), false, nil)
			if err != nil {
				return fmt.Errorf("load: source %v: %w", a, err)
			}
			s2, err := e.listen(netip.AddrPortFrom(a, nattPort), true, nil)
			if err != nil {
				return fmt.Errorf("load: source %v: %w", a, err)
			}
			in.slots = append(in.slots, slot{addr: a, ike: s1.local.Port(), natt: s2.local.Port()})
		}
	}
	return nil
}

// launch starts the IKE SAs, paced by Rate and bounded by MaxInFlight.
func (in *initiator) launch(ctx context.Context, e *engine) {
	start := time.Now()
	for n := 0; n < in.cfg.Count; n++ {
		select {
		case in.inflight <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if in.cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(n) / in.cfg.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 && !sleepCtx(ctx, d) {
				return
			}
		}
		n := n
		if !e.post(e.shards[n%len(e.shards)], msg{kind: msgFunc, fn: func(sh *shard) { in.startFamily(sh, n) }}) {
			return
		}
	}
}

// startFamily creates IKE SA number n as initiator and feeds it Initiate.
func (in *initiator) startFamily(sh *shard, n int) {
	st := sh.e.stats
	conn := in.base
	sl := in.slots[n%len(in.slots)]
	conn.LocalAddrs = []netip.Addr{sl.addr}
	conn.LocalPort = sl.ike
	id, err := ike.ParseIdentity(fmt.Sprintf(in.cfg.IDFormat, n))
	if err == nil {
		conn.Local.ID = id
	}
	if in.tsBase.IsValid() && len(conn.Children) > 0 {
		ch := make([]ike.ChildConfig, len(conn.Children))
		copy(ch, conn.Children)
		for k := range ch {
			a := addrAdd(in.tsBase, uint64(n*len(ch)+k))
			ch[k].LocalTS = []ike.TrafficSelector{{Start: a, End: a, EndPort: 0xffff}}
		}
		conn.Children = ch
	}
	st.Launched.Add(1)
	f, err := ike.NewInitiator(&conn, env{sh}, ike.Options{NATTPort: sl.natt, RemoteNATTPort: in.cfg.TargetNATTPort})
	if err != nil {
		st.Failed.Add(1)
		st.count(st.failures, "config: "+err.Error())
		sh.settle()
		return
	}
	fm := sh.add(f)
	fm.n = n
	fm.started = time.Now()
	in.live.Add(1)
	if in.cfg.Trace != nil && n < in.cfg.TraceFirst {
		fm.trace = func(ev ike.Event, effects []ike.Effect) {
			var b strings.Builder
			fmt.Fprintf(&b, "%s #%d <- %v\n", time.Now().Format("15:04:05.000"), n, ev)
			for _, e := range effects {
				fmt.Fprintf(&b, "    #%d -> %v\n", n, e)
			}
			traceMu.Lock()
			defer traceMu.Unlock()
			_, _ = io.WriteString(in.cfg.Trace, b.String())
		}
	}
	sh.step(fm, ike.Initiate{})
}

var traceMu sync.Mutex

// terminateAll deletes every live IKE SA of the shard (RFC 7296 §1.4.1).
func (sh *shard) terminateAll() {
	for fm := range sh.fams {
		if !fm.dead && !fm.terminating {
			fm.terminating = true
			sh.step(fm, ike.Terminate{})
		}
	}
}

// progress prints the live line and records the timeline until done is closed.
func (in *initiator) progress(st *Stats, start time.Time, done <-chan struct{}, rep *Report) {
	t := time.NewTicker(in.cfg.ProgressEvery)
	defer t.Stop()
	sp := &sampler{s: st}
	tick := 0
	emit := func(final bool) {
		tick++
		d := sp.sample(tick)
		rep.Timeline = append(rep.Timeline, d)
		if in.cfg.Progress == nil {
			return
		}
		line := st.progressLine(time.Since(start), d)
		switch {
		case in.cfg.ProgressTTY && final:
			fmt.Fprintf(in.cfg.Progress, "\r\x1b[K%s\n", line)
		case in.cfg.ProgressTTY:
			fmt.Fprintf(in.cfg.Progress, "\r\x1b[K%s", line)
		default:
			fmt.Fprintln(in.cfg.Progress, line)
		}
	}
	for {
		select {
		case <-t.C:
			emit(false)
		case <-done:
			emit(true)
			return
		}
	}
}

// addrAdd returns a + n (IPv4 or IPv6).
func addrAdd(a netip.Addr, n uint64) netip.Addr {
	b := a.AsSlice()
	carry := n
	for i := len(b) - 1; i >= 0 && carry > 0; i-- {
		sum := uint64(b[i]) + carry&0xff
		b[i] = byte(sum)
		carry = carry>>8 + sum>>8
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// sleepCtx sleeps d or until ctx ends; it reports whether the whole d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ParseAddrList reads "192.0.2.10,192.0.2.20-192.0.2.29,198.51.100.0/28" into
// addresses (a prefix means every address in it).
func ParseAddrList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if lo, hi, ok := strings.Cut(item, "-"); ok {
			a, err1 := netip.ParseAddr(lo)
			b, err2 := netip.ParseAddr(hi)
			if err1 != nil || err2 != nil || b.Less(a) || a.BitLen() != b.BitLen() {
				return nil, fmt.Errorf("address range %q", item)
			}
			for x := a; x.Compare(b) <= 0; x = x.Next() {
				out = append(out, x)
				if len(out) > 1<<20 {
					return nil, fmt.Errorf("address range %q: too many addresses", item)
				}
			}
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			p = p.Masked()
			for x := p.Addr(); p.Contains(x); x = x.Next() {
				out = append(out, x)
				if len(out) > 1<<20 {
					return nil, fmt.Errorf("prefix %q: too many addresses", item)
				}
			}
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", item, err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("empty address list")
	}
	return out, nil
}
