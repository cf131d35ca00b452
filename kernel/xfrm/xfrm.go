//go:build linux

// Package xfrm is the kernel.Kernel of Linux: the XFRM SAD and SPD of one network
// namespace, programmed over netlink (NETLINK_XFRM) with github.com/vishvananda/netlink's
// socket layer and this package's own message codec.
//
// A Kernel holds three netlink sockets in its namespace: one for requests (shared by all
// goroutines; the kernel serialises XFRM configuration anyway), one for ListSACounters'
// dumps (so that installs do not wait for a listing), and one subscribed to the
// XFRM_MSG_EXPIRE and XFRM_MSG_ACQUIRE multicast groups. A single goroutine reads the
// latter and hands events to kernel.Hub, which never blocks it.
//
// Behaviour worth knowing:
//   - AllocSPI is XFRM_MSG_ALLOCSPI: Linux picks the SPI (randomly within the range) and
//     keeps a larval SA until AddSA fills it with XFRM_MSG_UPDSA. Linux drops a larval SA
//     after net.xfrm.acq_expires seconds; AddSA then installs with XFRM_MSG_NEWSA
//     instead. Expiry events of larval SAs are not reported.
//   - A tunnel-mode SA without a Selector is installed with XFRM_STATE_AF_UNSPEC, as
//     strongSwan does; an SA selector that selects everything reads back as zero.
//   - Replay windows above 32 packets, and ESN, use XFRMA_REPLAY_ESN_VAL.
//   - Only events for tagged objects are published. Lost events (the notification
//     socket overflowed, ENOBUFS) are counted as at least one per overflow.
//   - Snapshot lists ESP SAs and policies; objects cygnet's types cannot express (AH,
//     IPcomp, marks, socket or block policies, Linux's SPI-0 acquire placeholders) are
//     left out, and CleanupStale never touches them.
//   - ListSACounters (kernel.SACounterLister) is one GETSA dump decoded as it arrives,
//     without copying keys and without the SPD: the SAs Snapshot lists, larval ones left
//     out, with their counters and add/first-use times.
package xfrm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/internal/owners"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var _ kernel.Kernel = (*Kernel)(nil)

// Options configure Open.
type Options struct {
	// Timeout bounds one netlink request (send and reply); zero means 10 s.
	Timeout time.Duration
	// EventBuffer is the receive buffer of the notification socket in bytes; zero means
	// 4 MiB. A burst of expiries larger than this is lost (and counted).
	EventBuffer int
	// PolicyHashThresholds, if set, is applied at Open (see SetPolicyHashThresholds).
	PolicyHashThresholds *HashThresholds
}

// HashThresholds are the SPD's hash thresholds (`ip xfrm policy set hthresh4 L R
// hthresh6 L R`): a policy whose local and remote selector prefixes are at least this
// long lives in Linux's policy hash table; any other policy is "inexact" and costs
// time proportional to the number of inexact policies at every install and delete.
// Linux's defaults (32/32 and 128/128) hash only host-to-host policies.
type HashThresholds struct {
	IPv4Local, IPv4Remote uint8 // 0–32
	IPv6Local, IPv6Remote uint8 // 0–128
}

// Kernel is the XFRM tables of one network namespace.
type Kernel struct {
	mu     sync.RWMutex // held for reading by requests, for writing by Close
	closed bool
	req    map[int]*nl.SocketHandle // NETLINK_XFRM requests
	// list is a second NETLINK_XFRM socket for ListSACounters: its dump holds the
	// socket for as long as it runs, and installs on req must not wait for it.
	list    map[int]*nl.SocketHandle
	mon     *nl.NetlinkSocket // XFRM multicast groups
	monDone chan struct{}
	index   *owners.Index
	hub     *kernel.Hub
	// monErrors counts notification socket errors other than overflow (for tests).
	monErrors uint64
}

