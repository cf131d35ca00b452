package actorkit

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// LoggerFactory routes protoactor's own slog logging (dead letters, supervision
// events) to log, under the name "protoactor".
func LoggerFactory(log *zap.Logger) func(*actor.ActorSystem) *slog.Logger {
	return func(sys *actor.ActorSystem) *slog.Logger {
		return slog.New(zapslog.NewHandler(log.Named("protoactor").Core())).With("system", sys.ID)
	}
}

// NewSystem returns an actor system that logs through log and keeps protoactor's
// OpenTelemetry metrics off (they cost ~2 µs a message; cygnet counts in [Middleware]).
func NewSystem(log *zap.Logger) *actor.ActorSystem {
	if log == nil {
		log = zap.NewNop()
	}
	return actor.NewActorSystem(
		actor.WithLoggerFactory(LoggerFactory(log)),
		actor.WithMetricProviders(nil),
	)
}
