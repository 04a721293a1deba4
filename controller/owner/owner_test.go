package owner

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func TestOf(t *testing.T) {
	profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "uid-now"}}
	labelled := map[string]string{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelProfile: "web"}
	ref := func(uid string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: "VirtualMachineProfile", Name: "web", UID: types.UID("uid-" + uid), Controller: ptr.To(true)}}
	}
	claim := func(labels map[string]string, refs []metav1.OwnerReference) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-root", Labels: labels, OwnerReferences: refs}}
	}
	for _, tc := range []struct {
		name string
		obj  *corev1.PersistentVolumeClaim
		want Relation
	}{
		{"owned by this profile", claim(nil, ref("now")), Ours},
		{"labelled, without owner (retained, or orphaned)", claim(labelled, nil), Ours},
		{"labelled, owned by a deleted namesake", claim(labelled, ref("old")), PreviousProfile},
		{"unlabelled, without owner", claim(nil, nil), Foreign},
		{"labelled for another profile", claim(map[string]string{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelProfile: "db"}, nil), Foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Of(tc.obj, profile); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
			check := Check(tc.obj, tc.obj, profile)
			switch tc.want {
			case Ours:
				if check != nil {
					t.Fatalf("ours needs no check, got %+v", check)
				}
			case PreviousProfile:
				if check == nil || check.Reason != vmv1alpha1.ReasonPreviousProfileVolume || check.Fatal {
					t.Fatalf("a namesake's object is waited for, got %+v", check)
				}
			case Foreign:
				if check == nil || check.Reason != vmv1alpha1.ReasonNameConflict || !check.Fatal ||
					check.Message != "PersistentVolumeClaim web-root already exists and was not created for this profile; it is left untouched: rename or remove it" {
					t.Fatalf("someone else's object is a name conflict, got %+v", check)
				}
			}
		})
	}
}

func TestProfileOfChild(t *testing.T) {
	child := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-root",
		Labels: map[string]string{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelProfile: "web"}}}
	got := ProfileOfChild(context.Background(), child)
	if len(got) != 1 || got[0].Namespace != "ns" || got[0].Name != "web" {
		t.Fatalf("got %v", got)
	}
	child.Labels[vmv1alpha1.LabelManagedBy] = "someone-else"
	if got := ProfileOfChild(context.Background(), child); len(got) != 0 {
		t.Fatalf("an object the operator did not make maps to no profile, got %v", got)
	}
	if got := ProfileOfInstance(context.Background(), child); len(got) != 1 || got[0].Name != "web" {
		t.Fatalf("instances map by the profile label alone, got %v", got)
	}
}