// Open returns the XFRM tables of the network namespace ns (netns.None() for the
// calling thread's own).
func Open(ns netns.NsHandle, opts Options) (*Kernel, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.EventBuffer == 0 {
		opts.EventBuffer = 4 << 20
	}
	s, err := requestSocket(ns, opts.Timeout)
	if err != nil {
		return nil, err
	}
	ls, err := requestSocket(ns, opts.Timeout)
	if err != nil {
		s.Close()
		return nil, err
	}
	mon, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_XFRM, groupExpire, groupAcquire)
	if err != nil {
		s.Close()
		ls.Close()
		return nil, fmt.Errorf("xfrm: subscribe to expire and acquire events: %w", err)
	}
	if err := mon.SetReceiveBufferSize(opts.EventBuffer, true); err != nil {
		_ = mon.SetReceiveBufferSize(opts.EventBuffer, false)
	}
	k := &Kernel{
		req:     map[int]*nl.SocketHandle{unix.NETLINK_XFRM: {Socket: s}},
		list:    map[int]*nl.SocketHandle{unix.NETLINK_XFRM: {Socket: ls}},
		mon:     mon,
		monDone: make(chan struct{}),
		index:   owners.New(),
		hub:     kernel.NewHub(),
	}
	go k.monitor()
	if opts.PolicyHashThresholds != nil {
		if err := k.SetPolicyHashThresholds(context.Background(), *opts.PolicyHashThresholds); err != nil {
			k.Close()
			return nil, err
		}
	}
	return k, nil
}

// requestSocket opens a NETLINK_XFRM socket in ns for requests, with timeout on sends
// and receives and extended ACKs.
func requestSocket(ns netns.NsHandle, timeout time.Duration) (*nl.NetlinkSocket, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_XFRM)
	if err != nil {
		return nil, fmt.Errorf("xfrm: open netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = s.SetSendTimeout(&tv)    // cannot fail: stored for the next request
	_ = s.SetReceiveTimeout(&tv) // likewise
	if err := s.SetExtAck(true); err != nil {
		s.Close()
		return nil, fmt.Errorf("xfrm: netlink extended ACK: %w", err)
	}
	return s, nil
}

// SetPolicyHashThresholds sets the SPD hash thresholds of the namespace, for cygnet's
// policies and everyone else's (XFRM_MSG_NEWSPDINFO). Site-to-site tunnels between /24
// subnets want 24/24: BenchmarkPolicyInstallDelete shows what inexact policies cost.
func (k *Kernel) SetPolicyHashThresholds(ctx context.Context, th HashThresholds) error {
	if th.IPv4Local > 32 || th.IPv4Remote > 32 || th.IPv6Local > 128 || th.IPv6Remote > 128 {
		return fmt.Errorf("xfrm: policy hash thresholds %+v: %w", th, kernel.ErrInvalid)
	}
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	if _, err := k.request(msgNewSPDInfo, true, encodeSPDInfo(th), 0); err != nil {
		return fmt.Errorf("xfrm: set policy hash thresholds %+v: %w", th, classify(err, addErrs))
	}
	return nil
}

// NewHandle opens a vishvananda/netlink handle on ns with only the families cygnet uses
// (NETLINK_ROUTE and NETLINK_XFRM): without them the library also opens
// NETLINK_NETFILTER, which fails on kernels without nfnetlink.
func NewHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
}

// Close implements kernel.Kernel.
func (k *Kernel) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mon.Close()
	k.req[unix.NETLINK_XFRM].Close()
	k.list[unix.NETLINK_XFRM].Close()
	k.mu.Unlock()
	<-k.monDone
	k.hub.Close()
	return nil
}

func (k *Kernel) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.RLock()
	if k.closed {
		k.mu.RUnlock()
		return kernel.ErrClosed
	}
	return nil
}

func (k *Kernel) end() { k.mu.RUnlock() }

// request sends one XFRM message and returns the replies of type resType (0: none).
// With ack, a reply-less success is acknowledged; without, the kernel must answer.
func (k *Kernel) request(typ int, ack bool, payload []byte, resType uint16) ([][]byte, error) {
	flags := 0
	if ack {
		flags = unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = k.req
	req.AddRawData(payload)
	return req.Execute(unix.NETLINK_XFRM, resType)
}

// dump runs a NLM_F_DUMP request, retrying when the kernel reports the dump was
// interrupted by a concurrent change.
func (k *Kernel) dump(typ int, resType uint16) ([][]byte, error) {
	var err error
	for range 5 {
		req := nl.NewNetlinkRequest(typ, unix.NLM_F_DUMP)
		req.Sockets = k.req
		var msgs [][]byte
		msgs, err = req.Execute(unix.NETLINK_XFRM, resType)
		if err == nil {
			return msgs, nil
		}
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			return nil, err
		}
	}
	return nil, err
}

// classify wraps a kernel error with the sentinel it means for this operation.
func classify(err error, m map[syscall.Errno]error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if s, ok := m[errno]; ok {
			return fmt.Errorf("%w: %w", s, err)
		}
	}
	return err
}

