package integration

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// eventLedger holds every event reason the controller recorded during the
// suite and every reason some test asserted, so the suite can insist that
// no reason the controller records goes untested.
type eventLedger struct {
	mu       sync.Mutex
	recorded map[string]bool
	asserted map[string]bool
}

var events = &eventLedger{recorded: map[string]bool{}, asserted: map[string]bool{}}

// watchEvents records the reason of every event vmop-controller reports,
// in every namespace, until ctx ends.
func (l *eventLedger) watchEvents(ctx context.Context) error {
	clientset, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		return err
	}
	w, err := clientset.EventsV1().Events("").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("reportingController", "vmop-controller").String()})
	if err != nil {
		return fmt.Errorf("watch events: %w", err)
	}
	go func() {
		defer w.Stop()
		for e := range w.ResultChan() {
			if event, ok := e.Object.(*eventsv1.Event); ok && e.Type == watch.Added {
				l.mu.Lock()
				l.recorded[event.Reason] = true
				l.mu.Unlock()
			}
		}
	}()
	return nil
}

// unasserted lists the reasons the controller recorded, or declares as the
// reasons of its Normal events, that no test asserted.
func (l *eventLedger) unasserted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var missing []string
	for _, reason := range vmv1alpha1.NormalEventReasons() {
		if !l.asserted[reason] && !slices.Contains(missing, reason) {
			missing = append(missing, reason)
		}
	}
	for reason := range l.recorded {
		if !l.asserted[reason] && !slices.Contains(missing, reason) {
			missing = append(missing, reason)
		}
	}
	sort.Strings(missing)
	return missing
}

// fullSuite says whether every test of the package ran (no -run filter),
// the only case in which the ledger can be judged.
func fullSuite() bool {
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() == ""
}

// expectEvent waits until the controller recorded an event with reason on
// the profile, and marks the reason as tested.
func expectEvent(t *testing.T, namespace, profileName, reason string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("event %s on %s", reason, profileName), func() (bool, string) {
		var list eventsv1.EventList
		if err := cluster.Client.List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == profileName && e.ReportingController == "vmop-controller" {
				if e.Reason == reason {
					return true, ""
				}
				seen = append(seen, e.Reason)
			}
		}
		return false, fmt.Sprintf("events seen: %v", seen)
	})
	events.mu.Lock()
	events.asserted[reason] = true
	events.mu.Unlock()
}
