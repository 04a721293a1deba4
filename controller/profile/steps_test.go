package profile

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/identity"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// call is one request the reconciler makes: a verb on an object kind and name.
type call struct{ verb, kind, name string }

func (c call) String() string { return c.verb + " " + c.kind + " " + c.name }

// injected is the error a failing call returns; its text names the call so
// a test can tell that exactly this error reached the result and the status.
func injected(c call) error {
	return apierrors.NewServiceUnavailable("injected failure of " + c.String())
}

// recorder records every call and fails the occurrence-th call like fail
// (counting from 1), once.
type recorder struct {
	calls      []call
	fail       *call
	occurrence int
	seen       int
	failed     bool
}

func (r *recorder) do(c call) error {
	r.calls = append(r.calls, c)
	if r.fail != nil && *r.fail == c {
		r.seen++
	}
	if r.fail != nil && !r.failed && *r.fail == c && r.seen == r.occurrence {
		r.failed = true
		return injected(c)
	}
	return nil
}

func kindOfValue(obj any) string {
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.TrimSuffix(t.Name(), "List")
}

func stepsScheme(t *testing.T) *k8sruntime.Scheme {
	t.Helper()
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(vmv1alpha1.AddToScheme(scheme))
	utilruntime.Must(kubevirtv1.AddToScheme(scheme))
	utilruntime.Must(cdiv1.AddToScheme(scheme))
	utilruntime.Must(nadv1.AddToScheme(scheme))
	return scheme
}

var stepsNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// stepsObjects is a cluster in which one reconcile of default/web touches
// every step: a bridge network (its attachment applied, an attachment of a
// removed network deleted), a blank disk in a StorageClass and an image
// disk (claim and DataVolume created, the claim of a removed disk
// released), a node that qualifies (placement reads nodes, capabilities
// and Leases), the VM applied and observed, the status written, and the
// finalizer of earlier versions dropped.
func stepsObjects() []client.Object {
	profile := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web", Generation: 1,
			CreationTimestamp: metav1.NewTime(stepsNow.Add(-time.Hour)), Finalizers: []string{vmv1alpha1.FinalizerLegacyProfile}},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi",
			Networks: []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br0"}},
			Disks: []vmv1alpha1.DiskConfig{
				{Name: "data", Size: "1Gi", StorageClassName: "fast"},
				{Name: "root", Size: "10Gi", Image: "registry.local/os:1", Boot: true},
			}},
	}
	// Enough static networks that cloud-init's network data does not fit
	// inline in the VM: the cloud-init step writes its Secret.
	for i := range 16 {
		profile.Spec.Networks = append(profile.Spec.Networks, vmv1alpha1.NetworkConfig{Name: fmt.Sprintf("s%02d", i),
			Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br0", IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic,
				Address: ptr.To(fmt.Sprintf("10.0.%d.10/24", i)), DNSServers: []vmv1alpha1.IPAddress{"10.0.0.53", "10.0.1.53"}}})
	}
	owned := func(obj client.Object, labels map[string]string) client.Object {
		obj.SetLabels(labels)
		obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: vmv1alpha1.GroupVersion.String(), Kind: "VirtualMachineProfile",
			Name: "web", UID: "uid-web", Controller: ptr.To(true)}})
		return obj
	}
	oldNAD := owned(&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-old", UID: "uid-nad"}},
		desired.OwnedLabels(profile))
	oldClaimLabels := desired.OwnedLabels(profile)
	oldClaimLabels[vmv1alpha1.LabelDisk] = "old"
	oldClaim := owned(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-old", UID: "uid-claim"}},
		oldClaimLabels)
	capability := &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: vmv1alpha1.NodeCapabilityStatus{
		KVM:     &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12},
		Bridges: []vmv1alpha1.BridgeStatus{{Name: "br0", Up: true, Ports: []vmv1alpha1.BridgePort{{Name: "eth1"}}}},
		Uplinks: []vmv1alpha1.UplinkStatus{{Name: "eth1", Up: true, Carrier: true}},
	}}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "vmop-system", Name: "n1"},
		Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: stepsNow}, LeaseDurationSeconds: ptr.To[int32](40)}}
	return []client.Object{
		profile, oldNAD, oldClaim, capability, lease,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "test"},
	}
}

