package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/manager"
)

// LeaderLease is the Lease vmop-controller's replicas elect a leader with.
const LeaderLease = manager.LeaderElectionID

// Cleanup removes, after helm uninstall, what only a running operator
// needs, once neither component runs any more:
//   - our finalizers on profiles and HostNetworks (nothing would ever
//     remove them, so deleting those objects later would hang), but not
//     on a HostNetwork being deleted: the garbage collector would then
//     delete its nmstate policy without reverting the host;
//   - node annotations under cap.vm.example.com/, and the node labels
//     there that no KubeVirt VM's (or VMI's) required node affinity or
//     node selector names: those stay, or the VM could never restart or
//     live-migrate again;
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

// Report counts what the cleanup changed, and what it left on purpose.
type Report struct {
	ProfileFinalizers, HostNetworkFinalizers, NodesUnlabelled, NodeCapabilities, Leases int
	// HostNetworksDeleting kept their finalizer (deletion in progress).
	HostNetworksDeleting int
	// NodeLabelsKept counts the label keys kept because a VM names them.
	NodeLabelsKept int
	// AgentPodsSkipped were not waited for: their node is NotReady or gone.
	AgentPodsSkipped int
}

// Run waits until the components are gone, then cleans up. Every step runs
// even when one fails; the error names each failure.
func (c Cleanup) Run(ctx context.Context) (Report, error) {
	var r Report
	var err error
	if r.AgentPodsSkipped, err = c.waitForComponentsGone(ctx); err != nil {
		return r, err
	}
	var errs []error
	r.ProfileFinalizers, err = c.dropProfileFinalizers(ctx)
	errs = append(errs, err)
	r.HostNetworkFinalizers, r.HostNetworksDeleting, err = c.dropHostNetworkFinalizers(ctx)
	errs = append(errs, err)
	r.NodesUnlabelled, r.NodeLabelsKept, err = c.unlabelNodes(ctx)
	errs = append(errs, err)
	r.NodeCapabilities, err = c.deleteNodeCapabilities(ctx)
	errs = append(errs, err)
	r.Leases, err = c.deleteLeases(ctx)
	errs = append(errs, err)
	c.logf("removed: %d profile finalizers, %d HostNetwork finalizers, node keys on %d nodes, %d NodeCapabilities, %d Leases",
		r.ProfileFinalizers, r.HostNetworkFinalizers, r.NodesUnlabelled, r.NodeCapabilities, r.Leases)
	c.logf("kept: profiles, VMs, disks, cloud-init Secrets, attachments, HostNetworks and their nmstate policies, the CRDs; "+
		"%d node label keys VMs require; the finalizer of %d HostNetworks being deleted; %d agent Pods on down nodes not waited for",
		r.NodeLabelsKept, r.HostNetworksDeleting, r.AgentPodsSkipped)
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
//
// An agent Pod on a node that is NotReady or gone stays Terminating until
// the node comes back, which may be never: it is not waited for (it is
// logged and counted). It cannot undo the cleanup: helm uninstall already
// deleted the agent's RBAC, so it can no longer write. Controller Pods
// and the leader Lease are always waited for, up to Timeout.
func (c Cleanup) waitForComponentsGone(ctx context.Context) (skippedAgents int, err error) {
	var waitingFor string
	skipped := map[string]bool{}
	err = wait.PollUntilContextTimeout(ctx, time.Second, c.Timeout, true, func(ctx context.Context) (bool, error) {
		var down []string
		var err error
		waitingFor, down, err = c.componentsRunning(ctx)
		for _, pod := range down {
			if !skipped[pod] {
				skipped[pod] = true
				c.logf("not waiting for %s: its node is down, and the agent's rights are gone with helm uninstall, so it can no longer write", pod)
			}
		}
		return waitingFor == "", err
	})
	if err != nil {
		return len(skipped), fmt.Errorf("the components did not stop within %v (%s); nothing was cleaned up: %w", c.Timeout, waitingFor, err)
	}
	c.logf("vmop-controller and vmop-agent are gone (%d agent Pods on down nodes not waited for)", len(skipped))
	return len(skipped), nil
}

// componentsRunning names what still runs, "" when nothing does, and the
// agent Pods it does not wait for because their node is down.
func (c Cleanup) componentsRunning(ctx context.Context) (string, []string, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels{"app.kubernetes.io/instance": c.Release}); err != nil {
		return "", nil, fmt.Errorf("list Pods: %w", err)
	}
	var nodes corev1.NodeList
	if err := c.Client.List(ctx, &nodes); err != nil {
		return "", nil, fmt.Errorf("list Nodes: %w", err)
	}
	var running, down []string
	for _, pod := range pods.Items {
		switch pod.Labels["app.kubernetes.io/component"] {
		case "controller":
			running = append(running, "Pod "+pod.Name)
		case "agent":
			if why := nodeDown(nodes.Items, pod.Spec.NodeName); why != "" {
				down = append(down, fmt.Sprintf("agent Pod %s (Node %s %s)", pod.Name, pod.Spec.NodeName, why))
				continue
			}
			running = append(running, "Pod "+pod.Name)
		}
	}
	var lease coordinationv1.Lease
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: LeaderLease}, &lease)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", nil, fmt.Errorf("read the leader Lease: %w", err)
	}
	if err == nil && leaseHeld(&lease, c.now()) {
		running = append(running, "the leader Lease held by "+*lease.Spec.HolderIdentity)
	}
	return strings.Join(running, ", "), down, nil
}

