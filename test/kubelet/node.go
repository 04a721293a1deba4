// Package kubelet is a STAND-IN, for the chart lifecycle test only, for
// what a real cluster would run the chart's workloads with: the workload
// controllers (one Pod per Deployment, one per DaemonSet on this node, one
// per Job, with the Job's status), the scheduler (every Pod lands on this
// node) and the node's kubelet, which runs each Pod's container as a
// process from the images `make images` built: the image's entrypoint with
// the container's args and env, as the image's or the Pod's user, with its
// hostPath mounts, and with a kubeconfig that impersonates the Pod's
// service account and carries the node-name claim a kubelet-bound token
// has. Pod deletion is graceful as on a real node: the Pod stays until its
// process has stopped.
//
// What it leaves out: one replica per Deployment (all processes share this
// machine's network, so replicas would share ports), no probes, no
// resource limits, no network namespaces, no image pulls (a missing image
// stays Pending with ErrImageNeverPull).
package kubelet

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"
)

// Node is one node with its kubelet.
type Node struct {
	Name   string
	Images Images
	// Kubeconfig is a cluster-admin kubeconfig file; Pods get copies that
	// impersonate their service account.
	Kubeconfig string
	// WorkDir holds the Pods' kubeconfigs and logs.
	WorkDir string
	// Logf reports what the node does (t.Logf).
	Logf func(format string, args ...any)

	client    client.Client
	mu        sync.Mutex
	processes map[types.UID]*process
	// createdDirs are mount points made on this machine for hostPath
	// mounts, removed by Stop.
	createdDirs []string
}

// Run starts the stand-in's controllers until ctx ends; call Stop
// afterwards to end every process it started.
func (n *Node) Run(ctx context.Context, config *rest.Config) error {
	n.processes = map[types.UID]*process{}
	mgr, err := ctrl.NewManager(config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return fmt.Errorf("stand-in kubelet %s: manager: %w", n.Name, err)
	}
	n.client = mgr.GetClient()
	workloads := []struct {
		name string
		obj  client.Object
		fn   reconcile.Func
	}{
		{"standin-deployments", &appsv1.Deployment{}, n.reconcileDeployment},
		{"standin-daemonsets", &appsv1.DaemonSet{}, n.reconcileDaemonSet},
		{"standin-jobs", &batchv1.Job{}, n.reconcileJob},
	}
	for _, w := range workloads {
		if err := ctrl.NewControllerManagedBy(mgr).Named(w.name).For(w.obj).Owns(&corev1.Pod{}).Complete(w.fn); err != nil {
			return fmt.Errorf("stand-in kubelet %s: %s controller: %w", n.Name, w.name, err)
		}
	}
	onThisNode := predicate.NewPredicateFuncs(func(obj client.Object) bool { return obj.(*corev1.Pod).Spec.NodeName == n.Name })
	if err := ctrl.NewControllerManagedBy(mgr).Named("standin-kubelet").
		For(&corev1.Pod{}, builder.WithPredicates(onThisNode)).Complete(reconcile.Func(n.reconcilePod)); err != nil {
		return fmt.Errorf("stand-in kubelet %s: pod controller: %w", n.Name, err)
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			n.Logf("kubelet stand-in stopped: %v", err)
		}
	}()
	return nil
}

// Stop ends every process and removes the mount points it made.
func (n *Node) Stop() {
	n.mu.Lock()
	running := make([]*process, 0, len(n.processes))
	for _, p := range n.processes {
		running = append(running, p)
	}
	n.mu.Unlock()
	for _, p := range running {
		p.stop(5)
	}
	for i := len(n.createdDirs) - 1; i >= 0; i-- {
		_ = os.Remove(n.createdDirs[i])
	}
}

// Logs returns the output of every process the node ran, for failures.
func (n *Node) Logs() string {
	return n.LogsOf("")
}

// LogsOf returns the output of the Pods whose names start with prefix.
func (n *Node) LogsOf(prefix string) string {
	files, _ := filepath.Glob(filepath.Join(n.WorkDir, "pods", prefix+"*.log"))
	var out string
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		out += fmt.Sprintf("==> %s <==\n%s\n", filepath.Base(f), tail(string(raw), 4000))
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// templateHash names a Pod template's revision, as pod-template-hash does.
func templateHash(template corev1.PodTemplateSpec) string {
	raw, _ := yaml.Marshal(template) // a typed struct always marshals
	h := fnv.New32a()
	_, _ = h.Write(raw)
	return fmt.Sprintf("%08x", h.Sum32())[:8]
}
