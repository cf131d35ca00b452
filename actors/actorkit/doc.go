// Package actorkit holds the protoactor-go pieces that every cygnet actor is built on, and
// that fix the library's traps listed in shared/notes/protoactor.md:
//
//   - Supervision is stop-only. [StopOnly] is the strategy for every props that has
//     children, and [Props] also installs it as the guardian of actors spawned from the
//     root, so nothing is ever restarted with a blank state (DESIGN.md, "The actor tree").
//   - [Middleware] recovers panics raised while handling lifecycle messages (Stopping,
//     Stopped, Restarting, Terminated), logs and counts them, so that a panic cannot wedge
//     a stop or swallow the Terminated a parent waits for. A panic in an ordinary message
//     is left to the supervisor: the actor stops, which is the failure rule.
//   - [Guard] is the stopping guard: once an actor has seen Stopping, the middleware
//     refuses (and counts) every new user message except the ones marked
//     [AfterStopping], so no work started in the stop window can leave orphans.
//   - [Timer] is a generation-tagged timer: a tick that was cancelled or superseded is
//     recognised as stale, and [Guard] stops the actor's timer on Stopping.
//   - [LoggerFactory] routes protoactor's slog output to a caller's *zap.Logger, and
//     [NewSystem] builds an actor system with it and without OpenTelemetry metrics.
//
// Nothing here knows about IKE; the family, child, manager and socket shells in the
// sibling packages use it.
package actorkit
