package kernel

import (
	"fmt"
	"net/netip"
	"time"
)

// SPI is an ESP Security Parameter Index (RFC 4303 §2.1), in host byte order. Values
// 1–255 are reserved by IANA and 0 is never an SA's SPI.
type SPI uint32

// MinSPI is the lowest SPI an SA may have (RFC 4303 §2.1: 1–255 are reserved).
const MinSPI SPI = 0x100

func (s SPI) String() string { return fmt.Sprintf("0x%08x", uint32(s)) }

// SPIRange is an inclusive range of SPIs to allocate from. The zero value means
// [MinSPI, 0xffffffff].
type SPIRange struct{ Min, Max SPI }

// Bounds returns the effective range: zero fields take their defaults.
func (r SPIRange) Bounds() (lo, hi SPI) {
	lo, hi = r.Min, r.Max
	if lo == 0 {
		lo = MinSPI
	}
	if hi == 0 {
		hi = 0xffffffff
	}
	return lo, hi
}

// Reqid ties SAs to the policies whose templates select them (the kernel's "request
// id"). cygnet's reqids all carry ReqidTag in their top byte; that is the tag by which
// cygnet recognises its own objects after a crash.
type Reqid uint32

const (
	// ReqidTagMask selects the part of a reqid that holds the tag.
	ReqidTagMask Reqid = 0xff000000
	// ReqidTag marks a reqid as cygnet's ("c7" for cygnet).
	ReqidTag Reqid = 0xc7000000
	// ReqidMin and ReqidMax bound cygnet's reqid range.
	ReqidMin = ReqidTag | 1
	ReqidMax = ReqidTag | ^ReqidTagMask
)

// Tagged reports whether r is in cygnet's reserved range.
func (r Reqid) Tagged() bool { return r&ReqidTagMask == ReqidTag && r != ReqidTag }

func (r Reqid) String() string { return fmt.Sprintf("0x%08x", uint32(r)) }

// FamilyID identifies an IKE family (one IKE SA and its Child SAs) within the daemon.
// It is assigned by the manager; 0 means "no family".
type FamilyID uint64

// Owner says which IKE family, and which of its Child SAs, an SA or policy belongs to.
// Child is the family's own number for the Child SA (0 for objects of the family as a
// whole, such as trap policies).
type Owner struct {
	Family FamilyID
	Child  uint64
}

// IsZero reports whether o names no owner.
func (o Owner) IsZero() bool { return o == Owner{} }

func (o Owner) String() string { return fmt.Sprintf("family %d child %d", o.Family, o.Child) }

// Mode is the IPsec mode of an SA or template (RFC 4301 §4.1).
type Mode uint8

const (
	ModeTunnel    Mode = 1
	ModeTransport Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "tunnel"
	case ModeTransport:
		return "transport"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeTunnel || m == ModeTransport }

// Dir is the direction of a policy (RFC 4301 §4.4.1: inbound, outbound; Linux adds
// forward for traffic routed through the host).
type Dir uint8

const (
	DirIn  Dir = 1
	DirOut Dir = 2
	DirFwd Dir = 3
)

func (d Dir) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	case DirFwd:
		return "fwd"
	}
	return fmt.Sprintf("dir(%d)", uint8(d))
}

// Valid reports whether d is a known direction.
func (d Dir) Valid() bool { return d >= DirIn && d <= DirFwd }

// Encr is an ESP encryption transform.
type Encr uint8

const (
	// EncrAESGCM16 is AES-GCM with a 16-octet ICV (RFC 4106). The key is the AES key
	// followed by the 4-octet salt (RFC 4106 §8.1): 20, 28 or 36 octets.
	EncrAESGCM16 Encr = 1
	// EncrChaCha20Poly1305 is ChaCha20-Poly1305 (RFC 7634). The key is 32 octets followed
	// by the 4-octet salt (RFC 7634 §2): 36 octets.
	EncrChaCha20Poly1305 Encr = 2
	// EncrAESCBC is AES-CBC (RFC 3602) with a 16, 24 or 32 octet key; it needs an Integ.
	EncrAESCBC Encr = 3
)

