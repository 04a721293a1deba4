package desired

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Names of the VM volumes the operator adds next to the user's disks. The
// CRD refuses disk names starting with "vmop-", which keeps them apart
// (FuzzAdmittedProfilesBuild found a disk named vmop-cloudinit admitted).
const (
	CloudInitVolume     = "vmop-cloudinit"
	ContainerDiskVolume = "vmop-containerdisk"
)

// VolumeKinds are the only volume sources the VMs the controller writes
// use: its own storage and the cloud-init it writes. No ServiceAccount,
// Secret, ConfigMap, host disk or other volume reaching past the VM's
// storage; the chart's vmop-controller-owned-objects admission policy
// refuses any other, and CheckVolumeKinds is the builders' side.
var VolumeKinds = []string{"containerDisk", "dataVolume", "persistentVolumeClaim", "cloudInitNoCloud"}

// CheckVolumeKinds says which volume of vm, if any, uses a source outside
// VolumeKinds (or a cloud-init Secret not named <profile>-cloudinit).
func CheckVolumeKinds(vm *kubevirtv1.VirtualMachine) error {
	if vm.Spec.Template == nil {
		return nil
	}
	for _, volume := range vm.Spec.Template.Spec.Volumes {
		raw, err := json.Marshal(volume.VolumeSource)
		if err != nil {
			return fmt.Errorf("VM %s volume %s: %w", vm.Name, volume.Name, err)
		}
		var sources map[string]json.RawMessage
		if err := json.Unmarshal(raw, &sources); err != nil {
			return fmt.Errorf("VM %s volume %s: %w", vm.Name, volume.Name, err)
		}
		for kind := range sources {
			if !slices.Contains(VolumeKinds, kind) {
				return fmt.Errorf("VM %s volume %s is a %s volume, not one of %v", vm.Name, volume.Name, kind, VolumeKinds)
			}
		}
		if source := volume.CloudInitNoCloud; source != nil {
			for _, ref := range []*corev1.LocalObjectReference{source.UserDataSecretRef, source.NetworkDataSecretRef} {
				if ref != nil && !strings.HasSuffix(ref.Name, "-cloudinit") {
					return fmt.Errorf("VM %s takes cloud-init from Secret %s, not a <profile>-cloudinit one", vm.Name, ref.Name)
				}
			}
		}
	}
	return nil
}

// Placement is what node placement adds to a VM: node labels the node must
// carry (computed from node capabilities). Empty adds nothing.
type Placement struct {
	RequiredNodeLabels map[string]string
}

// NADReference is how the VM refers to a network's attachment: the user's
// nadName (possibly namespace/name) or the one the operator creates.
func NADReference(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) string {
	if network.NADName != "" {
		return network.NADName
	}
	return NADName(profile.Name, network.Name)
}

// NADKey resolves a network's attachment ("name" or "namespace/name")
// against the profile's namespace.
func NADKey(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) types.NamespacedName {
	ref := NADReference(profile, network)
	if namespace, name, ok := strings.Cut(ref, "/"); ok {
		return types.NamespacedName{Namespace: namespace, Name: name}
	}
	return types.NamespacedName{Namespace: profile.Namespace, Name: ref}
}

