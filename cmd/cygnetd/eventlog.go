package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// eventLogBuffer is the event subscription's queue; a burst beyond it (tens of
// thousands of Child SAs at once) loses log lines, never SAs.
const eventLogBuffer = 8192

// logEvents writes one line per SA event of the actor tree until ctx ends: Child SAs
// up, failed (with the notify or cause, and that the IKE SA is kept: the failure rule
// of DESIGN.md), down, and IKE SAs going down. An operator reads what happened to an
// SA the way strongSwan's log tells it ("failed to establish CHILD_SA, keeping
// IKE_SA").
func (d *daemon) logEvents(ctx context.Context, log *zap.Logger) {
	sub := d.m.Subscribe(eventLogBuffer)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			logEvent(log, ev)
		}
	}
}

func logEvent(log *zap.Logger, ev actors.Event) {
	fields := []zap.Field{zap.String("conn", ev.Conn), zap.Uint64("family", uint64(ev.Family))}
	switch ev.Kind {
	case actors.EventChildUp:
		log.Info("Child SA established", append(fields, childFields(ev.Child)...)...)
	case actors.EventChildFailed:
		msg := "Child SA failed; the IKE SA is kept"
		if ev.Reason == telemetry.ReasonKernel {
			msg = "Child SA failed: the kernel refused to install it; the IKE SA is kept"
		}
		log.Warn(msg, append(fields, zap.String("child", ev.Child.Name), zap.String("reason", ev.Reason))...)
	case actors.EventChildDown:
		log.Info("Child SA deleted", append(fields, zap.String("child", ev.Child.Name), zap.String("reason", ev.Reason))...)
	case actors.EventIKEDown:
		log.Info("IKE SA deleted", append(fields, zap.String("spi_i", ev.IKE.SPIi.String()),
			zap.String("spi_r", ev.IKE.SPIr.String()), zap.String("reason", ev.Reason))...)
	}
}

func childFields(c ike.ChildInfo) []zap.Field {
	return []zap.Field{zap.String("child", c.Name), zap.String("spi_in", spi32(c.SPIIn)), zap.String("spi_out", spi32(c.SPIOut)),
		zap.Strings("local_ts", tsStrings(c.LocalTS)), zap.Strings("remote_ts", tsStrings(c.RemoteTS)),
		zap.String("proposal", espProposal(c.Suite)), zap.Bool("encap", c.Encap)}
}

func spi32(s uint32) string { return fmt.Sprintf("%08x", s) }
