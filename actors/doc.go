// Package actors is cygnet's running daemon core: the protoactor-go supervision tree
// that carries the pure IKEv2 core (package ike) into the world (DESIGN.md, "The actor
// tree"):
//
//	manager          routes datagrams by IKE SPI, admits new IKE SAs (COOKIEs, half-open
//	 │               limits, back-pressure), spawns families, removes what dead families
//	 │               left in the kernel
//	 ├── family      one per IKE family: feeds the core, carries out its effects
//	 │    └── child  one per Child SA: owns its SAs and policies in the kernel
//	 └── …
//
// # Contract
//
//   - Failure containment (DESIGN.md, "Failure rules"). Supervision is stop-only
//     everywhere (package actorkit). A child actor that panics or is killed stops alone:
//     its kernel state is removed as it stops, and its family feeds ike.ChildDied to the
//     core, which deletes that Child SA with the peer; the IKE SA and the siblings are
//     untouched. A family that panics, is killed or ends stops with all its children; the
//     manager then drops its routes and its cached PID, and the janitor removes whatever
//     the kernel still holds tagged with the family (kernel.DeleteOwned).
//   - No blocking in the wrong place. The socket readers never wait on an actor (bounded
//     in-flight counts per family and for the manager; beyond them datagrams are
//     dropped and counted). Key-exchange math runs in a bounded worker pool (package
//     workpool) and comes back as ike.WorkDone; while the pool is past its high-water
//     mark new IKE_SA_INIT requests are dropped (the initiator retransmits). Kernel
//     calls happen in child actors and, for SPI reservation, in families — never in the
//     manager.
//   - Time. Each family has one generation-tagged timer at the core's next deadline;
//     timers stop with their actor.
//   - Turns. The actors' mailboxes (actorkit.Mailbox) hold no queue memory while
//     empty. With Config.PooledTurns their turns run on an actorkit.Dispatcher:
//     long-lived worker goroutines (their stacks stay grown), at most 32 messages per
//     turn before the mailbox goes to the back of the run queue, spilling to goroutines
//     of their own when the short run queue is full; it is closed with the tree.
//     Without it (the default for now, see Config.PooledTurns), a goroutine per turn.
//   - Listing. Every family publishes a summary of its state after each Step that
//     changed it; ListSAs reads the summaries without asking any actor.
//
// # Measured (2-core machine, this package's tests and benchmarks)
//
//   - Two instances over loopback with the real core establish 1,000 IKE SAs with two
//     Child SAs each in ~3 s, rekey them (IKE SAs, then Child SAs from both ends) and
//     delete them; both in-memory kernels end empty (TestPairLifecycle1000).
//   - Chaos, 20,000 families and 100,000 kills (94% child actors, a third as panics)
//     amid 68,000 rekeys, 8,600 deletes and 64,000 initiations: both ends agreed within
//     the liveness timeout, 12,986 connections that lost only Child SAs kept their IKE
//     SA, every kernel object had a live owner (TestChaos with -chaos.families=20000
//     -chaos.kills=100000, ~17 min).
//   - Heap per idle established family with two Child SAs, both ends, actors and core
//     included: 8,067–8,080 B in three fresh processes, under the 8 KiB target
//     (BenchmarkIdleFamilyMemory; 13.2 KiB before the shells cleared the core's
//     effects, the SK ciphers became lazy, the core shrank, the manager shared one
//     defaulted copy of each connection among its families and Child SAs shared their
//     definition's selectors; 8.7 KiB before the last two). Of the 8.7 KiB, by
//     heap profile delta: shells 2.5 KiB (family 384 B, two children 320 B, their
//     lineages and slots, the policy table's two entries ~470 B, three mailboxes
//     288 B, timer ~220 B, manager entry and routes ~280 B), protoactor 2.2 KiB (per
//     actor: context, process, registry entry; the family's children set ~410 B),
//     the listing summary ~850 B (the core's Snapshot), core ~2.8 KiB, SK ciphers
//     and cached response ~0.25 KiB.
//   - CPU per established IKE SA with one Child SA, both ends in one process over
//     loopback with in-memory kernels (BenchmarkHandshakeCPU, 2,000 IKE SAs, getrusage;
//     the machine shared and noisy: medians of 5 interleaved runs, 10 to 15% apart run
//     to run): 820 µs with PooledTurns (2.9x the X25519 floor of both ends,
//     ~280 µs, measured in the same run), 950 µs on protoactor's goroutine-per-turn
//     dispatcher (3.6x), 965 µs for the tree as it was at the start of session 2
//     (3.85x). The profile: X25519 ~31%, malloc and GC ~25%, the core's Step ~20%
//     (its own allocations included), Child SA installs ~9% (the in-memory kernel 4%),
//     sendmsg ~5%; dispatch itself (mailboxes, run queue) ~2%.
//   - Actor ping-pong on the worker dispatcher 1.7 µs, on goroutines 5.4 µs
//     (actorkit BenchmarkDispatcher).
//   - One family's packet handling, UDP in to UDP out, while 10,000 families run key
//     exchanges: p50 48–57 µs, p99 5.5 ms; the same work inside the families' turns:
//     p50 14 ms, p99 130 ms (BenchmarkPacketLatencyUnderLoad).
//
// # Using it (cmd/cygnetd)
//
//	m, err := actors.New(cfg, kern, log, metrics) // cfg from actors.DefaultConfig()
//	m.Initiate(ctx, conn, child)                  // child "" = the whole connection
//	m.Terminate(actors.Target{...}); m.Rekey(actors.Target{...})
//	m.ListSAs(); m.Subscribe(n)                   // list-sas; watch
//	m.SetConnections(ctx, conns)                  // reload
//	m.Shutdown(ctx)                               // first signal: DELETEs, kernel emptied
//	m.Kill()                                      // second signal: exit at once
//	m.KillActor(ctx, "f12/c3", panic)             // chaos testing only (Config.Chaos)
package actors
