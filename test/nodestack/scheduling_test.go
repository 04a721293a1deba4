// Package nodestack_test installs the chart's agent onto the real node stack
// (internal/testing/nodestack: kube-scheduler, the DaemonSet controller,
// the kubelet, containerd), where taints and device requests decide, unlike
// the stand-in kubelet of test/kubelet, which binds pods itself.
package nodestack_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/internal/testing/nodestack"
)

// chartDir is the chart under test: go test ./nodestack/ -args -chart DIR
// runs these tests on another chart (an older release's, to see them fail).
var chartDir = flag.String("chart", filepath.Join(controlplane.RepoRoot(), "deploy", "chart"), "chart directory to install")

const namespace = "vmop-system"

// clusterScoped are the kinds installAgent creates without a namespace.
var clusterScoped = map[string]bool{"PriorityClass": true, "ClusterRole": true, "ClusterRoleBinding": true}

// TestAgentRunsOnANodeWithoutKVMDevice: where no device plugin offers
// devices.kubevirt.io/kvm (control planes, nodes before KubeVirt's
// virt-handler, clusters without KubeVirt), the agent must still be
// scheduled and started, or `helm install --wait` never returns. A chart
// whose agent requests a kvm unit leaves its pod Pending here
// ("Insufficient devices.kubevirt.io/kvm").
func TestAgentRunsOnANodeWithoutKVMDevice(t *testing.T) {
	stack := startStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node, err := stack.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, offered := node.Status.Allocatable["devices.kubevirt.io/kvm"]; offered {
		t.Fatalf("node %s offers devices.kubevirt.io/kvm; the test needs a node without", node.Name)
	}
	daemonSet := installAgent(ctx, t, stack)
	pod := waitAgentStarted(ctx, t, stack, daemonSet)
	if pod.Spec.NodeName != stack.NodeName {
		t.Errorf("agent pod %s on %q, want %q", pod.Name, pod.Spec.NodeName, stack.NodeName)
	}
}

// TestAgentStaysOffATaintedControlPlane: the agent tolerates no
// control-plane taint (no VMs run there, nor KubeVirt's node daemon), so
// the DaemonSet wants no pod on such a node and `helm install --wait`,
// which waits for the pods a DaemonSet wants, returns. A chart whose agent
// tolerates every taint puts a pod there, and with a kvm request that pod
// stays Pending.
func TestAgentStaysOffATaintedControlPlane(t *testing.T) {
	stack := startStack(t, []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	daemonSet := installAgent(ctx, t, stack)
	current := &appsv1.DaemonSet{}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := stack.ControlPlane.Client.Get(ctx, client.ObjectKeyFromObject(daemonSet), current); err != nil {
			return false, err
		}
		return current.Status.ObservedGeneration == current.Generation, nil
	})
	if err != nil {
		t.Fatalf("DaemonSet controller never observed %s: %v", daemonSet.Name, err)
	}
	// The DaemonSet controller creates its pods right after it first
	// counts them; give it a moment to show a pod it should not make.
	time.Sleep(3 * time.Second)
	if err := stack.ControlPlane.Client.Get(ctx, client.ObjectKeyFromObject(daemonSet), current); err != nil {
		t.Fatal(err)
	}
	pods := agentPods(ctx, t, stack, current)
	if current.Status.DesiredNumberScheduled != 0 || len(pods) != 0 {
		t.Errorf("agent DaemonSet on a tainted control plane wants %d pods and has %d (%s): helm install --wait waits for them",
			current.Status.DesiredNumberScheduled, len(pods), podStates(pods))
	}
}

func startStack(t *testing.T, taints []corev1.Taint) *nodestack.Stack {
	t.Helper()
	agentImage := filepath.Join(controlplane.BinDir(), "images", "vmop-agent.tar")
	stack, err := nodestack.Start(nodestack.Options{Images: []string{agentImage}, Taints: taints})
	if err != nil {
		t.Fatalf("start node stack: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Errorf("stop node stack: %v", err)
		}
	})
	return stack
}

