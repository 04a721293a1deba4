package chart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/apply"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// Messages of the chart's controller-owned-objects policy.
const (
	notLabelled  = "labelled app.kubernetes.io/managed-by: vmop-controller"
	storedNotOur = "whose stored object is labelled app.kubernetes.io/managed-by: vmop-controller"
)

// controllerOwnObjects acts as the controller's service account, with the
// chart's roles and policies installed, against objects of tenant: it
// reads no Secret, touches nothing it did not label as its own, writes no
// VM that mounts more than its own storage, and still makes every object
// it makes in a reconcile (the builders' own output, by the applier the
// controller uses).
func controllerOwnObjects(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, controller client.Client) {
	waitUntilOwnedObjectsPolicyInEffect(ctx, t, controller)
	profile, hostNetwork := ownersOfTheControllersObjects(ctx, t, cp)

	t.Run("reads no Secret", func(t *testing.T) {
		token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "admin-token", Namespace: "kube-system"}, StringData: map[string]string{"token": "x"}}
		if err := cp.Client.Create(ctx, token); err != nil {
			t.Fatal(err)
		}
		denied(t, "get a Secret in kube-system", controller.Get(ctx, client.ObjectKeyFromObject(token), &corev1.Secret{}), "forbidden")
		denied(t, "list Secrets in every namespace", controller.List(ctx, &corev1.SecretList{}), "forbidden")
		denied(t, "list Secrets in tenant", controller.List(ctx, &corev1.SecretList{}, client.InNamespace("tenant")), "forbidden")
	})

	t.Run("leaves others' objects alone", func(t *testing.T) {
		for _, obj := range foreignObjects() {
			kind := fmt.Sprintf("%T", obj)
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatalf("create foreign %s: %v", kind, err)
			}
			denied(t, "delete an unlabelled "+kind, controller.Delete(ctx, obj), deleteRefusal(obj))
			denied(t, "label an unlabelled "+kind+" as its own", labelAsOurs(ctx, controller, obj), storedNotOur)
		}
	})

	t.Run("creates nothing unlabelled", func(t *testing.T) {
		for _, obj := range foreignObjects() {
			obj.SetName(obj.GetName() + "-by-controller")
			denied(t, fmt.Sprintf("create an unlabelled %T", obj), controller.Create(ctx, obj), notLabelled)
		}
		policy := ownObjects(t, profile, hostNetwork)[5]
		policy.SetName("not-ours")
		policy.SetLabels(nil)
		denied(t, "create an unlabelled NodeNetworkConfigurationPolicy", controller.Create(ctx, policy), notLabelled)
	})

	t.Run("writes no VM that reaches past its storage", func(t *testing.T) {
		for name, volume := range map[string]kubevirtv1.VolumeSource{
			"serviceAccount":  {ServiceAccount: &kubevirtv1.ServiceAccountVolumeSource{ServiceAccountName: "default"}},
			"hostDisk":        {HostDisk: &kubevirtv1.HostDisk{Path: "/var/lib/kubelet/x.img", Type: kubevirtv1.HostDiskExistsOrCreate, Capacity: resource.MustParse("1Gi")}},
			"secret":          {Secret: &kubevirtv1.SecretVolumeSource{SecretName: "db-password"}},
			"configMap":       {ConfigMap: &kubevirtv1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
			"downwardMetrics": {DownwardMetrics: &kubevirtv1.DownwardMetricsVolumeSource{}},
		} {
			vm := profileVM(t, profile)
			vm.Spec.Template.Spec.Volumes = append(vm.Spec.Template.Spec.Volumes, kubevirtv1.Volume{Name: "extra", VolumeSource: volume})
			_, err := apply.Applier{Client: controller}.Apply(ctx, nil, vm)
			denied(t, "a VM with a "+name+" volume", err, "may only use containerDisk, dataVolume, persistentVolumeClaim and cloudInitNoCloud volumes")
		}
		vm := profileVM(t, profile)
		last := &vm.Spec.Template.Spec.Volumes[len(vm.Spec.Template.Spec.Volumes)-1]
		last.CloudInitNoCloud = &kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: &corev1.LocalObjectReference{Name: "db-password"}}
		_, err := apply.Applier{Client: controller}.Apply(ctx, nil, vm)
		denied(t, "a VM taking cloud-init from another Secret", err, "cloud-init only inline or from a <profile>-cloudinit Secret")
	})

	t.Run("deletes only its profiles' VM instances", func(t *testing.T) {
		// It deletes the instance of a VM whose node is lost, so that
		// KubeVirt restarts the VM elsewhere: the instance carries the
		// profile label of its VM's template.
		for name, labels := range map[string]map[string]string{
			"of-profile": {vmv1alpha1.LabelProfile: profile.Name},
			"foreign":    {"app.kubernetes.io/managed-by": "someone-else"},
		} {
			vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tenant", Labels: labels}}
			if err := cp.Client.Create(ctx, vmi); err != nil {
				t.Fatalf("create VirtualMachineInstance %s: %v", name, err)
			}
		}
		allowed(t, "delete its profile's instance", controller.Delete(ctx, &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: "of-profile", Namespace: "tenant"}}))
		denied(t, "delete someone else's instance", controller.Delete(ctx, &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "tenant"}}), storedNotOur)
	})

	t.Run("makes and changes its own objects, deletes only some", func(t *testing.T) {
		applier := apply.Applier{Client: controller}
		for _, obj := range ownObjects(t, profile, hostNetwork) {
			what := fmt.Sprintf("%T %s", obj, obj.GetName())
			if _, err := applier.Apply(ctx, nil, obj); err != nil {
				t.Errorf("create %s: %v", what, err)
				continue
			}
			annotations := obj.GetAnnotations()
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations["vm.example.com/test"] = "changed"
			obj.SetAnnotations(annotations)
			allowed(t, "update "+what, firstErr(applier.Apply(ctx, nil, obj)))
			if deletes(obj) {
				allowed(t, "delete "+what, controller.Delete(ctx, obj))
			} else {
				denied(t, "delete "+what, controller.Delete(ctx, obj), noDeleteVerb)
			}
		}
	})
}

