package volumes

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/status"
)

func TestStorageClassNames(t *testing.T) {
	p := &vmv1alpha1.VirtualMachineProfile{Spec: vmv1alpha1.VirtualMachineProfileSpec{Disks: []vmv1alpha1.DiskConfig{
		{Name: "a", StorageClassName: "fast"}, {Name: "b"}, {Name: "c", StorageClassName: "slow"}}}}
	if got := StorageClassNames(p); !slices.Equal(got, []string{"fast", "slow"}) {
		t.Fatalf("got %v", got)
	}
}

// TestReconcileCreatesAndReleases: a blank disk gets its claim, owned by
// the profile (retainPolicy Delete), and reported pending; the claim of a
// disk taken out of the spec loses its owner reference and is labelled
// Retain, so deleting the profile keeps it.
func TestReconcileCreatesAndReleases(t *testing.T) {
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(vmv1alpha1.AddToScheme(scheme))
	profile := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "uid-web"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{Disks: []vmv1alpha1.DiskConfig{
			{Name: "data", Size: "1Gi", RetainPolicy: vmv1alpha1.RetainPolicyDelete}}},
	}
	removed := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-old", UID: "uid-old",
		Labels: map[string]string{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelProfile: "web", vmv1alpha1.LabelDisk: "old"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: vmv1alpha1.GroupVersion.String(), Kind: "VirtualMachineProfile", Name: "web",
			UID: "uid-web", Controller: ptr.To(true)}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(profile, removed).Build()
	r := &Reconciler{Client: c, APIReader: c}
	observed := &status.Observed{}
	if err := r.Reconcile(context.Background(), profile, observed); err != nil {
		t.Fatal(err)
	}
	var claim corev1.PersistentVolumeClaim
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "web-data"}, &claim); err != nil {
		t.Fatalf("the disk's claim was not made: %v", err)
	}
	if ref := metav1.GetControllerOf(&claim); ref == nil || ref.UID != "uid-web" || claim.Labels[vmv1alpha1.LabelDisk] != "data" {
		t.Fatalf("claim not owned and labelled as its Delete policy says: %+v", claim.ObjectMeta)
	}
	if !observed.Volumes.Failed || observed.Volumes.Reason != vmv1alpha1.ReasonVolumesPending || len(observed.VolumeStatuses) != 1 {
		t.Fatalf("a claim not yet bound is pending: %+v %+v", observed.Volumes, observed.VolumeStatuses)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(removed), removed); err != nil {
		t.Fatal(err)
	}
	if len(removed.OwnerReferences) != 0 || removed.Labels[vmv1alpha1.LabelRetainPolicy] != string(vmv1alpha1.RetainPolicyRetain) {
		t.Fatalf("the removed disk's claim must be released: %+v", removed.ObjectMeta)
	}
}

// TestGrowthComparesTheAskedSize: CDI inflates a DataVolume claim's
// request by the filesystem overhead, so a disk grown by less than that
// overhead must still grow, keeping the same headroom.
func TestGrowthComparesTheAskedSize(t *testing.T) {
	q := resource.MustParse
	inflated := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{vmv1alpha1.AnnotationDiskSize: "1Gi"}},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceStorage: q("1138166334")}}}} // 1Gi × 1.06, rounded up
	if asked := askedSize(inflated); asked.Cmp(q("1Gi")) != 0 {
		t.Fatalf("asked %s, want 1Gi", asked.String())
	}
	plain := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceStorage: q("10Gi")}}}}
	if asked := askedSize(plain); asked.Cmp(q("10Gi")) != 0 {
		t.Fatalf("a claim without the annotation is asked its request: %s", asked.String())
	}
	for _, tc := range []struct{ current, asked, size, want string }{
		{"1138166334", "1Gi", "1040Mi", "1155950183"}, // 1040Mi × 1138166334 / 1Gi, rounded up
		{"10Gi", "10Gi", "20Gi", "20Gi"},              // a blank disk: no overhead
		{"2Gi", "1Gi", "1Mi", "2Gi"},                  // never below the current request
	} {
		got := grownRequest(q(tc.current), q(tc.asked), q(tc.size))
		if got.Cmp(q(tc.want)) != 0 {
			t.Errorf("grownRequest(%s, %s, %s) = %s, want %s", tc.current, tc.asked, tc.size, got.String(), tc.want)
		}
	}
}
