// Package probe reads what a node can offer VMs straight from the kernel:
// KVM through /dev/kvm and module parameters, links (bridges, VLANs, bonds,
// OVS datapaths, uplinks) through netlink in a given network namespace, and
// SR-IOV physical functions through sysfs. Each probe is a small interface
// built from its inputs (paths, a netlink handle), so tests point it at a
// throwaway namespace or a sysfs tree they wrote, and nothing is global.
package probe
