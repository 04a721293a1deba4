//go:build integration

package manager_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// TestEventsSortByLastTimestamp runs the original request's
// `kubectl get events --sort-by='.lastTimestamp'` on events of the
// controller's recorder: each carries lastTimestamp, a repeated one moves it
// (and its count) on, so the command lists them in the order they last
// happened. events.k8s.io readers still see them with reportingController,
// action and note.
func TestEventsSortByLastTimestamp(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	const namespace = "events-order"
	objects := map[string]*corev1.ConfigMap{}
	for _, name := range []string{"first", "second"} {
		objects[name] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	}
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range objects {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	clientset, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	recorder, stop, err := manager.NewCoreEventRecorder(clientset.CoreV1(), cp.Client.Scheme())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	// lastTimestamp has seconds: the events are more than a second apart.
	recorder.Eventf(objects["first"], nil, corev1.EventTypeNormal, "Repeated", "Reconcile", "once")
	waitForEvents(t, clientset, namespace, 1)
	time.Sleep(1100 * time.Millisecond)
	recorder.Eventf(objects["second"], nil, corev1.EventTypeWarning, "Single", "Reconcile", "in between")
	waitForEvents(t, clientset, namespace, 2)
	time.Sleep(1100 * time.Millisecond)
	recorder.Eventf(objects["first"], nil, corev1.EventTypeNormal, "Repeated", "Reconcile", "once")

	var out string
	deadline := time.Now().Add(20 * time.Second)
	for {
		cmd := exec.Command("kubectl", "--kubeconfig", cp.Kubeconfig, "get", "events", "-n", namespace, "--sort-by=.lastTimestamp",
			"-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,COUNT:.count,LAST:.lastTimestamp")
		raw, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get events: %v\n%s", err, raw)
		}
		out = string(raw)
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) == 3 && strings.HasPrefix(rows[1], "second ") && strings.HasPrefix(rows[2], "first ") && strings.Contains(rows[2], " 2 ") &&
			!strings.Contains(out, "<none>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl get events --sort-by=.lastTimestamp printed:\n%s\nwant second, then first (count 2), each with a lastTimestamp", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("kubectl get events -n %s --sort-by=.lastTimestamp:\n%s", namespace, out)

	// The request's own words, default columns: the same order.
	raw, err := exec.Command("kubectl", "--kubeconfig", cp.Kubeconfig, "get", "events", "-n", namespace, "--sort-by=.lastTimestamp").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get events: %v\n%s", err, raw)
	}
	if i, j := strings.Index(string(raw), "configmap/second"), strings.Index(string(raw), "configmap/first"); i < 0 || j < i {
		t.Errorf("kubectl get events --sort-by='.lastTimestamp' does not list second before first:\n%s", raw)
	}

	// Why through core/v1: an Event written through events.k8s.io/v1, as
	// controller-runtime's recorder writes, has no lastTimestamp.
	eventsAPI := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "through-events-api"},
		EventTime: metav1.NowMicro(), ReportingController: "vmop-controller", ReportingInstance: "test", Action: "Reconcile",
		Reason: "Single", Type: corev1.EventTypeNormal, Regarding: corev1.ObjectReference{Kind: "ConfigMap", Namespace: "default", Name: "x"}}
	if _, err := clientset.EventsV1().Events("default").Create(ctx, eventsAPI, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	core, err := clientset.CoreV1().Events("default").Get(ctx, eventsAPI.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !core.LastTimestamp.IsZero() {
		t.Errorf("an events.k8s.io Event has lastTimestamp %v: the core/v1 sink may no longer be needed", core.LastTimestamp)
	}

	var list eventsv1.EventList
	if err := cp.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.ReportingController != "vmop-controller" || e.Action != "Reconcile" || e.Note == "" || e.EventTime.IsZero() {
			t.Errorf("events.k8s.io view of %s: reportingController %q action %q note %q eventTime %v", e.Name, e.ReportingController, e.Action, e.Note, e.EventTime)
		}
	}
}

func waitForEvents(t *testing.T, clientset *kubernetes.Clientset, namespace string, count int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := clientset.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{})
		if err == nil && len(list.Items) == count {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d events in %s: %v %v", count, namespace, list, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
