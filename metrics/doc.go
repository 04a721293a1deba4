// Package metrics holds the alerting rules (alerts.yaml) on the metrics of
// both binaries and their promtool tests; the metrics themselves are
// defined per binary, in controllermetrics (vmop-controller) and
// agentmetrics (vmop-agent).
package metrics
