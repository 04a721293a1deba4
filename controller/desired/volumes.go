package desired

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

const dockerScheme = "docker://"

// RegistryURL is an image reference as CDI's registry source wants it: with
// the docker:// scheme.
func RegistryURL(image string) string {
	if strings.HasPrefix(image, dockerScheme) {
		return image
	}
	return dockerScheme + image
}

// ContainerDiskImage is an image reference as KubeVirt's containerDisk wants
// it: without a scheme.
func ContainerDiskImage(image string) string {
	return strings.TrimPrefix(image, dockerScheme)
}

// VolumeLabels are the labels of a disk's volume: the profile's, the disk
// name, so a re-created profile can find what it retained, and the retain
// policy, which says whether the volume is owned by the profile.
func VolumeLabels(profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig) map[string]string {
	labels := OwnedLabels(profile)
	labels[vmv1alpha1.LabelDisk] = disk.Name
	labels[vmv1alpha1.LabelRetainPolicy] = string(disk.EffectiveRetainPolicy())
	return labels
}

// VolumeOwnerReferences are the owner references a disk's volume should
// carry. A Retain disk has none, as StatefulSet's retained claims: no path
// through the garbage collector (foreground or background deletion, a
// stripped finalizer, a pruning tool) can reach it. A Delete disk is owned
// by the profile and goes with it. Never by the VM: deleting the VM must not
// take data with it.
func VolumeOwnerReferences(profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig) []metav1.OwnerReference {
	if disk.EffectiveRetainPolicy() == vmv1alpha1.RetainPolicyRetain {
		return nil
	}
	return []metav1.OwnerReference{OwnerReference(profile)}
}

// volumeMeta is a new volume's metadata. It records the size asked for:
// CDI copies a DataVolume's annotations to the claim it makes, whose
// request it inflates by the filesystem overhead.
func volumeMeta(profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig, size resource.Quantity) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      vmv1alpha1.VolumeName(profile.Name, disk.Name),
		Namespace: profile.Namespace,
		Labels:    VolumeLabels(profile, disk),
		Annotations: map[string]string{
			vmv1alpha1.AnnotationProfileUID: string(profile.UID),
			vmv1alpha1.AnnotationDiskSize:   size.String(),
		},
		OwnerReferences: VolumeOwnerReferences(profile, disk),
	}
}

func storageClass(disk *vmv1alpha1.DiskConfig) *string {
	if disk.StorageClassName == "" {
		return nil // the cluster's default class
	}
	name := disk.StorageClassName
	return &name
}

// PVC is the claim of a blank disk.
func PVC(profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig, size resource.Quantity) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: volumeMeta(profile, disk, size),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			StorageClassName: storageClass(disk),
		},
	}
}

// DataVolume imports image into a disk through CDI. CDI creates the claim,
// named like the DataVolume.
func DataVolume(profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig, image string, size resource.Quantity) *cdiv1.DataVolume {
	url := RegistryURL(image)
	return &cdiv1.DataVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume"},
		ObjectMeta: volumeMeta(profile, disk, size),
		Spec: cdiv1.DataVolumeSpec{
			Source: &cdiv1.DataVolumeSource{Registry: &cdiv1.DataVolumeSourceRegistry{URL: &url}},
			Storage: &cdiv1.StorageSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
				StorageClassName: storageClass(disk),
			},
		},
	}
}
