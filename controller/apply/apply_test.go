package apply

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestContains(t *testing.T) {
	want := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"a": "1"}},
		"spec": map[string]any{
			"cores":      int64(2),
			"interfaces": []any{map[string]any{"name": "mgmt", "bridge": map[string]any{}}},
			"empty":      []any{},
		},
	}
	cases := []struct {
		name string
		have map[string]any
		want bool
	}{
		{"identical", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"a": "1"}},
			"spec": map[string]any{"cores": int64(2), "interfaces": []any{map[string]any{"name": "mgmt", "bridge": map[string]any{}}},
				"empty": []any{}},
		}, true},
		{"someone added a label and a field: still ours", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"a": "1", "b": "2"}},
			"spec": map[string]any{"cores": float64(2), "machine": "q35",
				"interfaces": []any{map[string]any{"name": "mgmt", "bridge": map[string]any{}, "model": "virtio"}}},
		}, true},
		{"hand edit of our field", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"a": "1"}},
			"spec":     map[string]any{"cores": int64(4), "interfaces": []any{map[string]any{"name": "mgmt", "bridge": map[string]any{}}}},
		}, false},
		{"our label removed", map[string]any{
			"metadata": map[string]any{},
			"spec":     map[string]any{"cores": int64(2), "interfaces": []any{map[string]any{"name": "mgmt", "bridge": map[string]any{}}}},
		}, false},
		{"an interface added to our list", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"a": "1"}},
			"spec": map[string]any{"cores": int64(2), "interfaces": []any{
				map[string]any{"name": "mgmt", "bridge": map[string]any{}}, map[string]any{"name": "x"}}},
		}, false},
		{"binding changed", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"a": "1"}},
			"spec":     map[string]any{"cores": int64(2), "interfaces": []any{map[string]any{"name": "mgmt", "masquerade": map[string]any{}}}},
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Contains(c.have, want); got != c.want {
				t.Fatalf("Contains = %v, want %v", got, c.want)
			}
		})
	}
}

func TestUpToDateJudgesMetadataOnlyObjectsByTheirManagers(t *testing.T) {
	want := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "p-cloudinit", "labels": map[string]any{"app": "x"}},
		"data":     map[string]any{"userdata": "dQ==", "networkdata": "bg=="},
		"type":     "Opaque",
	}
	ours := metav1.ManagedFieldsEntry{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
		FieldsV1: metav1.NewFieldsV1(`{"f:data":{"f:networkdata":{},"f:userdata":{}},"f:metadata":{"f:labels":{"f:app":{}}},"f:type":{}}`)}
	cases := []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    bool
	}{
		{"only we manage it", []metav1.ManagedFieldsEntry{ours}, true},
		{"kubectl edit changed the network data", []metav1.ManagedFieldsEntry{
			{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
				FieldsV1: metav1.NewFieldsV1(`{"f:data":{"f:userdata":{}},"f:type":{}}`)},
			{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsV1: metav1.NewFieldsV1(`{"f:data":{"f:networkdata":{}}}`)},
		}, false},
		{"a key of ours was removed", []metav1.ManagedFieldsEntry{
			{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
				FieldsV1: metav1.NewFieldsV1(`{"f:data":{"f:userdata":{}},"f:type":{}}`)},
		}, false},
		{"someone else labels it: fine", []metav1.ManagedFieldsEntry{ours,
			{Manager: "kubectl-label", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{"f:team":{}}}}`)},
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			existing := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "p-cloudinit",
				Labels: map[string]string{"app": "x", "team": "y"}, ManagedFields: c.entries}}
			got, err := UpToDate(existing, want)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("UpToDate = %v, want %v", got, c.want)
			}
		})
	}
}

func TestContentDropsStatusAndNulls(t *testing.T) {
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"k": []byte("v")}}
	content, err := Content(secret)
	if err != nil {
		t.Fatal(err)
	}
	metadata := content["metadata"].(map[string]any)
	if _, ok := metadata["creationTimestamp"]; ok {
		t.Fatalf("null creationTimestamp kept: %v", metadata)
	}
	if content["data"].(map[string]any)["k"] != "dg==" {
		t.Fatalf("data: %v", content["data"])
	}
}

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Resource: "persistentvolumeclaims"}
	cases := []struct {
		name       string
		err        error
		reason     string
		definitive bool
	}{
		{"quota", apierrors.NewForbidden(gr, "p-data", errors.New("exceeded quota: small, requested: requests.storage=5Gi, used: requests.storage=0, limited: requests.storage=1Gi")),
			ReasonQuotaExceeded, true},
		{"webhook", apierrors.NewForbidden(gr, "p-data", errors.New(`admission webhook "deny.example.com" denied the request: no`)),
			ReasonAdmissionDenied, true},
		{"rbac", apierrors.NewForbidden(gr, "p-data", errors.New(`User "x" cannot create resource`)), ReasonForbidden, true},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "PersistentVolumeClaim"}, "p-data", nil), ReasonInvalid, true},
		{"server error", apierrors.NewInternalError(errors.New("etcd timeout")), ReasonAPIError, false},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), ReasonAPIError, false},
		{"wrapped", fmt.Errorf("create PVC: %w", apierrors.NewGenericServerResponse(http.StatusServiceUnavailable, "POST", gr, "", "", 0, false)),
			ReasonAPIError, false},
		{"not an API error", errors.New("connection refused"), ReasonAPIError, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reason, definitive := Classify(c.err)
			if reason != c.reason || definitive != c.definitive {
				t.Fatalf("Classify = %s, %v; want %s, %v", reason, definitive, c.reason, c.definitive)
			}
		})
	}
}
