// Package ike is cygnet's IKEv2 protocol core (RFC 7296): one IKE family — an IKE SA,
// the IKE SAs that replace it by rekeying, and all their Child SAs — as a pure state
// machine.
//
// Contract: a Family is driven by one goroutine at a time through Step(now, event),
// which returns the effects the caller must carry out (send a datagram, install or
// remove a Child SA, arm the single timer, run CPU work, record a metric, stop). The core
// has no goroutines, sockets, clock or global randomness: time is the now argument,
// randomness and SPI allocation come from the Env given at construction, and packet
// delivery is the caller's. The same core therefore runs in the daemon's actor shell
// and in the deterministic simulator (package actors/sim).
//
// Failure containment (cygnet's DESIGN.md "Failure rules") is implemented here: a Child
// SA that cannot be created or installed ends only that Child SA; an IKE-fatal event
// ends the family (FamilyDone); junk (failed integrity, unknown SPI, message ID outside
// the window, unauthenticated error notify) changes nothing and is counted.
package ike