func (e Encr) String() string {
	switch e {
	case EncrAESGCM16:
		return "aes-gcm-16"
	case EncrChaCha20Poly1305:
		return "chacha20-poly1305"
	case EncrAESCBC:
		return "aes-cbc"
	}
	return fmt.Sprintf("encr(%d)", uint8(e))
}

// AEAD reports whether e provides integrity itself (combined mode, RFC 4303 §3.2.3).
func (e Encr) AEAD() bool { return e == EncrAESGCM16 || e == EncrChaCha20Poly1305 }

// XfrmName is the Linux crypto API name of e, as `ip xfrm state` shows it.
func (e Encr) XfrmName() string {
	switch e {
	case EncrAESGCM16:
		return "rfc4106(gcm(aes))"
	case EncrChaCha20Poly1305:
		return "rfc7539esp(chacha20,poly1305)"
	case EncrAESCBC:
		return "cbc(aes)"
	}
	return ""
}

// ICVBits is the length of an AEAD transform's integrity check value, in bits.
func (e Encr) ICVBits() int {
	if e.AEAD() {
		return 128
	}
	return 0
}

func (e Encr) validKeyLen(n int) bool {
	switch e {
	case EncrAESGCM16:
		return n == 20 || n == 28 || n == 36
	case EncrChaCha20Poly1305:
		return n == 36
	case EncrAESCBC:
		return n == 16 || n == 24 || n == 32
	}
	return false
}

// Integ is an ESP integrity transform: HMAC-SHA-2 truncated as RFC 4868 §2.3 says.
type Integ uint8

const (
	IntegNone Integ = 0
	// IntegHMACSHA256128 is AUTH_HMAC_SHA2_256_128: 32-octet key, 128-bit ICV.
	IntegHMACSHA256128 Integ = 1
	// IntegHMACSHA384192 is AUTH_HMAC_SHA2_384_192: 48-octet key, 192-bit ICV.
	IntegHMACSHA384192 Integ = 2
	// IntegHMACSHA512256 is AUTH_HMAC_SHA2_512_256: 64-octet key, 256-bit ICV.
	IntegHMACSHA512256 Integ = 3
)

func (i Integ) String() string {
	switch i {
	case IntegNone:
		return "none"
	case IntegHMACSHA256128:
		return "hmac-sha256-128"
	case IntegHMACSHA384192:
		return "hmac-sha384-192"
	case IntegHMACSHA512256:
		return "hmac-sha512-256"
	}
	return fmt.Sprintf("integ(%d)", uint8(i))
}

// XfrmName is the Linux crypto API name of i.
func (i Integ) XfrmName() string {
	switch i {
	case IntegHMACSHA256128:
		return "hmac(sha256)"
	case IntegHMACSHA384192:
		return "hmac(sha384)"
	case IntegHMACSHA512256:
		return "hmac(sha512)"
	}
	return ""
}

// TruncBits is the ICV length in bits (RFC 4868 §2.3: half the hash output).
func (i Integ) TruncBits() int {
	switch i {
	case IntegHMACSHA256128:
		return 128
	case IntegHMACSHA384192:
		return 192
	case IntegHMACSHA512256:
		return 256
	}
	return 0
}

// KeyLen is the key length in octets (RFC 4868 §2.1.1: the hash output length).
func (i Integ) KeyLen() int { return i.TruncBits() / 4 }

// Lifetime is a set of SA limits (RFC 4301 §4.4.2.1). A zero field means no limit. Time
// counts from the SA's installation and must be a whole number of seconds.
type Lifetime struct {
	Bytes   uint64
	Packets uint64
	Time    time.Duration
}

// IsZero reports whether l sets no limit at all.
func (l Lifetime) IsZero() bool { return l == Lifetime{} }

// Limits are an SA's soft limits (the kernel warns: EventSoftExpire, time to rekey) and
// hard limits (the kernel deletes the SA: EventHardExpire).
type Limits struct {
	Soft, Hard Lifetime
}

// Encap is UDP encapsulation of ESP for NAT traversal (RFC 3948), with the ports of
// the outer UDP header (normally 4500, or what the NAT mapped them to).
type Encap struct {
	SrcPort, DstPort uint16
}

// Selector selects traffic by addresses, protocol and ports (RFC 4301 §4.4.1.1). A zero
// Proto means any protocol; a zero port means any port.
type Selector struct {
	Src, Dst         netip.Prefix
	Proto            uint8
	SrcPort, DstPort uint16
}

