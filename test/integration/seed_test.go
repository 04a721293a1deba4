package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestSeedFullExample applies the original request's full example verbatim:
// one NAD is created (mgmt uses the existing mgmt-net), two disks (a
// DataVolume and a PVC), and a VM with two interfaces and its cloud-init inline,
// anti-affinity and the node selector; the profile reaches Running.
func TestSeedFullExample(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "mgmt-net", Namespace: ns},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-mgmt","vlan":100}`},
	})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-vm-ssh", Namespace: ns},
		StringData: map[string]string{"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2x4mjvQp9hfKXkqW6Qq8r3dZ4ZtUuK2cH1w2cYyN0c user@example"}})
	create(t, observe.Sample(t, "seed-web-vm-01.yaml", ns))

	profile := waitForPhase(t, ns, "web-vm-01", vmv1alpha1.PhaseRunning)

	var nads nadv1.NetworkAttachmentDefinitionList
	if err := cluster.Client.List(ctx, &nads, client.InNamespace(ns), client.MatchingLabels{vmv1alpha1.LabelProfile: "web-vm-01"}); err != nil {
		t.Fatal(err)
	}
	if len(nads.Items) != 1 || nads.Items[0].Name != "web-vm-01-business" {
		t.Fatalf("want exactly the business NAD created, got %d: %v", len(nads.Items), nads.Items)
	}
	business := nads.Items[0]
	var config map[string]any
	if err := json.Unmarshal([]byte(business.Spec.Config), &config); err != nil {
		t.Fatal(err)
	}
	if config["type"] != "sriov" || config["vlan"] != float64(200) || business.Annotations[vmv1alpha1.AnnotationResourceName] == "" {
		t.Fatalf("business NAD: %s annotations %v", business.Spec.Config, business.Annotations)
	}

	// The system disk is imported by a DataVolume; once the import is done
	// the retained claim stands alone and records where it came from.
	var system corev1.PersistentVolumeClaim
	observe.Eventually(t, 30*time.Second, "system disk imported and detached", func() (bool, string) {
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-vm-01-system"}, &system); err != nil {
			return false, err.Error()
		}
		return system.Annotations[vmv1alpha1.AnnotationImportedFrom] != "", fmt.Sprintf("annotations %v", system.Annotations)
	})
	if url := system.Annotations[vmv1alpha1.AnnotationImportedFrom]; url != "docker://registry.local/centos-stream:8" {
		t.Fatalf("registry URL not normalised: %s", url)
	}
	if getObject(t, &cdiv1.DataVolume{}, ns, "web-vm-01-system") {
		t.Fatal("the retained disk's DataVolume should be gone after the import")
	}
	expectEvent(t, ns, "web-vm-01", vmv1alpha1.EventImportDetached)
	var data corev1.PersistentVolumeClaim
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-vm-01-data"}, &data); err != nil {
		t.Fatalf("data disk PVC: %v", err)
	}
	if *data.Spec.StorageClassName != "huamei-sc-hdd" || data.Spec.Resources.Requests.Storage().String() != "500Gi" {
		t.Fatalf("data PVC spec: %+v", data.Spec)
	}
	var vm kubevirtv1.VirtualMachine
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-vm-01-vm"}, &vm); err != nil {
		t.Fatal(err)
	}
	// The seed's cloud-init fits inline: no Secret is made for it.
	cloudInit := cloudInitOf(t, &vm)
	networkData := cloudInit.NetworkData
	for _, want := range []string{"192.168.100.10/24", "via: 192.168.100.1", "8.8.4.4", "dhcp4: true"} {
		if !strings.Contains(networkData, want) {
			t.Errorf("network data lacks %q:\n%s", want, networkData)
		}
	}
	if strings.Contains(networkData+cloudInit.UserData, "ssh-ed25519") {
		t.Fatal("the SSH key leaked into the cloud-init data")
	}
	if getObject(t, &corev1.Secret{}, ns, "web-vm-01-cloudinit") {
		t.Error("a cloud-init Secret was made for data that fits inline")
	}

	spec := vm.Spec.Template.Spec
	if len(spec.Domain.Devices.Interfaces) != 2 || spec.Domain.Devices.Interfaces[1].SRIOV == nil || spec.Domain.Devices.Interfaces[0].Bridge == nil {
		t.Fatalf("interfaces: %+v", spec.Domain.Devices.Interfaces)
	}
	if spec.Networks[0].Multus.NetworkName != "mgmt-net" || spec.Networks[1].Multus.NetworkName != "web-vm-01-business" {
		t.Fatalf("networks: %+v", spec.Networks)
	}
	if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil || spec.NodeSelector["kubernetes.io/arch"] != "amd64" {
		t.Fatalf("anti-affinity / node selector missing: %+v %v", spec.Affinity, spec.NodeSelector)
	}
	if spec.Domain.CPU.Cores != 4 || spec.Domain.Memory.Guest.String() != "8Gi" || *vm.Spec.RunStrategy != kubevirtv1.RunStrategyAlways {
		t.Fatalf("cpu/memory/runStrategy: %+v %v %v", spec.Domain.CPU, spec.Domain.Memory.Guest, *vm.Spec.RunStrategy)
	}
	if len(spec.AccessCredentials) != 1 || spec.AccessCredentials[0].SSHPublicKey.Source.Secret.SecretName != "web-vm-ssh" {
		t.Fatalf("ssh key not passed through accessCredentials: %+v", spec.AccessCredentials)
	}

	if profile.Status.VMName != "web-vm-01-vm" || profile.Status.NodeName == "" {
		t.Fatalf("status: %s", observe.Describe(profile))
	}
	mgmt, businessStatus := profile.Status.Networks[0], profile.Status.Networks[1]
	if mgmt.IPAddress != "192.168.100.10/24" || mgmt.IPSource != vmv1alpha1.IPSourceGuest || mgmt.Interface != "eth0" {
		t.Fatalf("mgmt status: %+v", mgmt)
	}
	if businessStatus.IPAddress == "" || businessStatus.Interface != "eth1" || businessStatus.MACAddress == "" {
		t.Fatalf("business status: %+v", businessStatus)
	}
	if want := mgmt.IPAddress + "," + businessStatus.IPAddress; profile.Status.Addresses != want {
		t.Errorf("status.addresses %q, want %q", profile.Status.Addresses, want)
	}
	for _, volume := range profile.Status.Volumes {
		if !volume.Bound {
			t.Fatalf("volume %s not bound: %+v", volume.Name, volume)
		}
	}
	for _, c := range []string{vmv1alpha1.ConditionReady, vmv1alpha1.ConditionNetworksConfigured, vmv1alpha1.ConditionVolumesBound, vmv1alpha1.ConditionScheduled} {
		found := false
		for _, got := range profile.Status.Conditions {
			found = found || (got.Type == c && got.Status == metav1.ConditionTrue)
		}
		if !found {
			t.Errorf("condition %s not True: %s", c, observe.Describe(profile))
		}
	}
}

// TestSeedTestSample applies the request's test sample verbatim: a bridge
// network on VLAN 100 without bridgeName gets the default bridge br-mgmt.
func TestSeedTestSample(t *testing.T) {
	ns := newNamespace(t)
	create(t, observe.Sample(t, "vm_v1alpha1_virtualmachineprofile.yaml", ns))
	profile := waitForPhase(t, ns, "test-vm", vmv1alpha1.PhaseRunning)
	var nad nadv1.NetworkAttachmentDefinition
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "test-vm-mgmt"}, &nad); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nad.Spec.Config, `"bridge":"br-mgmt"`) || !strings.Contains(nad.Spec.Config, `"vlan":100`) {
		t.Fatalf("NAD config: %s", nad.Spec.Config)
	}
	if profile.Status.Networks[0].IPAddress != "192.168.100.10/24" {
		t.Fatalf("status networks: %+v", profile.Status.Networks)
	}
}
