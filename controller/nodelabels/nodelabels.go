// Package nodelabels projects each node's NodeCapability into labels on the
// Node under vmv1alpha1.CapabilityLabelPrefix, which the VMs' required node affinity
// names, so kube-scheduler places VMs only where their networks can work.
// A node is labelled only for what is asked of it: KVM, SR-IOV, each
// declared host network, and the bridges, VLANs, OVS bridges and links
// some profile needs (the index), never for each of its NICs and bridges.
// Labels are sticky: a label whose capability disappears is removed only
// after a grace period, and while the node's agent is not reporting (its
// Lease expired) only the reporting label goes — new VMs avoid the node,
// running ones are never disturbed, and a restarting agent causes no flap.
package nodelabels

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// Reconciler keeps one node's capability labels.
type Reconciler struct {
	Client client.Client
	// LeaseNamespace holds the agents' per-node Leases.
	LeaseNamespace string
	// Grace is how long a vanished capability keeps its label.
	Grace time.Duration
	// Index says which bridges, VLANs, OVS bridges and links profiles want labelled.
	Index *placement.Index
	Now   func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile brings one node's labels in line with its capability.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var node corev1.Node
	if err := r.Client.Get(ctx, req.NamespacedName, &node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	capability, err := r.capability(ctx, node.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	expiry, err := r.leaseExpiry(ctx, node.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.now()
	reporting := capability != nil && now.Before(expiry)
	var offered map[string]string
	if reporting {
		offers, err := placement.HostNetworkOffers(ctx, r.Client)
		if err != nil {
			return ctrl.Result{}, err
		}
		offered = placement.NodeLabels(&capability.Status, r.Index.Wanted(), offers)
		offered[vmv1alpha1.LabelReporting] = "true"
	}
	plan := planLabels(node.Labels, absentSince(&node), offered, reporting, now, r.Grace)
	if err := r.patch(ctx, &node, plan); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: plan.nextCheck(now, expiry, reporting)}, nil
}

func (r *Reconciler) capability(ctx context.Context, name string) (*vmv1alpha1.NodeCapability, error) {
	var capability vmv1alpha1.NodeCapability
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, &capability)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get NodeCapability %s: %w", name, err)
	}
	return &capability, nil
}

func (r *Reconciler) leaseExpiry(ctx context.Context, name string) (time.Time, error) {
	var lease coordinationv1.Lease
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: r.LeaseNamespace, Name: name}, &lease)
	if apierrors.IsNotFound(err) {
		return time.Time{}, nil
	}
	return agentlease.Expiry(&lease), err
}

func absentSince(node *corev1.Node) map[string]time.Time {
	since := map[string]time.Time{}
	if raw := node.Annotations[vmv1alpha1.AnnotationAbsentSince]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &since) // a mangled annotation restarts the grace periods
	}
	return since
}

// plan is the labels and grace bookkeeping a node should carry.
type plan struct {
	labels       map[string]string // owned labels only
	absentSince  map[string]time.Time
	earliestGone time.Time // when the next pending label's grace ends
}

// planLabels decides the node's owned labels. While the agent reports,
// offered labels are set, the reporting label is set, and labels no longer
// offered start (or finish) their grace period. While it does not, only the
// reporting label is dropped and everything else is left as it was.
func planLabels(current map[string]string, since map[string]time.Time, offered map[string]string, reporting bool, now time.Time, grace time.Duration) plan {
	p := plan{labels: map[string]string{}, absentSince: map[string]time.Time{}}
	for key, value := range current {
		if placement.Owned(key) && key != vmv1alpha1.LabelReporting {
			p.labels[key] = value
		}
	}
	if !reporting {
		for key, t := range since {
			if _, ok := p.labels[key]; ok {
				p.absentSince[key] = t
			}
		}
		return p
	}
	for key, value := range offered {
		p.labels[key] = value
	}
	for key := range p.labels {
		if _, ok := offered[key]; ok {
			continue
		}
		gone, pending := since[key]
		if !pending {
			gone = now
		}
		if now.Sub(gone) >= grace {
			delete(p.labels, key)
			continue
		}
		p.absentSince[key] = gone
		if end := gone.Add(grace); p.earliestGone.IsZero() || end.Before(p.earliestGone) {
			p.earliestGone = end
		}
	}
	return p
}

// nextCheck is the next moment something changes without an event: a
// grace period ending, or the Lease lapsing.
func (p plan) nextCheck(now, leaseExpiry time.Time, reporting bool) time.Duration {
	var next time.Time
	if reporting {
		next = leaseExpiry
	}
	if !p.earliestGone.IsZero() && (next.IsZero() || p.earliestGone.Before(next)) {
		next = p.earliestGone
	}
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(now), time.Second) + 100*time.Millisecond
}

// sameTimes compares two grace bookkeeping maps. (Semantic.DeepEqual
// panics on time.Time's unexported fields.)
func sameTimes(a, b map[string]time.Time) bool {
	return maps.EqualFunc(a, b, func(x, y time.Time) bool { return x.Equal(y) })
}

// patch writes the owned labels and the annotation when they differ.
func (r *Reconciler) patch(ctx context.Context, node *corev1.Node, p plan) error {
	labels := map[string]any{}
	for key := range node.Labels {
		if placement.Owned(key) {
			if _, keep := p.labels[key]; !keep {
				labels[key] = nil
			}
		}
	}
	for key, value := range p.labels {
		if node.Labels[key] != value {
			labels[key] = value
		}
	}
	annotation := any(nil)
	if len(p.absentSince) > 0 {
		raw, err := json.Marshal(p.absentSince)
		if err != nil {
			return fmt.Errorf("node %s: encode %s: %w", node.Name, vmv1alpha1.AnnotationAbsentSince, err)
		}
		annotation = string(raw)
	}
	annotationChanged := !sameTimes(absentSince(node), p.absentSince)
	if len(labels) == 0 && !annotationChanged {
		return nil
	}
	metadata := map[string]any{"labels": labels}
	if annotationChanged {
		metadata["annotations"] = map[string]any{vmv1alpha1.AnnotationAbsentSince: annotation}
	}
	raw, err := json.Marshal(map[string]any{"metadata": metadata})
	if err != nil {
		return fmt.Errorf("node %s: encode label patch: %w", node.Name, err)
	}
	if err := r.Client.Patch(ctx, node, client.RawPatch(types.MergePatchType, raw)); err != nil {
		return fmt.Errorf("patch labels of node %s: %w", node.Name, err)
	}
	return nil
}
