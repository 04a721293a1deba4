// Package probe reads what a node can offer VMs straight from the kernel:
// KVM through its misc device and module parameters in sysfs (no device
// unit needed), links (bridges, VLANs, bonds,
// OVS datapaths, uplinks, and whether a link's peer is in another
// namespace, as a pod's veth's is) and bridge port VLANs through netlink in
// a given network namespace, and SR-IOV physical functions through sysfs.
// Each probe is a small interface built from its inputs (paths, a
// LinkSource), so tests point it at a throwaway namespace, a doctored
// netlink dump or a sysfs tree they wrote, and nothing is global. A probe
// fails as a whole only when it cannot read at all; an entry it cannot read
// (one link, one PF) is skipped and named, so it never hides the others.
package probe