var (
	addErrs = map[syscall.Errno]error{
		unix.EEXIST:          kernel.ErrExists,
		unix.EINVAL:          kernel.ErrInvalid,
		unix.EPROTONOSUPPORT: kernel.ErrUnsupported, // no ESP in this kernel
		unix.ENOSYS:          kernel.ErrUnsupported, // no such algorithm
		unix.ENOENT:          kernel.ErrUnsupported, // crypto could not be initialised
		unix.ESRCH:           kernel.ErrNotFound,
	}
	findErrs = map[syscall.Errno]error{
		unix.ESRCH:  kernel.ErrNotFound,
		unix.ENOENT: kernel.ErrNotFound,
	}
	allocErrs = map[syscall.Errno]error{
		unix.ENOENT:          kernel.ErrSPIExhausted,
		unix.EINVAL:          kernel.ErrInvalid,
		unix.EPROTONOSUPPORT: kernel.ErrUnsupported,
	}
)

// AllocReqid implements kernel.Kernel.
func (k *Kernel) AllocReqid() (kernel.Reqid, error) {
	if err := k.begin(context.Background()); err != nil {
		return 0, err
	}
	defer k.end()
	return k.index.AllocReqid()
}

// AllocSPI implements kernel.Kernel. Linux probes random SPIs in the range as many
// times as the range is wide, so a nearly full range can fail while a SPI is free; the
// request is retried a few times before ErrSPIExhausted.
func (k *Kernel) AllocSPI(ctx context.Context, req kernel.SPIRequest) (kernel.SPI, error) {
	if err := req.Validate(); err != nil {
		return 0, fmt.Errorf("allocate SPI %s: %w", req.Describe(), err)
	}
	if err := k.begin(ctx); err != nil {
		return 0, err
	}
	defer k.end()
	lo, hi := req.Range.Bounds()
	payload := encodeAllocSPI(&req, lo, hi)
	tries := 1
	if hi > lo {
		tries = 8
	}
	var (
		msgs [][]byte
		err  error
	)
	for range tries {
		msgs, err = k.request(msgAllocSPI, false, payload, msgNewSA)
		if !errors.Is(err, unix.ENOENT) {
			break
		}
	}
	if err == nil && len(msgs) == 0 {
		err = errors.New("no reply")
	}
	if err != nil {
		return 0, fmt.Errorf("allocate SPI %s: %w", req.Describe(), classify(err, allocErrs))
	}
	h, err := decodeSAInfo(msgs[0])
	if err != nil {
		return 0, fmt.Errorf("allocate SPI %s: reply: %w", req.Describe(), err)
	}
	spi := h.sa.SPI
	k.index.PutSA(kernel.SAID{Dst: req.Dst, SPI: spi}, owners.SAInfo{Owner: req.Owner, Reqid: req.Reqid, Larval: true})
	return spi, nil
}

// AddSA implements kernel.Kernel.
func (k *Kernel) AddSA(ctx context.Context, sa kernel.SA) error {
	if err := sa.Validate(); err != nil {
		return fmt.Errorf("add SA %s: %w", sa.Describe(), err)
	}
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	id := sa.ID()
	payload := encodeSA(&sa)
	var err error
	if info, ok := k.index.SA(id); ok && info.Larval {
		// Fill the larval SA that ALLOCSPI left; if Linux dropped it meanwhile
		// (acq_expires), install anew.
		_, err = k.request(msgUpdSA, true, payload, 0)
		if errors.Is(err, unix.ESRCH) {
			_, err = k.request(msgNewSA, true, payload, 0)
		}
	} else {
		_, err = k.request(msgNewSA, true, payload, 0)
	}
	if err != nil {
		return fmt.Errorf("add SA %s: %w", sa.Describe(), classify(err, addErrs))
	}
	k.index.PutSA(id, owners.SAInfo{Owner: sa.Owner, Reqid: sa.Reqid})
	return nil
}

// UpdateSA implements kernel.Kernel.
func (k *Kernel) UpdateSA(ctx context.Context, sa kernel.SA) error {
	if err := sa.Validate(); err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), err)
	}
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	id := sa.ID()
	if info, ok := k.index.SA(id); ok && info.Larval {
		return fmt.Errorf("update SA %s: %w (larval)", sa.Describe(), kernel.ErrNotFound)
	}
	cur, err := k.get(id)
	if err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), err)
	}
	if err := kernel.CheckUpdate(&cur.sa, &sa); err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), err)
	}
	if _, err := k.request(msgUpdSA, true, encodeSA(&sa), 0); err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), classify(err, addErrs))
	}
	return nil
}

