package manager

import (
	"context"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/events"
)

// NewCoreEventRecorder is the recorder New gives the reconcilers, for the
// tests of package manager_test; stop flushes and stops it.
func NewCoreEventRecorder(core typedcorev1.EventsGetter, scheme *k8sruntime.Scheme) (recorder events.EventRecorder, stop func(), err error) {
	recording, err := newEventRecording(core)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = recording.Start(ctx)
		close(done)
	}()
	return recording.broadcaster.NewRecorder(scheme, "vmop-controller"), func() { cancel(); <-done }, nil
}
