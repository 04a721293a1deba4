// Package metrics will hold the metric definitions shared by vmop-controller
// and vmop-agent, and the dashboards and alerts built on them. Nothing is
// implemented yet (issues #3 and #4).
package metrics
