package manager

import (
	"context"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestSinkReturnsTheAPIErrorAsItIs: the events broadcaster retries every
// error that is not a *errors.StatusError by its concrete type; an event
// for a namespace being deleted must be dropped, not retried 12 times.
func TestSinkReturnsTheAPIErrorAsItIs(t *testing.T) {
	clientset := fake.NewClientset()
	refused := apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "e", nil)
	for _, verb := range []string{"create", "update", "patch"} {
		clientset.PrependReactor(verb, "events", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
			return true, nil, refused
		})
	}
	sink := coreEventSink{events: clientset.CoreV1()}
	event := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "gone", Name: "e"}, Reason: "Created"}
	ctx := context.Background()
	_, createErr := sink.Create(ctx, event)
	_, updateErr := sink.Update(ctx, event)
	_, patchErr := sink.Patch(ctx, event, []byte(`{"series":{"count":2}}`))
	for verb, err := range map[string]error{"create": createErr, "update": updateErr, "patch": patchErr} {
		if _, ok := err.(*apierrors.StatusError); !ok { //nolint:errorlint // the broadcaster checks the concrete type, so must the test
			t.Errorf("%s returned %T (%v), want the *errors.StatusError itself", verb, err, err)
		}
	}
}
