package crds

import "testing"

func TestLoadParsesEveryCRD(t *testing.T) {
	crds, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hostnetworks.vm.example.com", "nodecapabilities.vm.example.com", "virtualmachineprofiles.vm.example.com"}
	if len(crds) != len(want) {
		t.Fatalf("%d CRDs, want %d", len(crds), len(want))
	}
	for i, name := range want {
		if crds[i].Name != name || len(crds[i].Spec.Versions) == 0 {
			t.Errorf("CRD %d: %s with %d versions, want %s", i, crds[i].Name, len(crds[i].Spec.Versions), name)
		}
	}
}
