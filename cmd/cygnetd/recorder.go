package main

import (
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// counting is the Recorder the actor tree gets: every call goes to the Prometheus
// Recorder, and the few totals that the control API's stats answer shows are also
// counted here, with one atomic add each (the metrics package keeps no readable totals).
//
// Notifies (RFC 7296 §3.10) are also logged at debug level: the log then names
// the INVALID_KE_PAYLOAD, COOKIE or TS_UNACCEPTABLE an exchange went through.
type counting struct {
	telemetry.Recorder
	log           *zap.Logger
	retransmits   atomic.Uint64
	dropped       atomic.Uint64
	childFailures atomic.Uint64
}

var _ telemetry.Recorder = (*counting)(nil)

func (c *counting) Retransmitted(e telemetry.Exchange) {
	c.retransmits.Add(1)
	c.Recorder.Retransmitted(e)
}

func (c *counting) PacketDropped(r telemetry.DropReason) {
	c.dropped.Add(1)
	c.Recorder.PacketDropped(r)
}

func (c *counting) NotifySent(n string) {
	if ce := c.log.Check(zap.DebugLevel, "notify sent"); ce != nil {
		ce.Write(zap.String("notify", n))
	}
	c.Recorder.NotifySent(n)
}

func (c *counting) NotifyReceived(n string) {
	if ce := c.log.Check(zap.DebugLevel, "notify received"); ce != nil {
		ce.Write(zap.String("notify", n))
	}
	c.Recorder.NotifyReceived(n)
}

func (c *counting) ChildFailed(conn, reason string) {
	c.childFailures.Add(1)
	c.Recorder.ChildFailed(conn, reason)
}
