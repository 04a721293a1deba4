package apply

import (
	"encoding/json"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Contains says whether have holds every field of want with the same value:
// maps are compared key by key (extra keys in have are someone else's and
// fine), lists element by element and must have the same length (the lists
// we write are ours entirely), scalars by value.
func Contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		for key, wantValue := range w {
			haveValue, present := h[key]
			if !present {
				if isEmpty(wantValue) {
					continue
				}
				return false
			}
			if !Contains(haveValue, wantValue) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return len(w) == 0 && have == nil
		}
		for i := range w {
			if !Contains(h[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return scalarEqual(have, want)
	}
}

// isEmpty values are empty lists, which do not survive a round trip
// through typed objects with omitempty: their absence is not drift. An
// empty map is meaningful (KubeVirt's `bridge: {}` picks the binding) and
// must be there.
func isEmpty(value any) bool {
	list, ok := value.([]any)
	return ok && len(list) == 0
}

// scalarEqual compares JSON scalars; numbers may arrive as int64 or float64.
func scalarEqual(a, b any) bool {
	if af, ok := number(a); ok {
		bf, ok := number(b)
		return ok && af == bf
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// managedByUsAlone judges an object we can only see the metadata of: every
// top-level field of want outside metadata (a Secret's data and type) must
// be in our apply entry, and no other manager may own anything beneath
// those fields — a hand edit through kubectl edit or apply takes ownership
// of what it changed, which is how the edit shows.
func managedByUsAlone(entries []metav1.ManagedFieldsEntry, want map[string]any) bool {
	var ours map[string]any
	var others []map[string]any
	for _, entry := range entries {
		if entry.Subresource != "" || entry.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(entry.FieldsV1.GetRawBytes(), &fields); err != nil {
			return false
		}
		if entry.Manager == FieldOwner && entry.Operation == metav1.ManagedFieldsOperationApply {
			ours = fields
		} else {
			others = append(others, fields)
		}
	}
	for key, value := range want {
		if key == "metadata" || key == "apiVersion" || key == "kind" {
			continue
		}
		if !fieldsCover(ours, key, value) {
			return false
		}
		for _, other := range others {
			if _, touched := other["f:"+key]; touched {
				return false
			}
		}
	}
	return true
}

// fieldsCover says whether a FieldsV1 set holds the field key and, for
// maps, every key beneath it.
func fieldsCover(set map[string]any, key string, value any) bool {
	child, ok := set["f:"+key].(map[string]any)
	if !ok {
		return false
	}
	nested, isMap := value.(map[string]any)
	if !isMap {
		return true
	}
	for k, v := range nested {
		if !fieldsCover(child, k, v) {
			return false
		}
	}
	return true
}
