//go:build integration

package desired

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
)

// edgeProfiles are the profiles of test/validation/testdata/valid/edges.yaml:
// host addresses, gateways, MACs and memory at the edge of what the CRD
// refuses, which the apiserver admits (test/validation).
func edgeProfiles(t *testing.T) []*vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	file := filepath.Join("..", "..", "test", "validation", "testdata", "valid", "edges.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var profiles []*vmv1alpha1.VirtualMachineProfile
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		p := &vmv1alpha1.VirtualMachineProfile{}
		if err := yaml.UnmarshalStrict(doc, p); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		p.Namespace, p.UID = "ns", types.UID("uid-"+p.Name)
		profiles = append(profiles, p)
	}
	return profiles
}

// TestEdgeProfilesAsKubeVirtAdmitsThem: KubeVirt's own admitters (virt-api
// v1.8.0, bin/kubevirt-admit) refuse none of the VMs built of the edge
// values the CRD admits, so the CRD's rules are no looser than KubeVirt's
// where both judge (memory: 1M is KubeVirt's smallest request).
func TestEdgeProfilesAsKubeVirtAdmitsThem(t *testing.T) {
	var vms []kubevirtv1.VirtualMachine
	for _, p := range edgeProfiles(t) {
		vm, err := VM(p, Placement{}, nil)
		if err != nil {
			t.Fatalf("profile %s: %v", p.Name, err)
		}
		vms = append(vms, *vm)
	}
	kubevirt := startKubeVirtAdmitter(t)
	verdicts, err := kubevirt.Admit(vms)
	if err != nil {
		t.Fatal(err)
	}
	if err := consumers.RefusedVMs(verdicts); err != nil {
		t.Error(err)
	}
	if len(verdicts) != len(vms) {
		t.Fatalf("%d verdicts for %d VMs", len(verdicts), len(vms))
	}
}