// noDeleteVerb is how RBAC refuses a delete the controller's role lacks.
const noDeleteVerb = "cannot delete resource"

// deletes says whether the controller's role may delete objects of obj's
// kind: DataVolumes (a retained disk's, once imported), attachments (of a
// network removed from a profile) and nmstate policies (a HostNetwork's
// old ones). Claims, VMs and Secrets it never deletes: a deleted profile's
// go with the garbage collector, or stay after an orphan deletion.
func deletes(obj client.Object) bool {
	switch obj.(type) {
	case *corev1.PersistentVolumeClaim, *kubevirtv1.VirtualMachine, *corev1.Secret:
		return false
	}
	return true
}

// deleteRefusal is what refuses the controller's delete of someone else's
// object: RBAC for the kinds it never deletes, else the owned-objects policy.
func deleteRefusal(obj client.Object) string {
	if deletes(obj) {
		return storedNotOur
	}
	return noDeleteVerb
}

// waitUntilOwnedObjectsPolicyInEffect waits until the apiserver loaded the
// controller-owned-objects policy: a dry-run create of an unlabelled claim
// is refused.
func waitUntilOwnedObjectsPolicyInEffect(ctx context.Context, t *testing.T, controller client.Client) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, "controller-owned-objects policy in effect", func() (bool, string) {
		claim := foreignObjects()[0]
		err := controller.Create(ctx, claim, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), notLabelled), fmt.Sprintf("dry-run create of an unlabelled claim: %v", err)
	})
}