// KeptRunStrategy is the run strategy of an existing VM to keep instead of
// the profile's, or nil. virtctl stop, start and restart change a VM's
// runStrategy through KubeVirt's subresources; that choice stands until the
// profile's own run strategy changes, and then the profile wins.
func KeptRunStrategy(profile *vmv1alpha1.VirtualMachineProfile, existing *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineRunStrategy {
	if existing == nil || existing.Spec.RunStrategy == nil ||
		existing.Annotations[vmv1alpha1.AnnotationRunStrategy] != string(profile.Spec.EffectiveRunStrategy()) {
		return nil
	}
	kept := *existing.Spec.RunStrategy
	return &kept
}

// VM is the KubeVirt VirtualMachine of a profile. keptRunStrategy, when not
// nil, replaces the profile's (see KeptRunStrategy).
func VM(profile *vmv1alpha1.VirtualMachineProfile, placement Placement, keptRunStrategy *kubevirtv1.VirtualMachineRunStrategy) (*kubevirtv1.VirtualMachine, error) {
	memory, err := resource.ParseQuantity(profile.Spec.Memory)
	if err != nil {
		return nil, fmt.Errorf("spec.memory %q: %w", profile.Spec.Memory, err)
	}
	runStrategy := kubevirtv1.VirtualMachineRunStrategy(profile.Spec.EffectiveRunStrategy())
	if keptRunStrategy != nil {
		runStrategy = *keptRunStrategy
	}
	templateLabels := map[string]string{vmv1alpha1.LabelProfile: profile.Name}
	if spread(profile) {
		templateLabels[vmv1alpha1.LabelSpread] = "true"
	}
	disks, volumes := vmDisks(profile)
	cloudInit, cloudInitAnnotations, err := cloudInitVolume(profile)
	if err != nil {
		return nil, err
	}
	disks = append(disks, kubevirtv1.Disk{Name: CloudInitVolume, DiskDevice: virtioDisk()})
	volumes = append(volumes, cloudInit)
	annotations := map[string]string{vmv1alpha1.AnnotationRunStrategy: string(profile.Spec.EffectiveRunStrategy())}
	for k, v := range cloudInitAnnotations {
		annotations[k] = v
	}
	return &kubevirtv1.VirtualMachine{
		TypeMeta: metav1.TypeMeta{APIVersion: kubevirtv1.SchemeGroupVersion.String(), Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            vmv1alpha1.VMName(profile.Name),
			Namespace:       profile.Namespace,
			Labels:          OwnedLabels(profile),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{OwnerReference(profile)},
		},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: &runStrategy,
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: templateLabels},
				Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{
						CPU:     &kubevirtv1.CPU{Cores: uint32(profile.Spec.CPU)},
						Memory:  &kubevirtv1.Memory{Guest: &memory},
						Devices: kubevirtv1.Devices{Disks: disks, Interfaces: vmInterfaces(profile)},
					},
					Networks:          vmNetworks(profile),
					Volumes:           volumes,
					NodeSelector:      nodeSelector(profile),
					Affinity:          affinity(profile, placement),
					AccessCredentials: accessCredentials(profile),
				},
			},
		},
	}, nil
}

func spread(profile *vmv1alpha1.VirtualMachineProfile) bool {
	return profile.Spec.HighAvailability != nil && profile.Spec.HighAvailability.AntiAffinity
}

func vmInterfaces(profile *vmv1alpha1.VirtualMachineProfile) []kubevirtv1.Interface {
	interfaces := make([]kubevirtv1.Interface, 0, len(profile.Spec.Networks))
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		iface := kubevirtv1.Interface{Name: network.Name, MacAddress: MACAddress(profile, network)}
		if network.Type == vmv1alpha1.NetworkTypeSRIOV {
			iface.SRIOV = &kubevirtv1.InterfaceSRIOV{}
		} else {
			// bridge, macvlan and OVS all hand the pod's secondary link to the guest.
			iface.Bridge = &kubevirtv1.InterfaceBridge{}
		}
		interfaces = append(interfaces, iface)
	}
	return interfaces
}

func vmNetworks(profile *vmv1alpha1.VirtualMachineProfile) []kubevirtv1.Network {
	networks := make([]kubevirtv1.Network, 0, len(profile.Spec.Networks))
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		networks = append(networks, kubevirtv1.Network{
			Name:          network.Name,
			NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: NADReference(profile, network)}},
		})
	}
	return networks
}

func virtioDisk() kubevirtv1.DiskDevice {
	return kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}
}

