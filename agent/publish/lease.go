package publish

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/liveness"
)

// Lease renews one Lease per node: the controller reads its renewTime to
// tell a live agent from a dead one without the capability being rewritten.
type Lease struct {
	client    client.Client
	namespace string
	nodeName  string
	duration  time.Duration
	now       func() time.Time
}

// NewLease builds a renewer for the Lease named after nodeName in namespace.
// duration is what the Lease promises; renew well within it.
func NewLease(c client.Client, namespace, nodeName string, duration time.Duration) *Lease {
	return &Lease{client: c, namespace: namespace, nodeName: nodeName, duration: duration, now: time.Now}
}

// Renew creates the Lease or moves its renewTime to now. The Lease is owned
// by the Node, so the garbage collector removes it with the Node; a Lease
// without that owner (made by an older agent) gets it here. No Lease is
// created while the Node cannot be read: nothing would ever collect it.
func (l *Lease) Renew(ctx context.Context) error {
	now := metav1.NewMicroTime(l.now())
	key := client.ObjectKey{Namespace: l.namespace, Name: l.nodeName}
	lease := &coordinationv1.Lease{}
	err := l.client.Get(ctx, key, lease)
	if apierrors.IsNotFound(err) {
		return l.create(ctx, now)
	}
	if err != nil {
		return fmt.Errorf("reading Lease %s: %w", key, err)
	}
	if !ownedByNode(lease, l.nodeName) {
		owner, err := nodeOwnerRef(ctx, l.client, l.nodeName)
		if err != nil {
			return fmt.Errorf("adding the owner to Lease %s: %w", key, err)
		}
		lease.OwnerReferences = append(lease.OwnerReferences, owner)
	}
	lease.Spec.RenewTime = &now
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(l.duration / time.Second))
	if err := l.client.Update(ctx, lease); err != nil {
		return fmt.Errorf("renewing Lease %s: %w", key, err)
	}
	return nil
}

func (l *Lease) create(ctx context.Context, now metav1.MicroTime) error {
	key := client.ObjectKey{Namespace: l.namespace, Name: l.nodeName}
	owner, err := nodeOwnerRef(ctx, l.client, l.nodeName)
	if err != nil {
		return fmt.Errorf("creating Lease %s: %w", key, err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       l.namespace,
			Name:            l.nodeName,
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("vmop-agent/" + l.nodeName),
			LeaseDurationSeconds: ptr.To(int32(l.duration / time.Second)),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	if err := l.client.Create(ctx, lease); err != nil {
		return fmt.Errorf("creating Lease %s: %w", key, err)
	}
	return nil
}

// Run renews every interval until ctx ends, telling progress (which may be
// nil) when each attempt begins and ends. A failed renewal is reported
// through onError and retried at the next tick; the Lease expiring is the
// signal the controller acts on, not a crash here.
func (l *Lease) Run(ctx context.Context, interval time.Duration, progress *liveness.Loop, onError func(error)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		progress.Begin()
		err := l.Renew(ctx)
		progress.End()
		if err != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
