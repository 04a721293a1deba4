package profile

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestAdoptionOnlyForALiveProfile: a child left without owner is adopted
// only when the apiserver holds the very profile the reconcile read, not
// being deleted. A stale copy of a profile under orphan deletion, or of one
// deleted and re-created since, must not put its owner reference back: the
// garbage collector would delete the child the user asked to keep.
func TestAdoptionOnlyForALiveProfile(t *testing.T) {
	read := func() *vmv1alpha1.VirtualMachineProfile {
		return &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1"}}
	}
	deleting := read()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1_700_000_000, 0)}
	deleting.Finalizers = []string{"orphan"} // what the apiserver holds during an orphan deletion
	recreated := read()
	recreated.UID = "uid-2"
	for _, c := range []struct {
		name   string
		stored []client.Object
		want   bool
	}{
		{"live", []client.Object{read()}, true},
		{"being deleted with --cascade=orphan", []client.Object{deleting}, false},
		{"gone", nil, false},
		{"re-created since under the name", []client.Object{recreated}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			scheme := k8sruntime.NewScheme()
			if err := vmv1alpha1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			r := &Reconciler{APIReader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(c.stored...).Build()}
			got, err := r.liveForAdoption(context.Background(), read())
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("liveForAdoption = %v, want %v", got, c.want)
			}
		})
	}
}
