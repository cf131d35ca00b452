// Package kernel is cygnet's seam to the operating system's IPsec tables: the Security
// Association Database (SAD) and the Security Policy Database (SPD) of RFC 4301 §4.4.
//
// It defines plain Go types for ESP SAs (RFC 4303) and policies, the Kernel interface that
// the daemon's child actors use to install them, and the event stream the kernel sends back
// (soft and hard expiry, acquire). Two implementations hold to one contract
// (kernel/kerneltest): kernel/xfrm programs Linux XFRM over netlink, and kernel/memkernel
// keeps the tables in memory with injectable faults and a caller-driven clock.
//
// # Contract
//
//   - Every method is safe for concurrent use by many goroutines.
//   - Errors are returned, never panics. An error names what was being installed (SPI,
//     addresses, algorithm, reqid) and wraps one of the sentinels below (ErrNotFound,
//     ErrExists, ErrInvalid, …), so one Child SA's failure stays that Child SA's failure.
//   - Inputs are validated (SA.Validate, Policy.Validate) before anything reaches the
//     kernel.
//   - Only ESP is supported. An SA is identified by (destination, SPI) (RFC 4301 §4.1).
//
// # Tagging: how cygnet finds what it created
//
// Everything cygnet installs carries a reqid from a range reserved for cygnet: the top
// byte is ReqidTag (0xc7), see Reqid.Tagged. SAs carry it as their reqid, policies as
// their template's reqid, and allocated SPIs (larval SAs) as well. The tag lives in the
// kernel, so it survives a crash of the daemon: CleanupStale, called at start-up, removes
// every tagged SA and policy that this Kernel did not install itself, and never touches
// an object whose reqid is outside the range. Kernels refuse to install untagged objects.
//
// Which IKE family (and which Child SA) owns an object is kept in an in-process index
// (Owner); DeleteOwned uses it after a family died. The index is lost with the process,
// which is what CleanupStale is for.
//
// One cygnet process per network namespace: two processes sharing one would remove each
// other's objects in CleanupStale.
package kernel
