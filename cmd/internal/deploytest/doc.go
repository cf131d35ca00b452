// Package deploytest holds the tests of deploy/: the systemd unit (systemd-analyze),
// the Prometheus configuration and alert rules (promtool check and promtool test rules),
// the Grafana dashboard and the rules against the metrics cygnetd really exports, and
// the example configurations against the configuration loader. It has no code of its
// own; it lives under cmd/internal so that it may import cygnetd's internal packages.
package deploytest
