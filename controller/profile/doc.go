// Package profile reconciles VirtualMachineProfiles into their children —
// network attachments, disks, the cloud-init Secret and the KubeVirt VM —
// and places the VM on a node that offers what it needs. Host networks and
// their nmstate policies are the hostnetwork controller's: a profile only
// resolves its networks against them (attach). Reconcile runs a table of
// steps (runSteps), each a small method that records what it found in a
// status.Observed, and writes the profile's status once per reconcile.
package profile