// ownersOfTheControllersObjects creates, as the admin, the profile and the
// HostNetwork the controller's objects are owned by (so the garbage
// collector leaves them be).
func ownersOfTheControllersObjects(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane) (*vmv1alpha1.VirtualMachineProfile, *vmv1alpha1.HostNetwork) {
	t.Helper()
	profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "tenant"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", OSImage: "registry.local/os:1",
			Networks: []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge}},
			Disks:    []vmv1alpha1.DiskConfig{{Name: "system", Size: "1Gi", Boot: true}, {Name: "data", Size: "1Gi"}}}}
	hostNetwork := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lan"},
		Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lan", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"100"}, Untagged: vmv1alpha1.UntaggedAllowed,
			NamespaceSelector: metav1.LabelSelector{}}}
	for _, obj := range []client.Object{profile, hostNetwork} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
	return profile, hostNetwork
}

// foreignObjects are objects of every kind the controller writes, not
// labelled as its own: what a tenant or another operator made.
func foreignObjects() []client.Object {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "tenant", Labels: map[string]string{"app.kubernetes.io/managed-by": "someone-else"}}
	}
	size := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	return []client.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("foreign"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, Resources: corev1.VolumeResourceRequirements{Requests: size}}},
		&cdiv1.DataVolume{ObjectMeta: meta("foreign"), Spec: cdiv1.DataVolumeSpec{
			Source:  &cdiv1.DataVolumeSource{Blank: &cdiv1.DataVolumeBlankImage{}},
			Storage: &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{Requests: size}}}},
		&kubevirtv1.VirtualMachine{ObjectMeta: meta("foreign"), Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyHalted), Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{}}},
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: meta("foreign"), Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge"}`}},
		&corev1.Secret{ObjectMeta: meta("foreign-cloudinit"), StringData: map[string]string{"password": "x"}},
	}
}

// ownObjects are what the controller writes for profile and hostNetwork,
// from its own builders: claim, DataVolume, VM, attachment, the cloud-init
// Secret of a profile whose data does not fit inline, and an nmstate policy.
func ownObjects(t *testing.T, profile *vmv1alpha1.VirtualMachineProfile, hostNetwork *vmv1alpha1.HostNetwork) []client.Object {
	t.Helper()
	size := resource.MustParse("1Gi")
	system, data := &profile.Spec.Disks[0], &profile.Spec.Disks[1]
	dv := desired.DataVolume(profile, system, profile.Spec.DiskImage(system), size)
	dv.TypeMeta = metav1.TypeMeta{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume"}
	claim := desired.PVC(profile, data, size)
	claim.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}
	network := &profile.Spec.Networks[0]
	nad, err := desired.NAD(profile, desired.Attachment{Network: network, Declared: hostNetwork, Type: vmv1alpha1.NetworkTypeBridge,
		Bridge: "br-lan", NAD: types.NamespacedName{Namespace: profile.Namespace, Name: desired.NADName(profile.Name, network.Name)}})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := desired.CloudInitSecret(profile)
	if err != nil {
		t.Fatal(err)
	}
	state, err := desired.HostNetworkState(hostNetwork, &hostNetwork.Spec.Uplinks[0])
	if err != nil {
		t.Fatal(err)
	}
	policy := desired.HostNetworkPolicy(hostNetwork, &hostNetwork.Spec.Uplinks[0], state)
	return []client.Object{claim, dv, profileVM(t, profile), nad, secret, policy}
}

func profileVM(t *testing.T, profile *vmv1alpha1.VirtualMachineProfile) *kubevirtv1.VirtualMachine {
	t.Helper()
	vm, err := desired.VM(profile, desired.Placement{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// labelAsOurs merge-patches obj to carry the controller's label.
func labelAsOurs(ctx context.Context, c client.Client, obj client.Object) error {
	patch := []byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"vmop-controller"}}}`)
	return c.Patch(ctx, obj.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, patch))
}

func firstErr(_ bool, err error) error { return err }
