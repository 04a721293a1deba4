//go:build integration

package lifecycle

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// TestCleanupOnARealAPIServer: the node labels a VM requires stay where
// KubeVirt is installed (the VM stored and read back through the
// apiserver), and where KubeVirt's CRDs are absent there are no VMs and
// every label under our prefix goes, without an error.
func TestCleanupOnARealAPIServer(t *testing.T) {
	for _, c := range []struct {
		name     string
		options  []controlplane.Option
		vm       bool
		wantKept map[string]string
	}{
		{"with KubeVirt", nil, true, map[string]string{"cap.vm.example.com/kvm": "true", "kubernetes.io/hostname": "node-a"}},
		{"without KubeVirt", []controlplane.Option{controlplane.WithoutCRDs("kubevirt.io_")}, false, map[string]string{"kubernetes.io/hostname": "node-a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp, err := controlplane.Start(c.options...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cp.Stop() })
			ctx := context.Background()
			objects := []client.Object{
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
				&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{
					"cap.vm.example.com/kvm": "true", "cap.vm.example.com/sriov": "true", "kubernetes.io/hostname": "node-a"}}},
			}
			if c.vm {
				objects = append(objects, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}, vmRequiring("web-vm", "cap.vm.example.com/kvm"))
			}
			for _, obj := range objects {
				if err := cp.Client.Create(ctx, obj); err != nil {
					t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
				}
			}
			var log strings.Builder
			if _, err := (Cleanup{Client: cp.Client, Namespace: ns, Release: "vmop", Timeout: 5 * time.Second, Log: &log}).Run(ctx); err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			var node corev1.Node
			if err := cp.Client.Get(ctx, client.ObjectKey{Name: "node-a"}, &node); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(node.Labels, c.wantKept) {
				t.Errorf("node-a labels %v, want %v\n%s", node.Labels, c.wantKept, log.String())
			}
		})
	}
}
