package manager

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/events"
)

// coreEventSink writes the events.k8s.io Events of client-go's events
// recorder through the core/v1 API, with firstTimestamp, lastTimestamp and
// count set as well. Through events.k8s.io/v1 those fields (its
// deprecatedFirstTimestamp, deprecatedLastTimestamp, deprecatedCount) must
// stay empty, so `kubectl get events --sort-by='.lastTimestamp'`, the
// command everyone types, sorted our events as if they had no time. The
// object stored is the same either way (one Event kind, two views): readers
// of events.k8s.io still see eventTime, series, action, regarding and note.
//
// The sink returns the API's errors as they come: the broadcaster decides
// whether to retry by the error's concrete type (a *errors.StatusError, such
// as a namespace being deleted, is dropped; anything else is retried up to
// 12 times). Wrapped, every refusal was retried, and each retry counted as a
// write. The broadcaster's log line names the event.
type coreEventSink struct {
	events typedcorev1.EventsGetter
}

var _ events.EventSink = coreEventSink{}

// Create writes a new Event.
func (s coreEventSink) Create(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error) {
	core := coreEvent(event)
	created, err := s.events.Events(core.Namespace).Create(ctx, core, metav1.CreateOptions{})
	if err != nil {
		return nil, err //nolint:wrapcheck // the broadcaster switches on the concrete type
	}
	return eventsEvent(created), nil
}

// Update replaces an Event.
func (s coreEventSink) Update(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error) {
	core := coreEvent(event)
	updated, err := s.events.Events(core.Namespace).Update(ctx, core, metav1.UpdateOptions{})
	if err != nil {
		return nil, err //nolint:wrapcheck // the broadcaster switches on the concrete type
	}
	return eventsEvent(updated), nil
}

// Patch applies the recorder's series patch (series.count and
// series.lastObservedTime, the same JSON in both APIs) and moves
// lastTimestamp and count along with it.
func (s coreEventSink) Patch(ctx context.Context, event *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	withTimes, err := seriesPatchWithTimestamp(data, event)
	if err != nil {
		return nil, fmt.Errorf("patch Event %s/%s (%s): %w", event.Namespace, event.Name, event.Reason, err)
	}
	patched, err := s.events.Events(event.Namespace).Patch(ctx, event.Name, types.StrategicMergePatchType, withTimes, metav1.PatchOptions{})
	if err != nil {
		return nil, err //nolint:wrapcheck // the broadcaster switches on the concrete type (NotFound: create instead)
	}
	return eventsEvent(patched), nil
}

// seriesPatchWithTimestamp adds lastTimestamp and count, from the event's
// series, to a strategic merge patch of it.
func seriesPatchWithTimestamp(data []byte, event *eventsv1.Event) ([]byte, error) {
	patch := map[string]any{}
	if err := json.Unmarshal(data, &patch); err != nil {
		return nil, fmt.Errorf("read series patch: %w", err)
	}
	last, count := lastSeen(event)
	patch["lastTimestamp"] = last
	patch["count"] = count
	out, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("write series patch: %w", err)
	}
	return out, nil
}

// lastSeen is when the event was last observed, and how often in all.
func lastSeen(event *eventsv1.Event) (metav1.Time, int32) {
	if event.Series != nil {
		return metav1.NewTime(event.Series.LastObservedTime.Time), event.Series.Count
	}
	return metav1.NewTime(event.EventTime.Time), 1
}

// coreEvent is event in the core/v1 view, with firstTimestamp,
// lastTimestamp and count from eventTime and series.
func coreEvent(event *eventsv1.Event) *corev1.Event {
	last, count := lastSeen(event)
	core := &corev1.Event{
		ObjectMeta:          *event.ObjectMeta.DeepCopy(),
		InvolvedObject:      event.Regarding,
		Related:             event.Related,
		Reason:              event.Reason,
		Message:             event.Note,
		Type:                event.Type,
		Action:              event.Action,
		EventTime:           event.EventTime,
		ReportingController: event.ReportingController,
		ReportingInstance:   event.ReportingInstance,
		FirstTimestamp:      metav1.NewTime(event.EventTime.Time),
		LastTimestamp:       last,
		Count:               count,
		Source:              corev1.EventSource{Component: event.ReportingController, Host: event.ReportingInstance},
	}
	if event.Series != nil {
		core.Series = &corev1.EventSeries{Count: event.Series.Count, LastObservedTime: event.Series.LastObservedTime}
	}
	return core
}

// eventsEvent is a stored core/v1 Event in the events.k8s.io view the
// recorder keeps in its cache.
func eventsEvent(core *corev1.Event) *eventsv1.Event {
	event := &eventsv1.Event{
		ObjectMeta:               core.ObjectMeta,
		EventTime:                core.EventTime,
		ReportingController:      core.ReportingController,
		ReportingInstance:        core.ReportingInstance,
		Action:                   core.Action,
		Reason:                   core.Reason,
		Regarding:                core.InvolvedObject,
		Related:                  core.Related,
		Note:                     core.Message,
		Type:                     core.Type,
		DeprecatedSource:         core.Source,
		DeprecatedFirstTimestamp: core.FirstTimestamp,
		DeprecatedLastTimestamp:  core.LastTimestamp,
		DeprecatedCount:          core.Count,
	}
	if core.Series != nil {
		event.Series = &eventsv1.EventSeries{Count: core.Series.Count, LastObservedTime: core.Series.LastObservedTime}
	}
	return event
}

// eventRecording is the broadcaster behind the recorder the reconcilers
// use, recording through coreEventSink from New on, until the manager stops.
type eventRecording struct {
	broadcaster events.EventBroadcaster
	stop        context.CancelFunc
}

// newEventRecording starts a broadcaster that records through the core/v1
// API. It records from the start, so that no event a reconciler emits
// before the manager's runnables are up is dropped.
func newEventRecording(core typedcorev1.EventsGetter) (*eventRecording, error) {
	broadcaster := events.NewBroadcaster(coreEventSink{events: core})
	ctx, stop := context.WithCancel(context.Background())
	if err := broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		stop()
		return nil, fmt.Errorf("start recording events: %w", err)
	}
	return &eventRecording{broadcaster: broadcaster, stop: stop}, nil
}

// NeedLeaderElection is false: recording stops with the manager, leader
// or not.
func (r *eventRecording) NeedLeaderElection() bool { return false }

// Start waits for the manager to stop, then flushes and stops recording.
func (r *eventRecording) Start(ctx context.Context) error {
	<-ctx.Done()
	r.stop()
	r.broadcaster.Shutdown()
	return nil
}