// nodeDown says why the named node counts as down ("is gone", "is
// NotReady"), "" when it is Ready. A Pod not yet bound to a node runs
// nowhere, so it is waited for like any other (it may still start).
func nodeDown(nodes []corev1.Node, name string) string {
	if name == "" {
		return ""
	}
	i := slices.IndexFunc(nodes, func(n corev1.Node) bool { return n.Name == name })
	if i < 0 {
		return "is gone"
	}
	for _, condition := range nodes[i].Status.Conditions {
		if condition.Type == corev1.NodeReady {
			if condition.Status == corev1.ConditionTrue {
				return ""
			}
			if condition.LastTransitionTime.IsZero() {
				return fmt.Sprintf("is NotReady (Ready=%s)", condition.Status)
			}
			return fmt.Sprintf("is NotReady (Ready=%s since %s)", condition.Status, condition.LastTransitionTime.UTC().Format(time.RFC3339))
		}
	}
	return "is NotReady (no Ready condition)"
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
	return c.dropFinalizer(ctx, objects, vmv1alpha1.FinalizerLegacyProfile)
}

// dropHostNetworkFinalizers leaves the finalizer of a HostNetwork being
// deleted: without it the garbage collector would delete its nmstate
// policy at once, and nmstate would keep the host as the policy built it,
// with nobody ever reverting it. The deletion completes when an operator
// runs again, or when the admin removes the finalizer knowingly.
func (c Cleanup) dropHostNetworkFinalizers(ctx context.Context) (dropped, deleting int, err error) {
	var list vmv1alpha1.HostNetworkList
	if err := c.Client.List(ctx, &list); err != nil {
		return 0, 0, fmt.Errorf("list HostNetworks: %w", err)
	}
	var objects []client.Object
	for i := range list.Items {
		hn := &list.Items[i]
		if hn.DeletionTimestamp != nil && slices.Contains(hn.Finalizers, vmv1alpha1.FinalizerHostNetwork) {
			c.logf("kept finalizer %s on HostNetwork %s, which is being deleted: its host configuration is not reverted yet. "+
				"The deletion completes when vmop-controller runs again, or when you remove the finalizer knowing that nmstate then keeps the host as it is",
				vmv1alpha1.FinalizerHostNetwork, hn.Name)
			deleting++
			continue
		}
		objects = append(objects, hn)
	}
	dropped, err = c.dropFinalizer(ctx, objects, vmv1alpha1.FinalizerHostNetwork)
	return dropped, deleting, err
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

// unlabelNodes removes the annotations under our prefix and the labels
// there (the capabilities placement selected on) that no VM needs,
// leaving every other key. When the VMs cannot be listed, it removes no
// label: it cannot tell which ones a VM needs.
func (c Cleanup) unlabelNodes(ctx context.Context) (changed, kept int, err error) {
	needed, err := c.labelsVMsNeed(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("no node label removed: %w", err)
	}
	for _, key := range slices.Sorted(maps.Keys(needed)) {
		c.logf("kept node label %s where nodes have it: the required node affinity of %s names it", key, summarize(needed[key], 3))
	}
	var nodes corev1.NodeList
	if err := c.Client.List(ctx, &nodes); err != nil {
		return 0, len(needed), fmt.Errorf("list Nodes: %w", err)
	}
	var errs []error
	for i := range nodes.Items {
		node := &nodes.Items[i]
		original := node.DeepCopy()
		removed := dropPrefixed(node.Labels, needed) + dropPrefixed(node.Annotations, nil)
		if removed == 0 {
			continue
		}
		if err := c.Client.Patch(ctx, node, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove %s keys from Node %s: %w", vmv1alpha1.CapabilityLabelPrefix, node.Name, err))
			continue
		}
		c.logf("removed %d %s labels and annotations from Node %s", removed, vmv1alpha1.CapabilityLabelPrefix, node.Name)
		changed++
	}
	return changed, len(needed), errors.Join(errs...)
}

// dropPrefixed deletes the keys under our prefix but those in keep.
func dropPrefixed(m map[string]string, keep map[string][]string) int {
	removed := 0
	for key := range m {
		if _, needed := keep[key]; !needed && strings.HasPrefix(key, vmv1alpha1.CapabilityLabelPrefix) {
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

// labelsVMsNeed maps each node label key under our prefix that a KubeVirt
// VirtualMachine's template or a VirtualMachineInstance requires to the
// VMs requiring it ("namespace/name"). The VMI counts too: a running
// instance keeps the affinity it started with, which its live migration
// target must satisfy, even when the VM's template has changed since.
// Without KubeVirt's CRDs there are no VMs.
func (c Cleanup) labelsVMsNeed(ctx context.Context) (map[string][]string, error) {
	needed := map[string][]string{}
	var vms kubevirtv1.VirtualMachineList
	if err := c.Client.List(ctx, &vms); err != nil && !absentAPI(err) {
		return nil, fmt.Errorf("list KubeVirt VirtualMachines: %w", err)
	}
	for i := range vms.Items {
		if template := vms.Items[i].Spec.Template; template != nil {
			addNeeded(needed, "VM "+vms.Items[i].Namespace+"/"+vms.Items[i].Name, &template.Spec)
		}
	}
	var vmis kubevirtv1.VirtualMachineInstanceList
	if err := c.Client.List(ctx, &vmis); err != nil && !absentAPI(err) {
		return nil, fmt.Errorf("list KubeVirt VirtualMachineInstances: %w", err)
	}
	for i := range vmis.Items {
		addNeeded(needed, "VMI "+vmis.Items[i].Namespace+"/"+vmis.Items[i].Name, &vmis.Items[i].Spec)
	}
	return needed, nil
}

// absentAPI: the kind is not served (its CRD is not installed).
func absentAPI(err error) bool {
	return meta.IsNoMatchError(err) || apierrors.IsNotFound(err)
}

// addNeeded records the label keys under our prefix that spec's required
// node affinity (match expressions) or node selector names.
func addNeeded(needed map[string][]string, who string, spec *kubevirtv1.VirtualMachineInstanceSpec) {
	var keys []string
	for key := range spec.NodeSelector {
		keys = append(keys, key)
	}
	if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil && spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, expression := range term.MatchExpressions {
				keys = append(keys, expression.Key)
			}
		}
	}
	for _, key := range keys {
		if strings.HasPrefix(key, vmv1alpha1.CapabilityLabelPrefix) && !slices.Contains(needed[key], who) {
			needed[key] = append(needed[key], who)
		}
	}
}

// summarize names the first n items and counts the rest.
func summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