// vmDisks lists the VM's disks and volumes: the boot disk first with boot
// order 1 (a container disk from osImage when there is no boot disk), then
// the other disks. The cloud-init disk comes last (cloudInitVolume).
func vmDisks(profile *vmv1alpha1.VirtualMachineProfile) ([]kubevirtv1.Disk, []kubevirtv1.Volume) {
	var disks []kubevirtv1.Disk
	var volumes []kubevirtv1.Volume
	virtio := virtioDisk()
	bootOrder := uint(1)
	if profile.Spec.BootDisk() == nil && profile.Spec.OSImage != "" {
		disks = append(disks, kubevirtv1.Disk{Name: ContainerDiskVolume, DiskDevice: virtio, BootOrder: &bootOrder})
		volumes = append(volumes, kubevirtv1.Volume{Name: ContainerDiskVolume, VolumeSource: kubevirtv1.VolumeSource{
			ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: ContainerDiskImage(profile.Spec.OSImage)},
		}})
	}
	for _, boot := range []bool{true, false} {
		for i := range profile.Spec.Disks {
			disk := &profile.Spec.Disks[i]
			if disk.Boot != boot {
				continue
			}
			d := kubevirtv1.Disk{Name: disk.Name, DiskDevice: virtio}
			if disk.Boot {
				d.BootOrder = &bootOrder
			}
			disks = append(disks, d)
			volumes = append(volumes, kubevirtv1.Volume{Name: disk.Name, VolumeSource: diskSource(profile, disk)})
		}
	}
	return disks, volumes
}

func diskSource(profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig) kubevirtv1.VolumeSource {
	name := vmv1alpha1.VolumeName(profile.Name, disk.Name)
	if profile.Spec.DiskImage(disk) != "" {
		// A DataVolume source makes KubeVirt wait for the import, and lets
		// WaitForFirstConsumer classes bind when the VM pod is scheduled.
		return kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: name}}
	}
	return kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
		PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: name},
	}}
}

func affinity(profile *vmv1alpha1.VirtualMachineProfile, placement Placement) *corev1.Affinity {
	var result corev1.Affinity
	if len(placement.RequiredNodeLabels) > 0 {
		var term corev1.NodeSelectorTerm
		for _, key := range sortedKeys(placement.RequiredNodeLabels) {
			term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{
				Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{placement.RequiredNodeLabels[key]},
			})
		}
		result.NodeAffinity = &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}},
		}
	}
	if spread(profile) {
		// Every VM of a spreading profile, in any namespace, avoids nodes that
		// already run one.
		result.PodAntiAffinity = &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{vmv1alpha1.LabelSpread: "true"}},
				NamespaceSelector: &metav1.LabelSelector{},
				TopologyKey:       corev1.LabelHostname,
			}},
		}
	}
	if result.NodeAffinity == nil && result.PodAntiAffinity == nil {
		return nil
	}
	return &result
}

func accessCredentials(profile *vmv1alpha1.VirtualMachineProfile) []kubevirtv1.AccessCredential {
	if profile.Spec.SSHKeySecret == "" {
		return nil
	}
	return []kubevirtv1.AccessCredential{{SSHPublicKey: &kubevirtv1.SSHPublicKeyAccessCredential{
		Source: kubevirtv1.SSHPublicKeyAccessCredentialSource{
			Secret: &kubevirtv1.AccessCredentialSecretSource{SecretName: profile.Spec.SSHKeySecret},
		},
		PropagationMethod: kubevirtv1.SSHPublicKeyAccessCredentialPropagationMethod{
			NoCloud: &kubevirtv1.NoCloudSSHPublicKeyAccessCredentialPropagation{},
		},
	}}}
}

func nodeSelector(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	if profile.Spec.HighAvailability == nil || len(profile.Spec.HighAvailability.NodeSelector) == 0 {
		return nil
	}
	selector := make(map[string]string, len(profile.Spec.HighAvailability.NodeSelector))
	for k, v := range profile.Spec.HighAvailability.NodeSelector {
		selector[k] = string(v)
	}
	return selector
}
