//go:build integration

package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func startControlPlane(t *testing.T) *ControlPlane {
	t.Helper()
	cp, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return cp
}

// TestThirdPartyKindsAreServedWithRealSchemas creates one valid object of
// each third-party kind the operator writes, and checks that the schemas are
// real: an unknown field is refused, as on a cluster with KubeVirt installed.
func TestThirdPartyKindsAreServedWithRealSchemas(t *testing.T) {
	cp := startControlPlane(t)
	ctx := context.Background()
	strict := client.FieldValidation(metav1.FieldValidationStrict)
	objects := []client.Object{
		&kubevirtv1.VirtualMachine{
			ObjectMeta: metav1.ObjectMeta{Name: "vm", Namespace: "default"},
			Spec: kubevirtv1.VirtualMachineSpec{
				RunStrategy: ptr.To(kubevirtv1.RunStrategyAlways),
				Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{CPU: &kubevirtv1.CPU{Cores: 2}},
				}},
			},
		},
		&cdiv1.DataVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "dv", Namespace: "default"},
			Spec: cdiv1.DataVolumeSpec{
				Source: &cdiv1.DataVolumeSource{Registry: &cdiv1.DataVolumeSourceRegistry{URL: ptr.To("docker://registry.local/os:1")}},
				Storage: &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				}},
			},
		},
		&nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "nad", Namespace: "default"},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br0"}`},
		},
		&nmstatev1.NodeNetworkConfigurationPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "nncp"},
			Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
				DesiredState: nmstateshared.NewState(`{"interfaces":[{"name":"br0","type":"linux-bridge","state":"up"}]}`),
			},
		},
	}
	for _, obj := range objects {
		if err := cp.Client.Create(ctx, obj, strict); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}

	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
		"metadata": map[string]any{"name": "bad", "namespace": "default"},
		"spec":     map[string]any{"runStrategy": "Always", "template": map[string]any{"spec": map[string]any{"domain": map[string]any{"cpus": 2}}}},
	}}
	err := cp.Client.Create(ctx, bad, strict)
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.template.spec.domain.cpus"`) {
		t.Fatalf("want the VirtualMachine schema to refuse an unknown field, got %v", err)
	}
}

// TestGarbageCollectorDeletesOwnedObjects runs the real
// kube-controller-manager: deleting an owner removes what it owns.
func TestGarbageCollectorDeletesOwnedObjects(t *testing.T) {
	cp := startControlPlane(t)
	if err := cp.StartGarbageCollector(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "default"}}
	if err := cp.Client.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	child := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "child", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}},
	}}
	if err := cp.Client.Create(ctx, child); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cp.Client.Delete(ctx, owner); err != nil {
		t.Fatal(err)
	}
	for {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(child), &corev1.ConfigMap{})
		if apierrors.IsNotFound(err) {
			t.Logf("owned object collected %v after its owner was deleted", time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("owned object still present a minute after its owner was deleted (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
