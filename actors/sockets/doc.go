// Package sockets is cygnet's UDP layer: the IKE port (500) and the NAT-T port (4500)
// on each configured local address, IPv4 and IPv6 (RFC 7296 §2, §2.23; RFC 3948).
//
// Contract:
//
//   - Receive. One reader goroutine per socket reads into its own 64 KiB buffer and
//     hands each IKE message to the Handler as a pooled *Datagram. The Handler must not
//     block (the manager posts to an actor mailbox and returns); it returns false when it
//     refuses the datagram (its queue is full), which is counted as dropped. The
//     receiver of an accepted Datagram calls Release exactly once, when it no longer
//     reads Data (the IKE core keeps nothing of a packet after Step returns).
//   - Port 4500 (RFC 3948 §2.2, §2.3). An IKE message there is preceded by the 4-octet
//     non-ESP marker (zero), which is stripped on receive and prepended on send. A
//     datagram whose first four octets are not zero is ESP, not ours: dropped and
//     counted (with Config.KernelESPInUDP the kernel takes those itself). A datagram of
//     the single octet 0xff is a NAT keepalive: counted and dropped.
//   - Send never blocks on an actor; it writes one datagram, from the socket bound to
//     the local address and port (the kernel picks the source address for a wildcard
//     socket unless Local names one, which is then set with IP_PKTINFO).
//   - NAT keepalives (RFC 3948 §2.3, §4): KeepAlive registers a flow (our NAT-T
//     address, the peer's NAT-T address) that needs them — the family calls it when the
//     core detected a NAT in front of us; one goroutine sends a 0xff datagram on every
//     registered flow once per Config.KeepaliveInterval (default 20 s, strongSwan's
//     charon.keep_alive), spread over the interval.
//   - Failure. A socket whose read fails (other than by Close) is reported (log, Stats)
//     and reopened on the same address and port with a back-off, until it works or the
//     Set is closed. Sends during the gap fail with an error; nothing blocks.
//   - Close stops every goroutine of the Set and waits for them.
package sockets
