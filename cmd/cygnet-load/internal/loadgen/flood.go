package loadgen

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// FloodConfig is a half-open flood: IKE_SA_INIT requests from spoofed source addresses
// that will never answer, the attack COOKIEs exist for (RFC 7296 §2.6). The requests
// are real ones, made by the core, so that a responder must treat them as new IKE SAs
// (or challenge them); each datagram gets a fresh initiator SPI.
type FloodConfig struct {
	// Target is the responder's IKE address and port (IPv4).
	Target netip.AddrPort
	// Spoof is the prefix the source addresses are drawn from at random. The
	// responder's answers go there: route it to a place that drops them.
	Spoof netip.Prefix
	// Rate is datagrams per second; Duration how long to send.
	Rate     float64
	Duration time.Duration
	// IKEProposals (strongSwan syntax) of the requests.
	IKEProposals string
	// Templates is how many distinct requests (key-exchange values, nonces) to make
	// before sending; default 64.
	Templates int
}

// FloodReport says what was sent.
type FloodReport struct {
	Sent       uint64  `json:"sent"`
	SendErrors uint64  `json:"send_errors"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"rate"`
}

// plainEnv is the Env of template families: the operating system's randomness.
type plainEnv struct{}

func (plainEnv) Rand() io.Reader { return crand.Reader }
func (plainEnv) AllocSPI(ike.ChildRef) (uint32, error) {
	var b [4]byte
	_, err := crand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) | 0x100, err
}

// floodTemplates makes n IKE_SA_INIT requests with the core.
func floodTemplates(cfg FloodConfig, n int) ([][]byte, error) {
	props, err := proposal.Parse(wire.ProtoIKE, cfg.IKEProposals)
	if err != nil {
		return nil, fmt.Errorf("flood: IKE proposals: %w", err)
	}
	espProps, _ := proposal.Parse(wire.ProtoESP, "aes256gcm16")
	var out [][]byte
	for i := range n {
		src := addrAdd(cfg.Spoof.Masked().Addr(), uint64(i))
		id, _ := ike.ParseIdentity("flood.cygnet.test")
		conn := &ike.Connection{Name: "flood", LocalAddrs: []netip.Addr{src}, RemoteAddrs: []netip.Addr{cfg.Target.Addr()},
			RemotePort: cfg.Target.Port(), Proposals: props, PSK: ike.Secret("flood"),
			Local: ike.AuthConfig{ID: id}, Remote: ike.AuthConfig{ID: ike.Identity{Type: ike.IDAny}},
			Children: []ike.ChildConfig{{Name: "flood", ESPProposals: espProps, StartAction: ike.ActionStart}}}
		f, err := ike.NewInitiator(conn, plainEnv{}, ike.Options{})
		if err != nil {
			return nil, fmt.Errorf("flood: %w", err)
		}
		var req []byte
		pending := []ike.Event{ike.Initiate{}}
		for len(pending) > 0 && req == nil {
			ev := pending[0]
			pending = pending[1:]
			for _, e := range f.Step(time.Now(), ev) {
				switch e := e.(type) {
				case ike.Work:
					pending = append(pending, ike.WorkDone{Token: e.Token, Result: e.Run()})
				case ike.SendDatagram:
					req = append([]byte(nil), e.Data...)
				}
			}
		}
		if req == nil {
			return nil, errors.New("flood: the core made no IKE_SA_INIT request")
		}
		out = append(out, req)
	}
	return out, nil
}

// Flood sends spoofed IKE_SA_INIT requests through a raw IPv4 socket (IP_HDRINCL;
// needs CAP_NET_RAW) until Duration passes or ctx ends.
func Flood(ctx context.Context, cfg FloodConfig) (*FloodReport, error) {
	if !cfg.Target.Addr().Is4() || !cfg.Spoof.Addr().Is4() {
		return nil, errors.New("flood: IPv4 only")
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("flood: rate and duration must be positive")
	}
	if cfg.Templates <= 0 {
		cfg.Templates = 64
	}
	tmpls, err := floodTemplates(cfg, cfg.Templates)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("flood: raw socket: %w", err)
	}
	defer unix.Close(fd)
	dst := &unix.SockaddrInet4{Addr: cfg.Target.Addr().As4()}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	span := uint64(1) << (32 - cfg.Spoof.Bits())
	base := cfg.Spoof.Masked().Addr()
	rep := &FloodReport{}
	pkt := make([]byte, 0, 2048)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		if !now.Before(deadline) || ctx.Err() != nil {
			break
		}
		due := uint64(now.Sub(start).Seconds() * cfg.Rate)
		for rep.Sent+rep.SendErrors < due {
			src := addrAdd(base, rng.Uint64N(span))
			req := tmpls[rng.IntN(len(tmpls))]
			pkt = buildUDP4(pkt[:0], src, cfg.Target.Addr(), 500, cfg.Target.Port(), req)
			// A fresh SPIi (RFC 7296 §2.6: the cookie covers it) in the copy.
			binary.BigEndian.PutUint64(pkt[28:36], rng.Uint64()|1)
			if err := unix.Sendto(fd, pkt, 0, dst); err != nil {
				rep.SendErrors++
			} else {
				rep.Sent++
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.Rate = float64(rep.Sent) / rep.Seconds
	}
	return rep, nil
}

// buildUDP4 appends an IPv4 header (RFC 791; the kernel fills in the checksum and
// the identification) and a UDP header (RFC 768; checksum 0: none) around payload.
func buildUDP4(dst []byte, src, to netip.Addr, sport, dport uint16, payload []byte) []byte {
	total := 20 + 8 + len(payload)
	dst = append(dst, 0x45, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(total))
	dst = append(dst, 0, 0, 0, 0, 64, unix.IPPROTO_UDP, 0, 0)
	s, d := src.As4(), to.As4()
	dst = append(dst, s[:]...)
	dst = append(dst, d[:]...)
	dst = binary.BigEndian.AppendUint16(dst, sport)
	dst = binary.BigEndian.AppendUint16(dst, dport)
	dst = binary.BigEndian.AppendUint16(dst, uint16(8+len(payload)))
	dst = append(dst, 0, 0)
	return append(dst, payload...)
}
