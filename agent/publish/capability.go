package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/capability"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Publisher writes one node's NodeCapability.
type Publisher struct {
	// client must read from the API, not from a cache, so that the
	// comparison is with what is stored.
	client   client.Client
	nodeName string
	writes   prometheus.Counter
	now      func() time.Time
}

// NewPublisher builds a publisher for nodeName; writes counts every create
// and status update.
func NewPublisher(c client.Client, nodeName string, writes prometheus.Counter) *Publisher {
	return &Publisher{client: c, nodeName: nodeName, writes: writes, now: time.Now}
}

// Publish makes the stored status equal to built and reports whether it had
// to write. Conditions keep their stored transition times unless their
// status changed.
func (p *Publisher) Publish(ctx context.Context, built vmv1alpha1.NodeCapabilityStatus) (bool, error) {
	wrote := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		wrote, err = p.publishOnce(ctx, built)
		return err
	})
	return wrote, err
}

func (p *Publisher) publishOnce(ctx context.Context, built vmv1alpha1.NodeCapabilityStatus) (bool, error) {
	stored, created, err := p.getOrCreate(ctx)
	if err != nil {
		return created, err
	}
	desired := built
	desired.Conditions = capability.MergeConditions(stored.Status.Conditions, built.Conditions, metav1.NewTime(p.now().Truncate(time.Second)))
	if apiequality.Semantic.DeepEqual(stored.Status, desired) {
		return created, nil
	}
	stored.Status = desired
	if err := p.client.Status().Update(ctx, stored); err != nil {
		return created, fmt.Errorf("updating NodeCapability %s status: %w", p.nodeName, err)
	}
	p.writes.Inc()
	return true, nil
}

// getOrCreate reads the capability, creating it (owned by the Node) when it
// does not exist yet.
func (p *Publisher) getOrCreate(ctx context.Context) (*vmv1alpha1.NodeCapability, bool, error) {
	stored := &vmv1alpha1.NodeCapability{}
	err := p.client.Get(ctx, client.ObjectKey{Name: p.nodeName}, stored)
	if err == nil {
		return stored, false, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("reading NodeCapability %s: %w", p.nodeName, err)
	}
	owner, err := nodeOwnerRef(ctx, p.client, p.nodeName)
	if err != nil {
		return nil, false, err
	}
	stored = &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{
		Name:            p.nodeName,
		OwnerReferences: []metav1.OwnerReference{owner},
	}}
	if err := p.client.Create(ctx, stored); err != nil {
		return nil, false, fmt.Errorf("creating NodeCapability %s: %w", p.nodeName, err)
	}
	p.writes.Inc()
	return stored, true, nil
}

// nodeOwnerRef makes the Node the owner of this node's NodeCapability and
// Lease, so that deleting an agent pod keeps them and deleting the Node
// removes them (the Lease is namespaced and the Node cluster-scoped: a
// namespaced dependent may have a cluster-scoped owner).
func nodeOwnerRef(ctx context.Context, c client.Client, nodeName string) (metav1.OwnerReference, error) {
	node := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: nodeName}, node); err != nil {
		return metav1.OwnerReference{}, fmt.Errorf("reading Node %s, the owner: %w", nodeName, err)
	}
	return metav1.OwnerReference{
		APIVersion: "v1",
		Kind:       "Node",
		Name:       node.Name,
		UID:        node.UID,
	}, nil
}

// ownedByNode says whether obj already names the Node as an owner. The UID
// is not compared: that would need the Node on every renewal, and an owner
// reference to a deleted Node's UID gets the object collected anyway, after
// which it is created again with the new UID.
func ownedByNode(obj metav1.Object, nodeName string) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.APIVersion == "v1" && ref.Kind == "Node" && ref.Name == nodeName {
			return true
		}
	}
	return false
}
