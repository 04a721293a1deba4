// Package profile reconciles VirtualMachineProfiles into their children —
// network attachments, disks, cloud-init and the KubeVirt VM — and places
// the VM on a node that offers what it needs. Host networks and their
// nmstate policies are the hostnetwork controller's: a profile only
// resolves its networks against them (attach). Reconcile runs its steps in
// order, each a small method that records what it found in a
// status.Observed, and writes the profile's status once per reconcile,
// only when it changed. The work of the steps lives by concern elsewhere:
// disks in volumes, ownership rules in owner, placement decisions and
// reads in placement, the status rules in status, node-change wakes in
// nodewake, who holds a static address or MAC in identity, halting and
// restoring a revoked VM in revoke.
package profile