// IsZero reports whether s is the zero Selector.
func (s Selector) IsZero() bool { return s == Selector{} }

func (s Selector) String() string {
	str := fmt.Sprintf("%s→%s", s.Src, s.Dst)
	if s.Proto != 0 {
		str += " " + protoName(s.Proto)
	}
	if s.SrcPort != 0 || s.DstPort != 0 {
		str += fmt.Sprintf(" %d→%d", s.SrcPort, s.DstPort)
	}
	return str
}

// Matches reports whether a packet with these addresses, protocol and ports is selected.
func (s Selector) Matches(src, dst netip.Addr, proto uint8, srcPort, dstPort uint16) bool {
	if !s.Src.Contains(src) || !s.Dst.Contains(dst) {
		return false
	}
	if s.Proto != 0 && s.Proto != proto {
		return false
	}
	if s.SrcPort != 0 && s.SrcPort != srcPort {
		return false
	}
	if s.DstPort != 0 && s.DstPort != dstPort {
		return false
	}
	return true
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	}
	return fmt.Sprintf("proto %d", p)
}

// SAID identifies an ESP SA: destination address and SPI (RFC 4301 §4.1).
type SAID struct {
	Dst netip.Addr
	SPI SPI
}

func (id SAID) String() string { return fmt.Sprintf("esp spi %s dst %s", id.SPI, id.Dst) }

// SA is one ESP Security Association (RFC 4301 §4.4.2) as installed in the kernel. Keys
// are carried in clear: the type is for the child actor that owns them and for tests.
type SA struct {
	Src, Dst netip.Addr // outer addresses (tunnel end points, or the hosts in transport mode)
	SPI      SPI
	Mode     Mode
	Reqid    Reqid // must be Tagged
	// Owner is kept in the Kernel's in-process index, not in the kernel: an SA read back
	// after a restart has a zero Owner.
	Owner Owner

	Encr     Encr
	EncrKey  []byte // with the salt for AEAD transforms
	Integ    Integ  // IntegNone for AEAD transforms
	IntegKey []byte

	// ESN enables 64-bit extended sequence numbers (RFC 4303 §2.2.1); it needs a
	// ReplayWindow of at least 1.
	ESN bool
	// ReplayWindow is the anti-replay window in packets (RFC 4303 §3.4.3), 0 to 4096;
	// 0 disables anti-replay (outbound SAs).
	ReplayWindow uint32
	Encap        *Encap // nil: plain ESP
	Limits       Limits
	// Selector restricts the traffic the SA may carry; zero means any (tunnel mode SAs
	// normally leave it to the policies).
	Selector Selector
}

// ID returns the SA's identity.
func (sa *SA) ID() SAID { return SAID{Dst: sa.Dst, SPI: sa.SPI} }

// Describe names the SA for error messages and logs: SPI, addresses, algorithm, reqid.
// It never prints keys.
func (sa *SA) Describe() string {
	alg := sa.Encr.String()
	if !sa.Encr.AEAD() && sa.Integ != IntegNone {
		alg += "/" + sa.Integ.String()
	}
	return fmt.Sprintf("spi %s %s→%s %s reqid %s", sa.SPI, sa.Src, sa.Dst, alg, sa.Reqid)
}

// Clone returns a deep copy of sa (keys and Encap are copied).
func (sa SA) Clone() SA {
	sa.EncrKey = append([]byte(nil), sa.EncrKey...)
	sa.IntegKey = append([]byte(nil), sa.IntegKey...)
	if len(sa.EncrKey) == 0 {
		sa.EncrKey = nil
	}
	if len(sa.IntegKey) == 0 {
		sa.IntegKey = nil
	}
	if sa.Encap != nil {
		e := *sa.Encap
		sa.Encap = &e
	}
	return sa
}

// Counters are an SA's current lifetime counters (RFC 4301 §4.4.2.1): bytes and packets
// it has protected or accepted.
type Counters struct {
	Bytes, Packets uint64
}

