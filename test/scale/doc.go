// Package scale drives a real vmop-controller process at scale against the
// test control plane and the simulator: the benchmark behind `make bench`
// (command test/scale/bench) and the fault tests of this package share it.
//
// The controller runs as its own process, as in production, so its memory
// can be read from /proc and it can be SIGKILLed. It talks to the apiserver
// through Proxy, which counts its writes by verb and resource and can answer
// a share of them with 429 or 500, and which impersonates the controller's
// service account, so the generated RBAC role is what it runs under.
package scale
