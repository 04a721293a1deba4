//go:build integration

package nodestack_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/internal/testing/nodestack"
)

// TestNodeStack runs a pod the way a cluster does: the kubelet registers
// its node Ready on containerd, the real scheduler places a pod from an
// imported image, runc runs it with a restricted securityContext, its
// readiness probe passes over the pod network, its logs and an exec come
// through the apiserver from the kubelet, and a Service reaches it through
// kube-proxy.
// Stop then leaves nothing behind.
func TestNodeStack(t *testing.T) {
	started := time.Now()
	hello := filepath.Join(controlplane.BinDir(), "node-images", "nodestack-hello.tar")
	stack, err := nodestack.Start(nodestack.Options{Images: []string{hello}})
	if err != nil {
		t.Fatalf("start node stack: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Errorf("stop node stack: %v", err)
		}
	})
	t.Logf("node %s Ready %v after start", stack.NodeName, time.Since(started).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := stack.ControlPlane.Client

	node, err := stack.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Status.NodeInfo.ContainerRuntimeVersion; got != "containerd://2.4.2" {
		t.Errorf("node runtime: got %q, want containerd://2.4.2", got)
	}
	if got := node.Status.NodeInfo.KubeletVersion; got != "v1.37.2" {
		t.Errorf("kubelet version: got %q, want v1.37.2 (stamped by make)", got)
	}

	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nodestack-test",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := c.Create(ctx, namespace); err != nil {
		t.Fatal(err)
	}
	pod := helloPod(namespace.Name, stack.ImageRefs[hello])
	if err := c.Create(ctx, pod); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	podStarted := time.Now()
	running := waitPodReady(ctx, t, c, pod)
	t.Logf("pod scheduled, started and Ready in %v", time.Since(podStarted).Round(100*time.Millisecond))
	if running.Spec.NodeName != stack.NodeName {
		t.Errorf("pod bound to %q, want %q (by kube-scheduler)", running.Spec.NodeName, stack.NodeName)
	}
	if !scheduledBy(ctx, t, c, running, "default-scheduler") {
		t.Errorf("no Scheduled event from default-scheduler for pod %s", pod.Name)
	}
	if !strings.HasPrefix(running.Status.PodIP, strings.TrimSuffix(stack.PodSubnet, "0/24")) {
		t.Errorf("pod IP %q not from the pod network %s", running.Status.PodIP, stack.PodSubnet)
	}

	logs, err := stack.PodLogs(ctx, pod.Namespace, pod.Name, "hello")
	if err != nil {
		t.Fatalf("logs through the apiserver and the kubelet: %v", err)
	}
	if want := "hello from " + pod.Name; !strings.Contains(logs, want) {
		t.Errorf("pod logs %q do not contain %q", logs, want)
	}

	stdout, stderr, err := stack.Exec(ctx, pod.Namespace, pod.Name, "hello", "/nodestack-hello", "hostname")
	if err != nil {
		t.Fatalf("exec through the apiserver and the kubelet: %v (stderr %q)", err, stderr)
	}
	if strings.TrimSpace(stdout) != pod.Name {
		t.Errorf("exec hostname in pod %s printed %q", pod.Name, stdout)
	}

	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: namespace.Name},
		Spec: corev1.ServiceSpec{
			Selector: pod.Labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if err := c.Create(ctx, service); err != nil {
		t.Fatalf("create service: %v", err)
	}
	waitEndpoint(ctx, t, c, service, running.Status.PodIP)
	body := getThroughService(ctx, t, "http://"+service.Spec.ClusterIP+":80/")
	if want := "hello from " + pod.Name; !strings.Contains(body, want) {
		t.Errorf("service %s answered %q, want %q", service.Spec.ClusterIP, body, want)
	}

	if err := stack.Stop(); err != nil {
		t.Fatalf("stop node stack: %v", err)
	}
	left, err := stack.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left on the host after Stop: %s", strings.Join(left, "; "))
	}
	t.Logf("whole test %v", time.Since(started).Round(100*time.Millisecond))
}

// helloPod runs the test image as the restricted Pod Security level
// demands: non-root, no privilege escalation, no capabilities, the runtime's
// default seccomp profile (runc's libseccomp filter), a read-only root.
func helloPod(namespace, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: namespace, Labels: map[string]string{"app": "hello"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "hello",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				Ports:           []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1,
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

func waitPodReady(ctx context.Context, t *testing.T, c client.Client, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	current := &corev1.Pod{}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), current); err != nil {
			return false, err
		}
		for _, condition := range current.Status.Conditions {
			if condition.Type == corev1.PodReady && condition.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not Ready: %v; status %+v", pod.Namespace, pod.Name, err, current.Status)
	}
	return current
}

func scheduledBy(ctx context.Context, t *testing.T, c client.Client, pod *corev1.Pod, scheduler string) bool {
	t.Helper()
	events := &corev1.EventList{}
	if err := c.List(ctx, events, client.InNamespace(pod.Namespace)); err != nil {
		t.Fatalf("events: %v", err)
	}
	for _, event := range events.Items {
		if event.InvolvedObject.UID == pod.UID && event.Reason == "Scheduled" &&
			(event.Source.Component == scheduler || event.ReportingController == scheduler) {
			return true
		}
	}
	return false
}

func waitEndpoint(ctx context.Context, t *testing.T, c client.Client, service *corev1.Service, ip string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		slices := &discoveryv1.EndpointSliceList{}
		if err := c.List(ctx, slices, client.InNamespace(service.Namespace),
			client.MatchingLabels{discoveryv1.LabelServiceName: service.Name}); err != nil {
			return false, err
		}
		for _, slice := range slices.Items {
			for _, endpoint := range slice.Endpoints {
				if len(endpoint.Addresses) > 0 && endpoint.Addresses[0] == ip &&
					endpoint.Conditions.Ready != nil && *endpoint.Conditions.Ready {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no ready endpoint %s for service %s: %v", ip, service.Name, err)
	}
}

// getThroughService retries until kube-proxy has programmed the Service
// (it syncs its rules a moment after the EndpointSlice appears).
func getThroughService(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	httpClient := &http.Client{Timeout: 2 * time.Second}
	var body string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		response, err := httpClient.Do(request)
		if err != nil {
			lastErr = err
			return false, nil
		}
		defer response.Body.Close()
		raw, err := io.ReadAll(response.Body)
		if err != nil {
			lastErr = err
			return false, nil
		}
		body = string(raw)
		return true, nil
	})
	if err != nil {
		t.Fatalf("GET %s through kube-proxy: %v (last: %v)", url, err, lastErr)
	}
	return body
}
