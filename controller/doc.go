// Package controller will hold the VirtualMachineProfile reconciler: pure
// builders for NADs, NNCPs, DataVolumes, PVCs, cloud-init and the KubeVirt VM,
// placement from NodeCapabilities, and status. Nothing is implemented yet (issue #3).
package controller
