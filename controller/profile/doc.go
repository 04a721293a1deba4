// Package profile reconciles VirtualMachineProfiles into their children —
// network attachments, shared host-network policies, disks, cloud-init and the
// KubeVirt VM — and writes the profile's status once per reconcile, only when
// it changed. Reconcile reads like a table of contents: each step is a small
// method that records a check in status.Observed. The work of the steps
// lives by concern elsewhere: disks in volumes, ownership rules in owner,
// placement decisions and reads in placement, the status rules in status,
// node-change wakes in nodewake.
package profile
