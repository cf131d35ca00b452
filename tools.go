//go:build tools

// Package cygnet pins the modules the project builds on before code imports them.
package cygnet

import (
	_ "github.com/asynkron/protoactor-go/actor"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/strongswan/govici/vici"
	_ "github.com/vishvananda/netlink"
	_ "go.uber.org/goleak"
	_ "go.uber.org/zap"
	_ "go.uber.org/zap/exp/zapslog"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/sys/unix"
	_ "pgregory.net/rapid"
)
