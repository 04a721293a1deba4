package manager

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
)

// inClusterNamespaceFile is where a pod reads its own namespace; controller-
// runtime takes the leader-election namespace from it when none is given.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// LeaderLog logs, on every replica, which pod holds the leader-election
// Lease: once at start and again whenever the holder changes. `kubectl logs
// deployment/...` picks any replica, often a follower, whose log would
// otherwise not say where the reconciling happens. It watches the one Lease
// (an informer: a watch, relisted when it breaks), so a change is logged as
// it happens, without polling.
type LeaderLog struct {
	Config    *rest.Config
	Namespace string
	Name      string
	// Self is this process's host name, the part of a holder identity before
	// "_" (controller-runtime's identity is <hostname>_<uuid>): a pod's name.
	Self   string
	Logger logr.Logger
}

// NeedLeaderElection is false: followers are the ones that must log.
func (l *LeaderLog) NeedLeaderElection() bool { return false }

// Start watches the Lease until ctx ends.
func (l *LeaderLog) Start(ctx context.Context) error {
	clientset, err := kubernetes.NewForConfig(l.Config)
	if err != nil {
		return fmt.Errorf("leader log: client for %s: %w", l.Config.Host, err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(l.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", l.Name).String()
		}))
	informer := factory.Coordination().V1().Leases().Informer()
	holders := make(chan string, 16)
	send := func(obj any) {
		if lease, ok := obj.(*coordinationv1.Lease); ok {
			holders <- holderOf(lease)
		}
	}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    send,
		UpdateFunc: func(_, obj any) { send(obj) },
		DeleteFunc: func(any) { holders <- "" },
	})
	if err != nil {
		return fmt.Errorf("leader log: handler on Lease %s/%s: %w", l.Namespace, l.Name, err)
	}
	factory.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil
	}
	last := "unknown"
	if len(informer.GetStore().List()) == 0 {
		last = ""
		l.log(last)
	}
	for {
		select {
		case <-ctx.Done():
			factory.Shutdown()
			return nil
		case holder := <-holders:
			if holder != last {
				last = holder
				l.log(holder)
			}
		}
	}
}

// holderOf is the Lease's holder identity, "" when none holds it (a leader
// that released it on shutdown leaves it empty).
func holderOf(lease *coordinationv1.Lease) string {
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// log says who leads in the words a user reading one replica's log needs.
func (l *LeaderLog) log(holder string) {
	pod, _, _ := strings.Cut(holder, "_")
	lease := l.Namespace + "/" + l.Name
	switch {
	case holder == "":
		l.Logger.Info("no replica leads yet", "lease", lease, "self", l.Self)
	case pod == l.Self:
		l.Logger.Info("this replica leads", "leader", pod, "lease", lease, "holderIdentity", holder)
	default:
		l.Logger.Info("this replica follows; the leader's log shows the reconciling: kubectl logs -n "+l.Namespace+" "+pod,
			"leader", pod, "self", l.Self, "lease", lease, "holderIdentity", holder)
	}
}

// leaderElectionNamespace is the namespace controller-runtime elects in:
// the one given, else the pod's own.
func leaderElectionNamespace(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	raw, err := os.ReadFile(inClusterNamespaceFile)
	if err != nil {
		return "", fmt.Errorf("leader-election namespace: none given and %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}