// get reads one SA; a larval or foreign one is ErrNotFound. Called between begin and end.
func (k *Kernel) get(id kernel.SAID) (decodedSA, error) {
	msgs, err := k.request(msgGetSA, false, encodeSAID(id), msgNewSA)
	if err == nil && len(msgs) == 0 {
		err = errors.New("no reply")
	}
	if err != nil {
		return decodedSA{}, classify(err, findErrs)
	}
	d, err := decodeSA(msgs[0])
	if err != nil {
		return decodedSA{}, err
	}
	if d.larval {
		return decodedSA{}, fmt.Errorf("%w (larval)", kernel.ErrNotFound)
	}
	if info, ok := k.index.SA(id); ok {
		d.sa.Owner = info.Owner
	}
	return d, nil
}

// DeleteSA implements kernel.Kernel.
func (k *Kernel) DeleteSA(ctx context.Context, id kernel.SAID) error {
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	if err := k.deleteSA(id); err != nil {
		return fmt.Errorf("delete SA %s: %w", id, err)
	}
	return nil
}

func (k *Kernel) deleteSA(id kernel.SAID) error {
	_, err := k.request(msgDelSA, true, encodeSAID(id), 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return classify(err, findErrs)
	}
	// Gone either way: forget it.
	k.index.RemoveSA(id)
	if err != nil {
		return classify(err, findErrs)
	}
	return nil
}

// GetSA implements kernel.Kernel.
func (k *Kernel) GetSA(ctx context.Context, id kernel.SAID) (kernel.SA, kernel.Counters, error) {
	if err := k.begin(ctx); err != nil {
		return kernel.SA{}, kernel.Counters{}, err
	}
	defer k.end()
	d, err := k.get(id)
	if err != nil {
		return kernel.SA{}, kernel.Counters{}, fmt.Errorf("get SA %s: %w", id, err)
	}
	return d.sa, d.counters, nil
}

// AddPolicy implements kernel.Kernel.
func (k *Kernel) AddPolicy(ctx context.Context, p kernel.Policy) error {
	return k.putPolicy(ctx, "add", msgNewPolicy, p)
}

// UpdatePolicy implements kernel.Kernel.
func (k *Kernel) UpdatePolicy(ctx context.Context, p kernel.Policy) error {
	return k.putPolicy(ctx, "update", msgUpdPolicy, p)
}

func (k *Kernel) putPolicy(ctx context.Context, verb string, typ int, p kernel.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%s %s: %w", verb, p.Describe(), err)
	}
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	if _, err := k.request(typ, true, encodePolicy(&p), 0); err != nil {
		return fmt.Errorf("%s %s: %w", verb, p.Describe(), classify(err, addErrs))
	}
	k.index.PutPolicy(p.ID(), owners.PolicyInfo{Owner: p.Owner, Reqid: p.Template.Reqid})
	return nil
}

