// Package loadgen drives cygnet's pure IKEv2 core (actors/ike) at load, without the
// actor tree: as an initiator that opens, holds, rekeys and deletes many IKE SAs against
// any responder (Run), as a bare responder (NewResponder), and as a half-open flood of
// spoofed IKE_SA_INIT requests (Flood).
//
// Contract:
//   - Families are stepped by event loops ("shards"), each owning its families, one
//     timer heap holding each family's single deadline (the core arms one timer per
//     family) and a ChaCha8 random stream for their Env. Key-exchange math (ike.Work)
//     runs in a worker pool and comes back to the owning shard as ike.WorkDone; if the
//     pool is full it runs inline rather than block the loop. Socket readers route each
//     datagram by our IKE SPI (RFC 7296 §2.2) through a table the shards keep current
//     from RouteSPI/UnrouteSPI; a responder's new IKE_SA_INIT goes to the shard its
//     (address, SPIi) hashes to. Nothing touches a family outside its shard.
//   - NAT-T sockets carry the non-ESP marker (RFC 3948 §2.2); ESP is never carried.
//     Child SAs are negotiated but installed in no kernel: InstallChild is answered at
//     once with ChildInstalled.
//   - Run is bounded in count and time and stops by itself: a setup phase (every IKE
//     SA established or failed, or SetupTimeout), a hold phase (Hold, rekeys driven by
//     the core's own timers), an optional delete phase (DrainTimeout). Its Report
//     counts established and failed per second, latency percentiles of IKE_SA_INIT +
//     IKE_AUTH, retransmissions, and failures by notify or reason. When Run, a
//     Responder or Flood returns, every goroutine it started has ended and every
//     socket is closed.
//   - Malformed datagrams are counted and dropped (ike.Peek, then the core's own
//     checks). A panic inside the core ends that family only, counted with the panic
//     as its reason, and the load goes on.
package loadgen
