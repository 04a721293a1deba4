// Package watch turns kernel events into probe rounds. It subscribes to
// netlink link and address events in the probed namespace, coalesces bursts
// (a flapping link costs at most one round per minimum interval), runs a
// jittered full resync as a safety net, and re-subscribes with backoff when
// a subscription fails or closes, counting every restart.
package watch
