// Package liveness tells a wedged loop from a slow one, for /healthz. Each
// long-running loop of the agent (probe rounds, Lease renewal) reports when
// an iteration begins and ends; a loop is wedged when one iteration runs
// longer than its bound, or when no iteration starts within its bound after
// the last one ended. The clock and the bounds are passed in, so tests need
// no sleeping.
package liveness
