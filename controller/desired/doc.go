// Package desired builds the objects a VirtualMachineProfile should have —
// NetworkAttachmentDefinitions, NodeNetworkConfigurationPolicies, DataVolumes,
// PVCs, the cloud-init Secret and the KubeVirt VirtualMachine — as pure
// functions of the profile and a few looked-up inputs. Nothing here talks to
// the API; the reconciler applies what these functions return.
package desired
