package main

import (
	"sync/atomic"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// counting is the Recorder the actor tree gets: every call goes to the Prometheus
// Recorder, and the few totals that the control API's stats answer shows are also
// counted here, with one atomic add each (the metrics package keeps no readable totals).
type counting struct {
	telemetry.Recorder
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

func (c *counting) ChildFailed(conn, reason string) {
	c.childFailures.Add(1)
	c.Recorder.ChildFailed(conn, reason)
}