// stepsReconciler is a profile reconciler on a fake client whose every call
// goes through rec.
func stepsReconciler(t *testing.T, rec *recorder) (*Reconciler, client.Client) {
	t.Helper()
	scheme := stepsScheme(t)
	builder := fake.NewClientBuilder().WithScheme(scheme).WithObjects(stepsObjects()...).
		WithStatusSubresource(&vmv1alpha1.VirtualMachineProfile{})
	for name, extract := range profileIndexes() {
		builder = builder.WithIndex(&vmv1alpha1.VirtualMachineProfile{}, name, func(obj client.Object) []string {
			return extract(obj.(*vmv1alpha1.VirtualMachineProfile))
		})
	}
	builder = builder.WithIndex(&kubevirtv1.VirtualMachineInstance{}, identity.IndexLive, func(obj client.Object) []string {
		return identity.LiveValues(obj.(*kubevirtv1.VirtualMachineInstance))
	})
	store := builder.Build()
	name := func(key client.ObjectKey) string { return key.String() }
	objName := func(obj client.Object) string { return name(client.ObjectKeyFromObject(obj)) }
	c := interceptor.NewClient(store, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := rec.do(call{"get", kindOfValue(obj), name(key)}); err != nil {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := rec.do(call{"list", kindOfValue(list), ""}); err != nil {
				return err
			}
			return c.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := rec.do(call{"create", kindOfValue(obj), objName(obj)}); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := rec.do(call{"delete", kindOfValue(obj), objName(obj)}); err != nil {
				return err
			}
			return c.Delete(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := rec.do(call{"patch", kindOfValue(obj), objName(obj)}); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(_ context.Context, _ client.WithWatch, obj k8sruntime.ApplyConfiguration, _ ...client.ApplyOption) error {
			// The fake client cannot apply third-party kinds: the call is
			// recorded (and may fail) and otherwise taken as done.
			kind, objectName := appliedKindName(obj)
			return rec.do(call{"apply", kind, objectName})
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if err := rec.do(call{"patch/" + sub, kindOfValue(obj), objName(obj)}); err != nil {
				return err
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	r := &Reconciler{
		Client: c, APIReader: c, Scheme: scheme,
		Deps:           Dependencies{KubeVirt: true, CDI: true, Multus: true},
		LeaseNamespace: "vmop-system",
		Networks:       attach.Policy{AllowUndeclared: true},
		Index:          placement.NewIndex(),
		Now:            func() time.Time { return stepsNow },
	}
	return r, store
}

// appliedKindName reads kind and namespace/name from an apply configuration.
func appliedKindName(obj k8sruntime.ApplyConfiguration) (string, string) {
	u, ok := obj.(interface {
		GetKind() string
		GetName() string
		GetNamespace() string
	})
	if !ok {
		return fmt.Sprintf("%T", obj), ""
	}
	return u.GetKind(), types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}.String()
}

var webRequest = ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: "web"}}

// TestEveryStepReachesEveryCall: the fixture's clean reconcile makes the
// calls of every step, so the failure test below covers them all.
func TestEveryStepReachesEveryCall(t *testing.T) {
	rec := &recorder{}
	r, store := stepsReconciler(t, rec)
	if _, err := r.Reconcile(context.Background(), webRequest); err != nil {
		t.Fatalf("clean reconcile: %v", err)
	}
	seen := map[string]bool{}
	for _, c := range rec.calls {
		seen[c.verb+" "+c.kind] = true
	}
	for _, want := range []string{
		"list HostNetwork", "apply NetworkAttachmentDefinition", "delete NetworkAttachmentDefinition", // networks
		"apply Secret",                                                                                         // cloud-init
		"get StorageClass", "create PersistentVolumeClaim", "create DataVolume", "patch PersistentVolumeClaim", // disks
		"list Node", "list NodeCapability", "list Lease", // placement
		"apply VirtualMachine", "get VirtualMachine", // VM
		"patch/status VirtualMachineProfile", "patch VirtualMachineProfile", // status, legacy finalizer
	} {
		if !seen[want] {
			t.Errorf("the clean reconcile made no %q call; calls: %v", want, rec.calls)
		}
	}
	var profile vmv1alpha1.VirtualMachineProfile
	if err := store.Get(context.Background(), webRequest.NamespacedName, &profile); err != nil {
		t.Fatal(err)
	}
	if len(profile.Finalizers) != 0 || profile.Status.ObservedGeneration != 1 {
		t.Fatalf("clean reconcile left finalizers %v, observedGeneration %d", profile.Finalizers, profile.Status.ObservedGeneration)
	}
}

// TestEveryFailedCallIsReportedAndRecorded makes each call of a clean
// reconcile fail once, in a reconcile of its own. The reconcile must return
// that very error (so the work is retried with backoff), and, when the
// failed call is not the status write itself or comes before it, the
// status it writes must say what could not be done: a step that drops an
// error, or swallows it into a pass, fails this test.
func TestEveryFailedCallIsReportedAndRecorded(t *testing.T) {
	clean := &recorder{}
	r, _ := stepsReconciler(t, clean)
	if _, err := r.Reconcile(context.Background(), webRequest); err != nil {
		t.Fatalf("clean reconcile: %v", err)
	}
	occurrences := map[call]int{}
	for i, target := range clean.calls {
		occurrences[target]++
		occurrence := occurrences[target]
		t.Run(fmt.Sprintf("%02d %s #%d", i, target, occurrence), func(t *testing.T) {
			rec := &recorder{fail: &target, occurrence: occurrence}
			r, store := stepsReconciler(t, rec)
			result, err := r.Reconcile(context.Background(), webRequest)
			if !rec.failed {
				t.Fatalf("the reconcile no longer makes %s (calls: %v)", target, rec.calls)
			}
			marker := injected(target).Error()
			if err == nil || !strings.Contains(err.Error(), marker) {
				t.Fatalf("reconcile returned %v (requeue after %s), want the injected error %q", err, result.RequeueAfter, marker)
			}
			statusWritten := false
			for _, c := range rec.calls {
				statusWritten = statusWritten || (c.verb == "patch/status" && c != target)
			}
			recordable := target.verb != "patch/status" && !(target.verb == "patch" && target.kind == "VirtualMachineProfile") &&
				!(target.verb == "get" && target.kind == "VirtualMachineProfile" && target == clean.calls[0] && occurrence == 1)
			if !recordable {
				return
			}
			if !statusWritten {
				t.Fatalf("%s failed but no status was written to record it; calls: %v", target, rec.calls)
			}
			var profile vmv1alpha1.VirtualMachineProfile
			if err := store.Get(context.Background(), webRequest.NamespacedName, &profile); err != nil {
				t.Fatal(err)
			}
			for _, condition := range profile.Status.Conditions {
				if strings.Contains(condition.Message, marker) && condition.Status != metav1.ConditionTrue {
					return
				}
			}
			t.Fatalf("the status does not record the failed %s: %+v", target, profile.Status.Conditions)
		})
	}
	if len(clean.calls) < 20 {
		t.Fatalf("only %d calls tried: %v", len(clean.calls), clean.calls)
	}
}
