package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/hostnetwork"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/controller/profile"
)

// LeaderLease is the Lease vmop-controller's replicas elect a leader with.
const LeaderLease = manager.LeaderElectionID

// Cleanup removes, after helm uninstall, what only a running operator
// needs, once neither component runs any more:
//   - our finalizers on profiles and HostNetworks (nothing would ever
//     remove them, so deleting those objects later would hang);
//   - node labels and annotations under cap.vm.example.com/;
//   - every NodeCapability, the agents' Leases and the leader Lease.
//
// It never deletes profiles, VMs, disks, cloud-init Secrets, attachments,
// HostNetworks or their nmstate policies (which hold the host configuration
// the admin declared), nor the CRDs.
type Cleanup struct {
	Client client.Client
	// Namespace is the release namespace (Leases, the components' Pods).
	Namespace string
	// Release selects the components' Pods (app.kubernetes.io/instance).
	Release string
	// Timeout bounds the wait for both components to be gone.
	Timeout time.Duration
	// Log receives one line per step, for the hook Job's log.
	Log io.Writer
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Report counts what the cleanup changed.
type Report struct {
	ProfileFinalizers, HostNetworkFinalizers, NodesUnlabelled, NodeCapabilities, Leases int
}

// Run waits until the components are gone, then cleans up. Every step runs
// even when one fails; the error names each failure.
func (c Cleanup) Run(ctx context.Context) (Report, error) {
	var r Report
	if err := c.waitForComponentsGone(ctx); err != nil {
		return r, err
	}
	var errs []error
	var err error
	r.ProfileFinalizers, err = c.dropProfileFinalizers(ctx)
	errs = append(errs, err)
	r.HostNetworkFinalizers, err = c.dropHostNetworkFinalizers(ctx)
	errs = append(errs, err)
	r.NodesUnlabelled, err = c.unlabelNodes(ctx)
	errs = append(errs, err)
	r.NodeCapabilities, err = c.deleteNodeCapabilities(ctx)
	errs = append(errs, err)
	r.Leases, err = c.deleteLeases(ctx)
	errs = append(errs, err)
	c.logf("removed: %d profile finalizers, %d HostNetwork finalizers, node keys on %d nodes, %d NodeCapabilities, %d Leases",
		r.ProfileFinalizers, r.HostNetworkFinalizers, r.NodesUnlabelled, r.NodeCapabilities, r.Leases)
	c.logf("kept: profiles, VMs, disks, cloud-init Secrets, attachments, HostNetworks and their nmstate policies, the CRDs")
	return r, errors.Join(errs...)
}

func (c Cleanup) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c Cleanup) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// waitForComponentsGone: a controller still running would put its
// finalizers back, an agent its NodeCapability and Lease. Helm deletes the
// Deployment and DaemonSet before post-delete hooks run, but their Pods
// take their grace period to stop; the leader Lease, which the controller
// hands back on shutdown, says the leader is gone even where Pods are not
// visible.
func (c Cleanup) waitForComponentsGone(ctx context.Context) error {
	var waitingFor string
	err := wait.PollUntilContextTimeout(ctx, time.Second, c.Timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		waitingFor, err = c.componentsRunning(ctx)
		return waitingFor == "", err
	})
	if err != nil {
		return fmt.Errorf("the components did not stop within %v (%s); nothing was cleaned up: %w", c.Timeout, waitingFor, err)
	}
	c.logf("vmop-controller and vmop-agent are gone")
	return nil
}

// componentsRunning names what still runs, "" when nothing does.
func (c Cleanup) componentsRunning(ctx context.Context) (string, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels{"app.kubernetes.io/instance": c.Release}); err != nil {
		return "", fmt.Errorf("list Pods: %w", err)
	}
	var running []string
	for _, pod := range pods.Items {
		switch pod.Labels["app.kubernetes.io/component"] {
		case "controller", "agent":
			running = append(running, "Pod "+pod.Name)
		}
	}
	var lease coordinationv1.Lease
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: LeaderLease}, &lease)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("read the leader Lease: %w", err)
	}
	if err == nil && leaseHeld(&lease, c.now()) {
		running = append(running, "the leader Lease held by "+*lease.Spec.HolderIdentity)
	}
	return strings.Join(running, ", "), nil
}

// leaseHeld: a holder whose last renewal is younger than the lease duration.
func leaseHeld(lease *coordinationv1.Lease, now time.Time) bool {
	holder := lease.Spec.HolderIdentity
	return holder != nil && *holder != "" && agentlease.Expiry(lease).After(now)
}