// installAgent renders the chart with its default values (the images
// named as the archive names them) and creates what the agent's pods need:
// the privileged namespace NOTES.txt asks for, the priority class, the
// service accounts and the agent DaemonSet. The controller is left out: it
// plays no part in where the agent runs.
func installAgent(ctx context.Context, t *testing.T, stack *nodestack.Stack) *appsv1.DaemonSet {
	t.Helper()
	ref := stack.ImageRefs[filepath.Join(controlplane.BinDir(), "images", "vmop-agent.tar")]
	registry, tag, ok := splitReference(ref, "vmop-agent")
	if !ok {
		t.Fatalf("agent image %q is not <registry>/vmop-agent:<tag>", ref)
	}
	objects := renderChart(t, "image.registry="+registry, "image.tag="+tag)
	c := stack.ControlPlane.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	var daemonSet *appsv1.DaemonSet
	for _, obj := range objects {
		switch obj.GetKind() {
		case "PriorityClass", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		case "DaemonSet":
			daemonSet = &appsv1.DaemonSet{}
			daemonSet.Name, daemonSet.Namespace = obj.GetName(), namespace
		default:
			continue
		}
		if obj.GetNamespace() == "" && !clusterScoped[obj.GetKind()] {
			obj.SetNamespace(namespace)
		}
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	if daemonSet == nil {
		t.Fatal("the chart renders no DaemonSet")
	}
	return daemonSet
}

func splitReference(ref, name string) (registry, tag string, ok bool) {
	repository, tag, found := strings.Cut(ref, ":")
	registry, image, slash := strings.Cut(repository, "/"+name)
	return registry, tag, found && slash && image == ""
}

// renderChart is `helm template` of the chart under test, by the pinned helm.
func renderChart(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "vmop", *chartDir, "--namespace", namespace, "--kube-version", "1.37.2"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(filepath.Join(controlplane.BinDir(), "helm"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var objects []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatalf("decode the rendered chart: %v", err)
		}
		if len(obj.Object) > 0 {
			objects = append(objects, obj)
		}
	}
}

// waitAgentStarted waits until the kubelet has started the agent's
// container once: scheduled, image found in containerd, the chart's
// securityContext, mounts and host network accepted by runc. Whether it
// then stays up depends on reaching the apiserver, which is not what this
// test is about.
func waitAgentStarted(ctx context.Context, t *testing.T, stack *nodestack.Stack, daemonSet *appsv1.DaemonSet) *corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		pods = agentPods(ctx, t, stack, daemonSet)
		for _, pod := range pods {
			if containerStarted(pod) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no agent pod started: %v; pods: %s; events: %s", err, podStates(pods), events(ctx, t, stack))
	}
	for _, pod := range pods {
		if containerStarted(pod) {
			return &pod
		}
	}
	return nil
}

func containerStarted(pod corev1.Pod) bool {
	for _, status := range pod.Status.ContainerStatuses {
		if status.State.Running != nil || status.RestartCount > 0 ||
			(status.State.Terminated != nil && !status.State.Terminated.StartedAt.IsZero()) {
			return true
		}
	}
	return false
}

func agentPods(ctx context.Context, t *testing.T, stack *nodestack.Stack, daemonSet *appsv1.DaemonSet) []corev1.Pod {
	t.Helper()
	current := &appsv1.DaemonSet{}
	if err := stack.ControlPlane.Client.Get(ctx, client.ObjectKeyFromObject(daemonSet), current); err != nil {
		t.Fatalf("DaemonSet %s: %v", daemonSet.Name, err)
	}
	pods := &corev1.PodList{}
	if err := stack.ControlPlane.Client.List(ctx, pods, client.InNamespace(namespace),
		client.MatchingLabels(current.Spec.Selector.MatchLabels)); err != nil {
		t.Fatalf("agent pods: %v", err)
	}
	return pods.Items
}

func podStates(pods []corev1.Pod) string {
	var states []string
	for _, pod := range pods {
		state := fmt.Sprintf("%s on %q %s", pod.Name, pod.Spec.NodeName, pod.Status.Phase)
		for _, condition := range pod.Status.Conditions {
			if condition.Status != corev1.ConditionTrue && condition.Message != "" {
				state += fmt.Sprintf(" (%s: %s)", condition.Type, condition.Message)
			}
		}
		states = append(states, state)
	}
	return "[" + strings.Join(states, "; ") + "]"
}

func events(ctx context.Context, t *testing.T, stack *nodestack.Stack) string {
	t.Helper()
	list := &corev1.EventList{}
	if err := stack.ControlPlane.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return err.Error()
	}
	var lines []string
	for _, event := range list.Items {
		lines = append(lines, fmt.Sprintf("%s %s: %s", event.InvolvedObject.Name, event.Reason, event.Message))
	}
	return strings.Join(lines, "; ")
}

// TestAgentReadyOnTheRealNode: the agent from make images, with the chart's
// exact securityContext, mounts, probes, priority class, roles and
// projected token, becomes Ready on a real kubelet: it publishes its
// NodeCapability through the kubernetes Service and kube-proxy.
func TestAgentReadyOnTheRealNode(t *testing.T) {
	stack := startStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	daemonSet := installAgent(ctx, t, stack)
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, time.Second, 75*time.Second, false, func(context.Context) (bool, error) {
		pods = agentPods(ctx, t, stack, daemonSet)
		for _, pod := range pods {
			for _, condition := range pod.Status.Conditions {
				if condition.Type == corev1.PodReady && condition.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		logs := ""
		for _, pod := range pods {
			out, err := stack.PodLogs(ctx, pod.Namespace, pod.Name, "agent")
			if err != nil {
				out = err.Error()
			}
			logs += out
		}
		t.Fatalf("agent not Ready: %v; pods %s; events %s; logs:\n%s", err, podStates(pods), events(ctx, t, stack), logs)
	}
}
