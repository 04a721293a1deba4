package validation

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEdgeValuesAreAccepted: the host addresses, gateways, MACs and memory
// sizes at the edge of the rules that refuse what no host, NIC or guest can
// use (testdata/invalid) are admitted: /31 and /127 point-to-point links,
// /32 and /128 hosts, the ends of a subnet's host range, the smallest
// memory KubeVirt takes as a request.
func TestEdgeValuesAreAccepted(t *testing.T) {
	file := filepath.Join("testdata", "valid", "edges.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objects := decode(t, file, raw)
	if len(objects) < 2 {
		t.Fatalf("%s holds %d profiles", file, len(objects))
	}
	namespace := newNamespace(t)
	for _, obj := range objects {
		t.Run(obj.GetName(), func(t *testing.T) {
			place(obj, namespace)
			if err := create(obj); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
