package scale

import "testing"

func TestResourceOf(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/ns/persistentvolumeclaims":                                   "persistentvolumeclaims",
		"/api/v1/namespaces/ns/secrets/vm-1-cloudinit":                                   "secrets",
		"/apis/vm.example.com/v1alpha1/namespaces/ns/virtualmachineprofiles/vm-1/status": "virtualmachineprofiles/status",
		"/api/v1/nodes/node-a":  "nodes",
		"/api/v1/namespaces/ns": "namespaces",
		"/apis/coordination.k8s.io/v1/namespaces/vmop-system/leases/x": "leases",
		"/apis/vm.example.com/v1alpha1/nodecapabilities/node-a/status": "nodecapabilities/status",
	} {
		if got := ResourceOf(path); got != want {
			t.Errorf("ResourceOf(%s) = %s, want %s", path, got, want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	current, peak, err := parseMemory([]byte("Name:\tvmop-controller\nVmHWM:\t  133900 kB\nVmRSS:\t  131900 kB\n"))
	if err != nil || current != 131900*1024 || peak != 133900*1024 {
		t.Fatalf("got %d %d %v", current, peak, err)
	}
	if _, _, err := parseMemory([]byte("Name:\tx\n")); err == nil {
		t.Fatal("no error without VmRSS")
	}
}
