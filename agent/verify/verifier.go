package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// enactmentOrder is the order in which an enactment's true conditions are
// reported: the first true one is its state.
var enactmentOrder = []nmstateshared.ConditionType{
	nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable,
	nmstateshared.NodeNetworkConfigurationEnactmentConditionFailing,
	nmstateshared.NodeNetworkConfigurationEnactmentConditionProgressing,
	nmstateshared.NodeNetworkConfigurationEnactmentConditionPending,
	nmstateshared.NodeNetworkConfigurationEnactmentConditionAborted,
}

// Verifier keeps policies, this node's enactments and this Node in an
// informer cache; only this node's enactments and Node are listed, so the
// agent's memory does not grow with the cluster.
type Verifier struct {
	nodeName string
	cache    cache.Cache
	// stopCache ends the cache when it failed to sync; otherwise it ends
	// with the context Start was given.
	stopCache context.CancelFunc
}

// NewVerifier builds the cache; call OnChange (optional) and then Start.
func NewVerifier(cfg *rest.Config, scheme *k8sruntime.Scheme, nodeName string) (*Verifier, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&nmstatev1beta1.NodeNetworkConfigurationEnactment{}: {
				Label: labels.SelectorFromSet(labels.Set{nmstateshared.EnactmentNodeLabel: nodeName}),
			},
			&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", nodeName)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("policy verifier cache: %w", err)
	}
	return &Verifier{nodeName: nodeName, cache: c}, nil
}

// OnChange calls fn (which must not block) whenever a policy, one of this
// node's enactments or the Node's labels change.
func (v *Verifier) OnChange(ctx context.Context, fn func()) error {
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { fn() },
		UpdateFunc: func(any, any) { fn() },
		DeleteFunc: func(any) { fn() },
	}
	for _, obj := range []client.Object{
		&nmstatev1.NodeNetworkConfigurationPolicy{},
		&nmstatev1beta1.NodeNetworkConfigurationEnactment{},
		&corev1.Node{},
	} {
		informer, err := v.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("policy verifier informer for %T: %w", obj, err)
		}
		if _, err := informer.AddEventHandler(handler); err != nil {
			return fmt.Errorf("policy verifier handler for %T: %w", obj, err)
		}
	}
	return nil
}

// Start runs the cache in the background for as long as ctx lives and waits
// at most syncTimeout for it to fill. Only the wait is bounded: a cache
// started on a shorter context would stop watching and go on answering from
// what it held at start-up. A cluster without nmstate's CRDs fails here, with
// the reason, and the cache is stopped.
func (v *Verifier) Start(ctx context.Context, syncTimeout time.Duration) error {
	cacheCtx, stopCache := context.WithCancel(ctx)
	v.stopCache = stopCache
	errs := make(chan error, 1)
	go func() { errs <- v.cache.Start(cacheCtx) }()
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if v.cache.WaitForCacheSync(syncCtx) {
		return nil
	}
	stopCache()
	select {
	case err := <-errs:
		return fmt.Errorf("policy verifier cache: %w", err)
	default:
		return fmt.Errorf("policy verifier cache did not sync within %v", syncTimeout)
	}
}

// Verify compares every policy selecting this node with the links.
func (v *Verifier) Verify(ctx context.Context, kernel Kernel) ([]vmv1alpha1.PolicyVerification, error) {
	node := &corev1.Node{}
	if err := v.cache.Get(ctx, client.ObjectKey{Name: v.nodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil // no Node, no policy can select it
		}
		return nil, fmt.Errorf("reading Node %s: %w", v.nodeName, err)
	}
	policies := &nmstatev1.NodeNetworkConfigurationPolicyList{}
	if err := v.cache.List(ctx, policies); err != nil {
		return nil, fmt.Errorf("listing policies: %w", err)
	}
	enactments := &nmstatev1beta1.NodeNetworkConfigurationEnactmentList{}
	if err := v.cache.List(ctx, enactments); err != nil {
		return nil, fmt.Errorf("listing enactments: %w", err)
	}
	var out []vmv1alpha1.PolicyVerification
	for i := range policies.Items {
		policy := &policies.Items[i]
		if !Selects(policy.Spec.NodeSelector, node.Labels) {
			continue
		}
		enactment := findEnactment(enactments.Items, policy.Name)
		out = append(out, Compare(policy.Name, EnactmentState(enactment), desiredRaw(policy, enactment), kernel))
	}
	slices.SortFunc(out, func(a, b vmv1alpha1.PolicyVerification) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Selects applies an NNCP's nodeSelector; an empty selector selects every node.
func Selects(selector, nodeLabels map[string]string) bool {
	return labels.SelectorFromSet(selector).Matches(labels.Set(nodeLabels))
}

func findEnactment(items []nmstatev1beta1.NodeNetworkConfigurationEnactment, policy string) *nmstatev1beta1.NodeNetworkConfigurationEnactment {
	for i := range items {
		if items[i].Labels[nmstateshared.EnactmentPolicyLabel] == policy {
			return &items[i]
		}
	}
	return nil
}

// EnactmentState is the first true condition of an enactment, "" without one.
func EnactmentState(e *nmstatev1beta1.NodeNetworkConfigurationEnactment) string {
	if e == nil {
		return ""
	}
	for _, t := range enactmentOrder {
		if c := e.Status.Conditions.Find(t); c != nil && c.Status == corev1.ConditionTrue {
			return string(t)
		}
	}
	return ""
}

// desiredRaw prefers the enactment's rendering (captures resolved for this
// node) over the policy's template.
func desiredRaw(p *nmstatev1.NodeNetworkConfigurationPolicy, e *nmstatev1beta1.NodeNetworkConfigurationEnactment) []byte {
	if e != nil && len(e.Status.DesiredState.Raw) > 0 {
		return e.Status.DesiredState.Raw
	}
	return p.Spec.DesiredState.Raw
}
