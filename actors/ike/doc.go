// Package ike is cygnet's IKEv2 protocol core (RFC 7296): one IKE family — an IKE SA,
// the IKE SAs that replace it by rekeying, and all their Child SAs — as a pure state
// machine.
//
// # Contract
//
// A Family is driven by one goroutine at a time through Step(now, event), which returns
// the effects the caller must carry out, in order. The core has no goroutines, sockets,
// clock or global randomness: time is the now argument, randomness and SPI allocation
// come from the Env given at construction, and packet delivery is the caller's. The same
// core therefore runs in the daemon's actor shell and in the deterministic simulator
// (package actors/sim). A test (deps_test.go) keeps protoactor, netlink, zap,
// prometheus and net out of its imports.
//
// Making a family:
//
//   - NewInitiator(cfg, env, opts), then Step(Initiate{} | InitiateChild{name} |
//     Acquire{name}).
//   - NewResponder(now, candidates, env, opts, firstPacket) for an IKE_SA_INIT request
//     that Peek classified PeekNewSA (after the manager's COOKIE policy: Cookies.Check).
//     It may end at once (FamilyDone) after answering NO_PROPOSAL_CHOSEN or
//     INVALID_KE_PAYLOAD: those answers keep no state (RFC 7296 §1.2).
//
// What the shell does with each effect:
//
//   - SendDatagram: send Data from Local to Remote (the socket adds the non-ESP marker on
//     the NAT-T port). Retransmissions are the same bytes, emitted again by the core.
//   - ArmTimer: one timer per family; when it fires, Step(TimerFired{Gen}). Stale
//     generations are ignored, so cancelling is optional.
//   - Work: run Run() anywhere (a worker pool), then Step(WorkDone{Token, result}).
//     Until then the family keeps working: other events are fine, results may come
//     back in any order, and a family that ended never needs them. The simulator's
//     campaign runs Work inline, after random virtual delays, or held back and
//     released in random order (-sim.work), and TestRekeyCollisionInterleavings
//     explores every order of results and datagrams of simultaneous rekeys.
//   - InstallChild: install both ESP SAs (and the policies unless SA.Replaces names the
//     Child SA it replaces), then Step(ChildInstalled) or Step(ChildInstallFailed). The
//     responder answers the peer only after this report.
//   - RemoveChild: remove the Child SA's kernel state, or release the SPI that
//     Env.AllocSPI reserved for a Child SA that never got installed. Idempotent.
//   - RouteSPI / UnrouteSPI: datagrams whose Peek LocalSPI is SPI go to this family.
//   - Established, IKEClosed, ChildUp, ChildDown, ChildFailed, ExchangeDone, Dropped,
//     NotifySeen, Retransmitted, Log: notifications for listings, metrics and logs;
//     they carry no key material.
//   - InitialContact: the peer's authenticated IKE_AUTH carried INITIAL_CONTACT (RFC
//     7296 §2.4): end every other family with the same two identities (the effect's
//     doc says which, and how).
//   - FamilyDone: stop; remove every Child SA still installed; drop the SPI routes.
//
// And the events the shell feeds in besides packets and timers: ChildExpired (kernel
// soft/hard lifetime; the core also keeps its own time-based lifetimes, so duplicates
// are harmless), ChildDied (the child actor panicked or was killed), NotFirstContact
// (another family of the connection came up: no INITIAL_CONTACT from this one), and
// the operator's commands RekeyChild, RekeyIKE, DeleteChild, Terminate.
//
// INITIAL_CONTACT as initiator: the first IKE_AUTH carries it unless
// Options.NoInitialContact (set it when the shell holds another family for the same
// connection and peer) or NotFirstContact arrived before IKE_AUTH was sent.
//
// Reload: Connection.Equal compares two definitions after WithDefaults, PSKFor left
// out (a function is never deeply equal): an unchanged definition keeps its families.
//
// Rekey priority (RFC 7296 §2.25.2): an IKE SA rekey goes before new Child SA
// exchanges on both ends. A queued IKE SA rekey starts first; no Child SA is created
// or rekeyed while we answer the peer's IKE SA rekey, shortly after we refused it
// TEMPORARY_FAILURE, or while ours waits to retry after TEMPORARY_FAILURE; and an IKE
// SA whose successor is all but made is not expired before it is (timers.go).
//
// Memory: an idle family keeps no key material but SK_d and its SK ciphers; the
// families may share one Connection (pass one that came from WithDefaults).
//
// # Failure containment
//
// cygnet's DESIGN.md "Failure rules" are implemented here, and each row is a script in
// actors/sim/testdata (ft*.txt): a Child SA that cannot be created, installed or
// rekeyed ends only that Child SA (the three outcomes of CREATE_CHILD_SA are kept
// apart: success; exchange fine but Child SA failed; exchange failed); an IKE-fatal
// event (authenticated INVALID_SYNTAX, AUTHENTICATION_FAILED or
// UNSUPPORTED_CRITICAL_PAYLOAD in a response, retransmissions exhausted, a hard IKE
// lifetime) ends the family; junk (failed integrity, unknown SPI, message ID outside the
// window, unauthenticated error notify) changes nothing and is counted (Dropped).
//
// # Files
//
// One file per exchange (exchange_init.go, exchange_auth.go, exchange_child.go,
// exchange_ikerekey.go, exchange_info.go), the message-ID windows and retransmissions
// (ikesa.go), Child SAs and traffic selectors (child.go), the local request queue
// (tasks.go), every timer (timers.go), the wire mapping (codec.go, message.go),
// configuration (config.go), and the manager's helpers Peek and Cookies.
package ike