// SPIRequest asks for a fresh SPI for an inbound SA from Src to Dst (Dst is local).
// The kernel reserves the SPI with a larval SA, tagged with Reqid, until AddSA fills it
// in (or DeleteSA releases it; Linux also drops larval SAs after net.xfrm.acq_expires
// seconds, 30 by default; AddSA still succeeds afterwards).
type SPIRequest struct {
	Src, Dst netip.Addr
	Mode     Mode
	Reqid    Reqid // must be Tagged
	Owner    Owner
	Range    SPIRange
}

// Describe names the request for error messages.
func (r *SPIRequest) Describe() string {
	lo, hi := r.Range.Bounds()
	return fmt.Sprintf("%s→%s reqid %s range %s-%s", r.Src, r.Dst, r.Reqid, lo, hi)
}

// Template says which SA a policy requires (Linux's xfrm_user_tmpl; RFC 4301 §4.4.1.2
// "processing info"). For tunnel mode, Src and Dst are the tunnel end points; for
// transport mode they are left zero. An outbound policy whose template has no matching
// SA is a trap: traffic that hits it makes the kernel send EventAcquire.
type Template struct {
	Src, Dst netip.Addr
	Mode     Mode
	Reqid    Reqid // must be Tagged: it is the policy's tag
	// Optional ("level use") lets traffic through that was not protected.
	Optional bool
}

// PolicyID identifies a policy: Linux keeps at most one policy per direction and
// selector (the priority is not part of the identity).
type PolicyID struct {
	Dir      Dir
	Selector Selector
}

func (id PolicyID) String() string { return fmt.Sprintf("policy %s %s", id.Dir, id.Selector) }

// Policy is one SPD entry (RFC 4301 §4.4.1) that protects the selected traffic with ESP
// according to Template.
type Policy struct {
	Dir      Dir
	Selector Selector
	// Priority orders overlapping policies: lower values win.
	Priority uint32
	Template Template
	// Owner is kept in the Kernel's in-process index (see SA.Owner).
	Owner Owner
	// Index is the kernel's number for the policy. It is set by the kernel and reported
	// by GetPolicy and Snapshot; it is ignored on install.
	Index uint32
}

// ID returns the policy's identity.
func (p *Policy) ID() PolicyID { return PolicyID{Dir: p.Dir, Selector: p.Selector} }

// Describe names the policy for error messages: direction, selector, template, reqid.
func (p *Policy) Describe() string {
	s := fmt.Sprintf("policy %s %s %s", p.Dir, p.Selector, p.Template.Mode)
	if p.Template.Mode == ModeTunnel {
		s += fmt.Sprintf(" %s→%s", p.Template.Src, p.Template.Dst)
	}
	return s + " reqid " + p.Template.Reqid.String()
}

// Equal reports whether sa and o are the same in every field (keys included).
func (sa *SA) Equal(o *SA) bool {
	if (sa.Encap == nil) != (o.Encap == nil) || (sa.Encap != nil && *sa.Encap != *o.Encap) {
		return false
	}
	return sa.Src == o.Src && sa.Dst == o.Dst && sa.SPI == o.SPI && sa.Mode == o.Mode &&
		sa.Reqid == o.Reqid && sa.Owner == o.Owner && sa.Encr == o.Encr &&
		string(sa.EncrKey) == string(o.EncrKey) && sa.Integ == o.Integ &&
		string(sa.IntegKey) == string(o.IntegKey) && sa.ESN == o.ESN &&
		sa.ReplayWindow == o.ReplayWindow && sa.Limits == o.Limits && sa.Selector == o.Selector
}

// CheckUpdate enforces UpdateSA's rule on an update of the installed SA: only the UDP
// encapsulation ports and the limits may change (Owner is ignored). The error wraps
// ErrInvalid.
func CheckUpdate(installed, upd *SA) error {
	a, b := installed.Clone(), upd.Clone()
	a.Owner, b.Owner = Owner{}, Owner{}
	a.Limits, b.Limits = Limits{}, Limits{}
	if (a.Encap == nil) != (b.Encap == nil) {
		return fmt.Errorf("%w: UDP encapsulation cannot be switched on or off", ErrInvalid)
	}
	a.Encap, b.Encap = nil, nil
	if !a.Equal(&b) {
		return fmt.Errorf("%w: only encapsulation ports and limits can change", ErrInvalid)
	}
	return nil
}