// DeletePolicy implements kernel.Kernel.
func (k *Kernel) DeletePolicy(ctx context.Context, id kernel.PolicyID) error {
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	if err := k.deletePolicy(id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

func (k *Kernel) deletePolicy(id kernel.PolicyID) error {
	_, err := k.request(msgDelPolicy, true, encodePolicyID(id), 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return classify(err, findErrs)
	}
	k.index.RemovePolicy(id)
	if err != nil {
		return classify(err, findErrs)
	}
	return nil
}

// GetPolicy implements kernel.Kernel.
func (k *Kernel) GetPolicy(ctx context.Context, id kernel.PolicyID) (kernel.Policy, error) {
	if err := k.begin(ctx); err != nil {
		return kernel.Policy{}, err
	}
	defer k.end()
	msgs, err := k.request(msgGetPolicy, false, encodePolicyID(id), msgNewPolicy)
	if err == nil && len(msgs) == 0 {
		err = errors.New("no reply")
	}
	if err != nil {
		return kernel.Policy{}, fmt.Errorf("get %s: %w", id, classify(err, findErrs))
	}
	d, err := decodePolicy(msgs[0])
	if err != nil {
		return kernel.Policy{}, fmt.Errorf("get %s: %w", id, err)
	}
	if info, ok := k.index.Policy(id); ok {
		d.p.Owner = info.Owner
	}
	return d.p, nil
}

// Snapshot implements kernel.Kernel.
func (k *Kernel) Snapshot(ctx context.Context) (kernel.Tables, error) {
	if err := k.begin(ctx); err != nil {
		return kernel.Tables{}, err
	}
	defer k.end()
	sas, pols, err := k.dumpAll()
	if err != nil {
		return kernel.Tables{}, fmt.Errorf("snapshot: %w", err)
	}
	var tb kernel.Tables
	for _, d := range sas {
		sa := d.sa
		if info, ok := k.index.SA(sa.ID()); ok {
			sa.Owner = info.Owner
		}
		tb.SAs = append(tb.SAs, kernel.SAEntry{SA: sa, Counters: d.counters, Larval: d.larval})
	}
	for _, d := range pols {
		p := d.p
		if info, ok := k.index.Policy(p.ID()); ok {
			p.Owner = info.Owner
		}
		tb.Policies = append(tb.Policies, p)
	}
	return tb, nil
}

// dumpAll reads the ESP SAs (without SPI-0 placeholders) and the expressible policies.
func (k *Kernel) dumpAll() ([]decodedSA, []decodedPolicy, error) {
	msgs, err := k.dump(msgGetSA, msgNewSA)
	if err != nil {
		return nil, nil, fmt.Errorf("dump SAs: %w", err)
	}
	var sas []decodedSA
	for _, m := range msgs {
		d, err := decodeSA(m)
		if err != nil {
			return nil, nil, fmt.Errorf("dump SAs: %w", err)
		}
		if d.proto != protoESP || d.sa.SPI == 0 || d.foreign {
			continue
		}
		sas = append(sas, d)
	}
	msgs, err = k.dump(msgGetPolicy, msgNewPolicy)
	if err != nil {
		return nil, nil, fmt.Errorf("dump policies: %w", err)
	}
	var pols []decodedPolicy
	for _, m := range msgs {
		d, err := decodePolicy(m)
		if err != nil {
			return nil, nil, fmt.Errorf("dump policies: %w", err)
		}
		if d.foreign {
			continue
		}
		pols = append(pols, d)
	}
	return sas, pols, nil
}

// Subscribe implements kernel.Kernel.
func (k *Kernel) Subscribe(capacity int) *kernel.Subscription { return k.hub.Subscribe(capacity) }

// DeleteOwned implements kernel.Kernel.
func (k *Kernel) DeleteOwned(ctx context.Context, family kernel.FamilyID) error {
	if err := k.begin(ctx); err != nil {
		return err
	}
	defer k.end()
	sas, pols := k.index.Family(family)
	var errs []error
	for _, id := range sas {
		if err := k.deleteSA(id); err != nil && !errors.Is(err, kernel.ErrNotFound) {
			errs = append(errs, fmt.Errorf("SA %s: %w", id, err))
		}
	}
	for _, id := range pols {
		if err := k.deletePolicy(id); err != nil && !errors.Is(err, kernel.ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete objects of family %d: %w", family, err)
	}
	return nil
}

// CleanupStale implements kernel.Kernel.
func (k *Kernel) CleanupStale(ctx context.Context) (kernel.Cleanup, error) {
	if err := k.begin(ctx); err != nil {
		return kernel.Cleanup{}, err
	}
	defer k.end()
	var c kernel.Cleanup
	sas, pols, err := k.dumpAll()
	if err != nil {
		return c, fmt.Errorf("cleanup: %w", err)
	}
	var errs []error
	for _, d := range sas {
		id := d.sa.ID()
		if _, ours := k.index.SA(id); ours || !d.sa.Reqid.Tagged() {
			continue
		}
		_, err := k.request(msgDelSA, true, encodeSAID(id), 0)
		switch {
		case err == nil:
			c.SAs++
		case !errors.Is(err, unix.ESRCH):
			errs = append(errs, fmt.Errorf("SA %s: %w", id, err))
		}
	}
	for _, d := range pols {
		id := d.p.ID()
		if _, ours := k.index.Policy(id); ours || !d.tagged {
			continue
		}
		_, err := k.request(msgDelPolicy, true, encodePolicyID(id), 0)
		switch {
		case err == nil:
			c.Policies++
		case !errors.Is(err, unix.ENOENT):
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("cleanup: %w", err)
	}
	return c, nil
}
