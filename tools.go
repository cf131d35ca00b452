//go:build tools

// Package cygnet pins the modules the project builds on before code imports them.
package cygnet
import (
 _ "github.com/asynkron/protoactor-go/actor"
 _ "golang.org/x/crypto/chacha20poly1305"
 _ "github.com/vishvananda/netlink"
 _ "go.uber.org/zap"
 _ "go.uber.org/zap/exp/zapslog"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "go.yaml.in/yaml/v3"
 _ "github.com/google/go-cmp/cmp"
 _ "go.uber.org/goleak"
 _ "pgregory.net/rapid"
 _ "github.com/strongswan/govici/vici"
 _ "golang.org/x/sys/unix"
)
