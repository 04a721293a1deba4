// Package vlantraffic counts a node's traffic per VLAN with small eBPF
// programs on its uplinks and bridge ports: packets and bytes in each
// direction, and frames received with a VLAN the port does not carry (the
// bridge or the kernel drops those: the usual symptom of a mis-trunked
// switch port). Netlink's link statistics cannot split traffic by VLAN.
//
// The programs are written with cilium/ebpf's assembler, so building them
// needs no C toolchain. They attach with tcx (Linux 6.6 and later) or, on
// older kernels, as direct-action cls_bpf filters on a clsact qdisc. Each
// port has two fixed-size array maps indexed by VLAN ID (4,096 entries), so
// memory does not grow with traffic; the exported series are the VLANs in
// use on the node plus "untagged" and an "other" bucket. Memory grows with
// ports instead (PortCost, 224 KiB each), so Plan leaves SR-IOV VFs out and
// Limit caps the ports counted; the agent reports a cut in its condition
// and metrics.
//
// Without BPF support or the capabilities to load programs, New fails and
// the agent runs on with Disabled, which says why in a condition and a metric.
package vlantraffic
