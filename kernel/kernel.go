package kernel

import (
	"context"
	"errors"
)

// Errors that every Kernel wraps, so callers can tell failures apart with errors.Is.
var (
	// ErrNotFound: the SA or policy does not exist (deleting twice, updating a missing SA).
	ErrNotFound = errors.New("not found")
	// ErrExists: an SA with the same SPI and destination, or a policy with the same
	// direction and selector, is already installed.
	ErrExists = errors.New("already exists")
	// ErrInvalid: the request fails validation (bad key length, untagged reqid, …) or the
	// kernel rejected its parameters.
	ErrInvalid = errors.New("invalid")
	// ErrSPIExhausted: no free SPI in the requested range.
	ErrSPIExhausted = errors.New("no free SPI in range")
	// ErrReqidExhausted: every reqid of cygnet's range is in use.
	ErrReqidExhausted = errors.New("no free reqid")
	// ErrUnsupported: the kernel lacks what the request needs (no ESP, no such algorithm).
	ErrUnsupported = errors.New("not supported by the kernel")
	// ErrClosed: the Kernel was closed.
	ErrClosed = errors.New("kernel closed")
	// ErrInjected: a fault injected by a test (kernel/memkernel).
	ErrInjected = errors.New("injected fault")
)

// Kernel is cygnet's view of the kernel's SAD and SPD. See the package documentation for
// the contract every implementation keeps (kernel/kerneltest checks it).
type Kernel interface {
	// AllocReqid returns a reqid in cygnet's range that no installed object of this
	// Kernel uses. A Child SA keeps its reqid across rekeys: its SAs and its policies'
	// templates share it.
	AllocReqid() (Reqid, error)

	// AllocSPI reserves a fresh SPI for an inbound SA (RFC 7296 §3.3.1: the SPI the
	// peer will put in packets to us). The kernel guarantees it is unique for Dst.
	AllocSPI(ctx context.Context, req SPIRequest) (SPI, error)

	// AddSA installs an SA. It fills in a larval SA left by AllocSPI; otherwise an
	// existing SA with the same ID is an error (ErrExists).
	AddSA(ctx context.Context, sa SA) error
	// UpdateSA changes the mutable parts of an installed SA: the UDP encapsulation ports
	// (a NAT mapping changed, RFC 7296 §2.23) and the limits (soft expiry may fire again).
	// The other fields must match what is installed. ErrNotFound if there is no such SA.
	UpdateSA(ctx context.Context, sa SA) error
	// DeleteSA removes an SA (or releases an allocated SPI). ErrNotFound if absent.
	DeleteSA(ctx context.Context, id SAID) error
	// GetSA returns an installed SA with its keys, and its current counters.
	GetSA(ctx context.Context, id SAID) (SA, Counters, error)

	// AddPolicy installs a policy; ErrExists if one with the same ID is installed.
	AddPolicy(ctx context.Context, p Policy) error
	// UpdatePolicy replaces the priority and template of an installed policy, or
	// installs it if absent.
	UpdatePolicy(ctx context.Context, p Policy) error
	// DeletePolicy removes a policy. ErrNotFound if absent.
	DeletePolicy(ctx context.Context, id PolicyID) error
	// GetPolicy returns an installed policy, with the kernel's Index.
	GetPolicy(ctx context.Context, id PolicyID) (Policy, error)

	// Snapshot returns the whole SAD and SPD, cygnet's objects and foreign ones alike.
	Snapshot(ctx context.Context) (Tables, error)

	// Subscribe returns a subscription to expiry and acquire events with a channel of
	// the given capacity (at least 1). A subscriber that does not keep up loses events
	// (Subscription.Lost counts them); the kernel's reader never blocks.
	Subscribe(capacity int) *Subscription

	// DeleteOwned removes every SA (first) and policy (second) this Kernel installed
	// for the family, including allocated SPIs; objects already gone are not an error.
	// Call it after the family's child actors have stopped: an install that races with
	// it may survive it.
	DeleteOwned(ctx context.Context, family FamilyID) error
	// CleanupStale removes every tagged SA and policy that this Kernel did not install
	// (what a previous run left when it died) and returns how many it removed. Objects
	// whose reqid is not Tagged are never touched. Call it at start-up, before the
	// first install.
	CleanupStale(ctx context.Context) (Cleanup, error)

	// Close ends all subscriptions and releases the Kernel's resources. It leaves the
	// kernel's tables as they are.
	Close() error
}

// Cleanup counts what CleanupStale removed.
type Cleanup struct {
	SAs, Policies int
}
