package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// FieldOwner is the server-side-apply manager of everything vmop-controller writes.
const FieldOwner = "vmop-controller"

// Applier server-side-applies the objects the controller owns, and only
// when they are not already as wanted: a converged object costs no request.
type Applier struct {
	Client client.Client
}

// Apply makes the object look like want. existing is what the cache holds
// (nil when absent; a *metav1.PartialObjectMetadata for kinds cached by
// metadata only). It returns whether it sent a request.
func (a Applier) Apply(ctx context.Context, existing, want client.Object) (bool, error) {
	content, err := Content(want)
	if err != nil {
		return false, err
	}
	hash, err := hashOf(content)
	if err != nil {
		return false, err
	}
	if existing != nil && existing.GetAnnotations()[vmv1alpha1.AnnotationDesiredHash] == hash {
		current, err := UpToDate(existing, content)
		if err != nil || current {
			return false, err
		}
	}
	withHash(content, hash)
	applyConfig := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: content})
	if err := a.Client.Apply(ctx, applyConfig, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("apply %s %s: %w", want.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(want), err)
	}
	return true, nil
}

// UpToDate says whether existing still holds every field of want (a hand
// edit of one of them, or its removal, makes it false; fields others added
// do not). For an object cached by metadata only, the content is judged by
// who manages it: every field of want must still be managed by us alone.
func UpToDate(existing client.Object, want map[string]any) (bool, error) {
	if partial, ok := existing.(*metav1.PartialObjectMetadata); ok {
		wantMeta, _ := want["metadata"].(map[string]any)
		have, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(&partial.ObjectMeta)
		if err != nil {
			return false, fmt.Errorf("metadata of %s to unstructured: %w", client.ObjectKeyFromObject(existing), err)
		}
		return Contains(have, wantMeta) && managedByUsAlone(partial.ManagedFields, want), nil
	}
	have, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(existing)
	if err != nil {
		return false, fmt.Errorf("%s to unstructured: %w", client.ObjectKeyFromObject(existing), err)
	}
	return Contains(have, want), nil
}

// Content is want as the apply request carries it: no status (not ours to
// set), no zero creation timestamps, no nulls.
func Content(want client.Object) (map[string]any, error) {
	content, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return nil, fmt.Errorf("%s to unstructured: %w", client.ObjectKeyFromObject(want), err)
	}
	delete(content, "status")
	return pruneNulls(content).(map[string]any), nil
}

func pruneNulls(value any) any {
	switch v := value.(type) {
	case map[string]any:
		for key, child := range v {
			if child == nil {
				delete(v, key)
				continue
			}
			v[key] = pruneNulls(child)
		}
	case []any:
		for i := range v {
			v[i] = pruneNulls(v[i])
		}
	}
	return value
}

func hashOf(content map[string]any) (string, error) {
	raw, err := json.Marshal(content) // map keys marshal sorted: the hash is stable
	if err != nil {
		return "", fmt.Errorf("hash content: %w", err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:16], nil
}

func withHash(content map[string]any, hash string) {
	metadata, _ := content["metadata"].(map[string]any)
	if metadata == nil {
		metadata = map[string]any{}
		content["metadata"] = metadata
	}
	annotations, _ := metadata["annotations"].(map[string]any)
	if annotations == nil {
		annotations = map[string]any{}
		metadata["annotations"] = annotations
	}
	annotations[vmv1alpha1.AnnotationDesiredHash] = hash
}
