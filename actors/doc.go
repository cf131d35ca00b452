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
//   - Listing. Every family publishes a summary of its state after each Step that
//     changed it; ListSAs reads the summaries without asking any actor.
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
