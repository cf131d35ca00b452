package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// MaxReplayWindow is the largest anti-replay window, in packets (Linux's limit on the
// replay bitmap, XFRMA_REPLAY_ESN_MAX).
const MaxReplayWindow = 4096

// Validate checks that sa can be installed: a tagged reqid, addresses of one family, an
// SPI outside the reserved range, a known mode, a key of the right length for each
// transform, and consistent limits. The error wraps ErrInvalid.
func (sa *SA) Validate() error {
	err := sa.validate()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func (sa *SA) validate() error {
	if !sa.Src.IsValid() || !sa.Dst.IsValid() {
		return errors.New("source and destination address required")
	}
	if sa.Src.Is4() != sa.Dst.Is4() {
		return errors.New("source and destination of different address families")
	}
	if !plain(sa.Src) || !plain(sa.Dst) {
		return errors.New("addresses with zones or IPv4-mapped IPv6 addresses are not supported")
	}
	if sa.SPI < MinSPI {
		return fmt.Errorf("SPI %s is reserved (RFC 4303 §2.1)", sa.SPI)
	}
	if !sa.Mode.Valid() {
		return fmt.Errorf("unknown mode %d", sa.Mode)
	}
	if !sa.Reqid.Tagged() {
		return fmt.Errorf("reqid %s is not in cygnet's range", sa.Reqid)
	}
	switch sa.Encr {
	case EncrAESGCM16, EncrChaCha20Poly1305:
		if sa.Integ != IntegNone || len(sa.IntegKey) != 0 {
			return fmt.Errorf("%s is an AEAD transform and takes no integrity transform", sa.Encr)
		}
	case EncrAESCBC:
		if sa.Integ.TruncBits() == 0 {
			return fmt.Errorf("%s needs an integrity transform (RFC 8221 §3)", sa.Encr)
		}
		if len(sa.IntegKey) != sa.Integ.KeyLen() {
			return fmt.Errorf("%s key is %d octets, want %d (RFC 4868 §2.1.1)", sa.Integ, len(sa.IntegKey), sa.Integ.KeyLen())
		}
	default:
		return fmt.Errorf("unknown encryption transform %d", sa.Encr)
	}
	if !sa.Encr.validKeyLen(len(sa.EncrKey)) {
		return fmt.Errorf("%s key of %d octets", sa.Encr, len(sa.EncrKey))
	}
	if sa.ReplayWindow > MaxReplayWindow {
		return fmt.Errorf("replay window %d above %d", sa.ReplayWindow, MaxReplayWindow)
	}
	if sa.ESN && sa.ReplayWindow == 0 {
		return errors.New("ESN needs a replay window of at least 1")
	}
	if sa.Encap != nil && (sa.Encap.SrcPort == 0 || sa.Encap.DstPort == 0) {
		return errors.New("UDP encapsulation needs both ports")
	}
	if err := sa.Limits.validate(); err != nil {
		return err
	}
	if !sa.Selector.IsZero() {
		if err := sa.Selector.validate(); err != nil {
			return fmt.Errorf("selector: %w", err)
		}
	}
	return nil
}

func (l Limits) validate() error {
	for _, lt := range []Lifetime{l.Soft, l.Hard} {
		if lt.Time < 0 || lt.Time%time.Second != 0 {
			return fmt.Errorf("time limit %v is not a whole number of seconds", lt.Time)
		}
	}
	if l.Hard.Bytes != 0 && l.Soft.Bytes > l.Hard.Bytes {
		return fmt.Errorf("soft byte limit %d above hard %d", l.Soft.Bytes, l.Hard.Bytes)
	}
	if l.Hard.Packets != 0 && l.Soft.Packets > l.Hard.Packets {
		return fmt.Errorf("soft packet limit %d above hard %d", l.Soft.Packets, l.Hard.Packets)
	}
	if l.Hard.Time != 0 && l.Soft.Time > l.Hard.Time {
		return fmt.Errorf("soft time limit %v above hard %v", l.Soft.Time, l.Hard.Time)
	}
	return nil
}

func (s Selector) validate() error {
	if !s.Src.IsValid() || !s.Dst.IsValid() {
		return errors.New("source and destination prefix required")
	}
	if s.Src.Addr().Is4() != s.Dst.Addr().Is4() {
		return errors.New("prefixes of different address families")
	}
	if s.Src != s.Src.Masked() || s.Dst != s.Dst.Masked() {
		return fmt.Errorf("prefix %s or %s has host bits set", s.Src, s.Dst)
	}
	if !plain(s.Src.Addr()) || !plain(s.Dst.Addr()) {
		return errors.New("prefixes with zones or IPv4-mapped IPv6 addresses are not supported")
	}
	if s.Proto == 0 && (s.SrcPort != 0 || s.DstPort != 0) {
		return errors.New("ports need a protocol")
	}
	return nil
}

// Validate checks that p can be installed: a known direction, a selector of one address
// family, and a template with a known mode, tunnel end points (tunnel mode) and a
// tagged reqid. The error wraps ErrInvalid.
func (p *Policy) Validate() error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func (p *Policy) validate() error {
	if !p.Dir.Valid() {
		return fmt.Errorf("unknown direction %d", p.Dir)
	}
	if err := p.Selector.validate(); err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	t := &p.Template
	if !t.Mode.Valid() {
		return fmt.Errorf("template: unknown mode %d", t.Mode)
	}
	if !t.Reqid.Tagged() {
		return fmt.Errorf("template: reqid %s is not in cygnet's range", t.Reqid)
	}
	switch t.Mode {
	case ModeTunnel:
		if !t.Src.IsValid() || !t.Dst.IsValid() {
			return errors.New("template: tunnel mode needs both end points")
		}
		if t.Src.Is4() != t.Dst.Is4() {
			return errors.New("template: end points of different address families")
		}
		if !plain(t.Src) || !plain(t.Dst) {
			return errors.New("template: end points with zones or IPv4-mapped IPv6 addresses are not supported")
		}
	case ModeTransport:
		if t.Src.IsValid() || t.Dst.IsValid() {
			return errors.New("template: transport mode takes no end points")
		}
	}
	return nil
}

// Validate checks an SPI request: addresses of one family, a known mode, a tagged
// reqid and a non-empty range above the reserved SPIs.
func (r *SPIRequest) Validate() error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func (r *SPIRequest) validate() error {
	if !r.Src.IsValid() || !r.Dst.IsValid() {
		return errors.New("source and destination address required")
	}
	if r.Src.Is4() != r.Dst.Is4() {
		return errors.New("source and destination of different address families")
	}
	if !plain(r.Src) || !plain(r.Dst) {
		return errors.New("addresses with zones or IPv4-mapped IPv6 addresses are not supported")
	}
	if !r.Mode.Valid() {
		return fmt.Errorf("unknown mode %d", r.Mode)
	}
	if !r.Reqid.Tagged() {
		return fmt.Errorf("reqid %s is not in cygnet's range", r.Reqid)
	}
	lo, hi := r.Range.Bounds()
	if lo < MinSPI || lo > hi {
		return fmt.Errorf("SPI range %s-%s", lo, hi)
	}
	return nil
}

// AnyPrefix returns the prefix that contains every address of a's family.
func AnyPrefix(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
}

// plain reports whether a can be written to the kernel as it is: no zone, and not an
// IPv4-mapped IPv6 address (which would silently change family).
func plain(a netip.Addr) bool { return a.Zone() == "" && !a.Is4In6() }