func (c Cleanup) dropProfileFinalizers(ctx context.Context) (int, error) {
	var list vmv1alpha1.VirtualMachineProfileList
	if err := c.Client.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list profiles: %w", err)
	}
	objects := make([]client.Object, len(list.Items))
	for i := range list.Items {
		objects[i] = &list.Items[i]
	}
	return c.dropFinalizer(ctx, objects, profile.LegacyFinalizer)
}

func (c Cleanup) dropHostNetworkFinalizers(ctx context.Context) (int, error) {
	var list vmv1alpha1.HostNetworkList
	if err := c.Client.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list HostNetworks: %w", err)
	}
	objects := make([]client.Object, len(list.Items))
	for i := range list.Items {
		objects[i] = &list.Items[i]
	}
	return c.dropFinalizer(ctx, objects, hostnetwork.Finalizer)
}

// dropFinalizer removes one finalizer, leaving everyone else's; the patch
// carries the resourceVersion, so a concurrent change fails it rather than
// being overwritten.
func (c Cleanup) dropFinalizer(ctx context.Context, objects []client.Object, finalizer string) (int, error) {
	var errs []error
	changed := 0
	for _, obj := range objects {
		if !slices.Contains(obj.GetFinalizers(), finalizer) {
			continue
		}
		original := obj.DeepCopyObject().(client.Object)
		obj.SetFinalizers(slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == finalizer }))
		if err := c.Client.Patch(ctx, obj, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove finalizer %s from %s: %w", finalizer, describe(obj), err))
			continue
		}
		c.logf("removed finalizer %s from %s", finalizer, describe(obj))
		changed++
	}
	return changed, errors.Join(errs...)
}

func describe(obj client.Object) string {
	if obj.GetNamespace() == "" {
		return fmt.Sprintf("%s %s", kindOf(obj), obj.GetName())
	}
	return fmt.Sprintf("%s %s/%s", kindOf(obj), obj.GetNamespace(), obj.GetName())
}

// unlabelNodes removes the labels and annotations under our prefix (the
// capabilities placement selected on), leaving every other key.
func (c Cleanup) unlabelNodes(ctx context.Context) (int, error) {
	var nodes corev1.NodeList
	if err := c.Client.List(ctx, &nodes); err != nil {
		return 0, fmt.Errorf("list Nodes: %w", err)
	}
	var errs []error
	changed := 0
	for i := range nodes.Items {
		node := &nodes.Items[i]
		original := node.DeepCopy()
		removed := dropPrefixed(node.Labels) + dropPrefixed(node.Annotations)
		if removed == 0 {
			continue
		}
		if err := c.Client.Patch(ctx, node, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove %s keys from Node %s: %w", placement.LabelPrefix, node.Name, err))
			continue
		}
		c.logf("removed %d %s labels and annotations from Node %s", removed, placement.LabelPrefix, node.Name)
		changed++
	}
	return changed, errors.Join(errs...)
}

func dropPrefixed(m map[string]string) int {
	removed := 0
	for key := range m {
		if strings.HasPrefix(key, placement.LabelPrefix) {
			delete(m, key)
			removed++
		}
	}
	return removed
}

func (c Cleanup) deleteNodeCapabilities(ctx context.Context) (int, error) {
	var list vmv1alpha1.NodeCapabilityList
	if err := c.Client.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list NodeCapabilities: %w", err)
	}
	var errs []error
	deleted := 0
	for i := range list.Items {
		if err := c.Client.Delete(ctx, &list.Items[i]); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("delete NodeCapability %s: %w", list.Items[i].Name, err))
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// deleteLeases removes the agents' Leases (owned by their Node) and the
// leader Lease from the release namespace; other Leases there are not ours.
func (c Cleanup) deleteLeases(ctx context.Context) (int, error) {
	var list coordinationv1.LeaseList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		return 0, fmt.Errorf("list Leases: %w", err)
	}
	var errs []error
	deleted := 0
	for i := range list.Items {
		lease := &list.Items[i]
		if lease.Name != LeaderLease && !agentlease.Is(lease) {
			continue
		}
		if err := c.Client.Delete(ctx, lease); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("delete Lease %s: %w", lease.Name, err))
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// kindOf names a typed object's kind for the log ("HostNetwork").
func kindOf(obj client.Object) string {
	name := fmt.Sprintf("%T", obj)
	return name[strings.LastIndex(name, ".")+1:]
}
