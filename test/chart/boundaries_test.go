package chart

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// nodeNameExtra is the claim a kubelet-bound service account token carries.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// as is a client acting as user (with the given extra claims), so the
// apiserver's RBAC and admission policies decide.
func as(t *testing.T, cp *controlplane.ControlPlane, user string, extra map[string][]string) client.Client {
	t.Helper()
	config := rest.CopyConfig(cp.Config)
	config.Impersonate = rest.ImpersonationConfig{UserName: user, Extra: extra}
	c, err := client.New(config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withToken is a client that authenticates with a bearer token alone, so the
// apiserver's own token authenticator says who it is and with which claims.
func withToken(t *testing.T, cp *controlplane.ControlPlane, token string) client.Client {
	t.Helper()
	config := rest.AnonymousClientConfig(cp.Config)
	config.BearerToken = token
	c, err := client.New(config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// podBoundToken is the token a kubelet mounts into a pod of serviceAccount
// scheduled on node: bound to the pod, and so, from Kubernetes 1.30
// (ServiceAccountTokenPodNodeInfo, on by default; GA in 1.32), carrying the
// node's name, which the apiserver turns into the node-name extra.
func podBoundToken(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, serviceAccount, node string) string {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount + "-" + node, Namespace: namespace},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: serviceAccount,
			Containers: []corev1.Container{{Name: "agent", Image: "vmop-agent"}}}}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount, Namespace: namespace}}
	if err := cp.Client.SubResource("token").Create(ctx, account, request); err != nil {
		t.Fatalf("token for %s bound to pod %s: %v", serviceAccount, pod.Name, err)
	}
	return request.Status.Token
}

// TestTrustBoundaries installs the chart's roles and admission policies on
// a real apiserver and acts as each party: an agent writes only its own
// node's NodeCapability and Lease, and nothing without its node-name claim
// (impersonated, then with a real pod-bound token);
// the controller changes only node labels under its prefix (never owner
// references or finalizers), reads no Secret and writes only objects
// labelled as its own (controllerOwnObjects); a namespace user with edit
// applies profiles but not HostNetworks.
func TestTrustBoundaries(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	if err := cp.StartGarbageCollector(); err != nil { // aggregates view/edit/admin
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
	} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range render(t) {
		if obj.GetKind() == "CustomResourceDefinition" || obj.GetKind() == "Deployment" || obj.GetKind() == "DaemonSet" || isHook(obj) {
			continue
		}
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatalf("install %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	agent := "system:serviceaccount:" + namespace + ":vmop-agent"
	controller := "system:serviceaccount:" + namespace + ":vmop-controller"
	onNodeA := map[string][]string{nodeNameExtra: {"node-a"}}
	waitUntilInEffect(ctx, t, as(t, cp, agent, onNodeA), as(t, cp, controller, nil))

	t.Run("agent of node-a", func(t *testing.T) {
		c := as(t, cp, agent, onNodeA)
		allowed(t, "its own NodeCapability", writeCapability(ctx, c, "node-a"))
		allowed(t, "its own Lease", writeLease(ctx, c, namespace, "node-a"))
		denied(t, "node-b's NodeCapability", writeCapability(ctx, c, "node-b"), "may only write its own node's NodeCapability and Lease, not node-b")
		denied(t, "node-b's Lease", writeLease(ctx, c, namespace, "node-b"), "may only write its own node's")
		denied(t, "a Lease in kube-system", writeLease(ctx, c, "kube-system", "node-a"), "forbidden")
		denied(t, "a Node label", labelNode(ctx, c, "node-a", "team", "x"), "forbidden")
	})
	t.Run("agent without its node-name claim", func(t *testing.T) {
		c := as(t, cp, agent, nil)
		const want = "must run with a service account token bound to its node"
		denied(t, "a NodeCapability", writeCapability(ctx, c, "node-a"), want)
		denied(t, "a Lease", writeLease(ctx, c, namespace, "node-a"), want)
		denied(t, "a Node label", labelNode(ctx, c, "node-a", "team", "x"), "forbidden")
	})
	t.Run("agent with the token its kubelet mounts", func(t *testing.T) {
		c := withToken(t, cp, podBoundToken(ctx, t, cp, "vmop-agent", "node-b"))
		review := &authenticationv1.SelfSubjectReview{}
		if err := c.Create(ctx, review); err != nil {
			t.Fatal(err)
		}
		user := review.Status.UserInfo
		if got := user.Extra[nodeNameExtra]; user.Username != agent || len(got) != 1 || got[0] != "node-b" {
			t.Fatalf("the apiserver takes the token for %s with %s %v, want %s with [node-b]", user.Username, nodeNameExtra, got, agent)
		}
		allowed(t, "its own NodeCapability", writeCapability(ctx, c, "node-b"))
		allowed(t, "its own Lease", writeLease(ctx, c, namespace, "node-b"))
		denied(t, "node-a's NodeCapability", writeCapability(ctx, c, "node-a"), "may only write its own node's NodeCapability and Lease, not node-a")
	})
	t.Run("controller", func(t *testing.T) {
		c := as(t, cp, controller, nil)
		allowed(t, "a capability label", labelNode(ctx, c, "node-a", "cap.vm.example.com/kvm", "true"))
		denied(t, "another label", labelNode(ctx, c, "node-a", "team", "x"), "may only change node labels under cap.vm.example.com/")
		denied(t, "cordoning", cordon(ctx, c, "node-a"), "may not change a Node's spec")
		// A dangling owner reference would have the garbage collector delete the Node.
		ownedByNothing := `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"gone","uid":"00000000-0000-0000-0000-000000000001"}]}}`
		denied(t, "an owner reference", patchNode(ctx, c, "node-a", ownedByNothing), "may not change a Node's owner references")
		denied(t, "a finalizer", patchNode(ctx, c, "node-a", `{"metadata":{"finalizers":["example.com/hold"]}}`), "may not change a Node's finalizers")
	})
	t.Run("controller's own objects", func(t *testing.T) {
		controllerOwnObjects(ctx, t, cp, as(t, cp, controller, nil))
	})
	t.Run("what each service account holds", func(t *testing.T) {
		for _, user := range []string{agent, controller} {
			out, err := exec.Command("kubectl", "--kubeconfig", cp.Kubeconfig, "auth", "can-i", "--list", "--as", user, "-n", namespace).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl auth can-i --list: %v\n%s", err, out)
			}
			t.Logf("kubectl auth can-i --list --as %s -n %s:\n%s", user, namespace, out)
			if !strings.Contains(string(out), "leases.coordination.k8s.io") || !strings.Contains(string(out), "nodecapabilities") {
				t.Errorf("%s lacks its Lease or NodeCapability rights", user)
			}
		}
		out, _ := exec.Command("kubectl", "--kubeconfig", cp.Kubeconfig, "auth", "can-i", "create", "leases", "--as", agent, "-n", "kube-system").CombinedOutput()
		if strings.TrimSpace(string(out)) != "no" {
			t.Errorf("the agent may create Leases in kube-system: %s", out)
		}
	})
	t.Run("namespace user with edit", func(t *testing.T) {
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-edit", Namespace: "tenant"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}
		if err := cp.Client.Create(ctx, binding); err != nil {
			t.Fatal(err)
		}
		c := as(t, cp, "alice", nil)
		profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "vm1", Namespace: "tenant"},
			Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi"}}
		// The aggregation controller folds our rules into edit within moments.
		deadline := time.Now().Add(30 * time.Second)
		for err = c.Create(ctx, profile); err != nil && time.Now().Before(deadline); err = c.Create(ctx, profile) {
			time.Sleep(200 * time.Millisecond)
		}
		allowed(t, "a profile in her namespace", err)
		hostNetwork := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "mine"},
			Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mine", NamespaceSelector: metav1.LabelSelector{}}}
		denied(t, "a HostNetwork", c.Create(ctx, hostNetwork), "forbidden")
	})
}

func allowed(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: denied, want allowed: %v", what, err)
	}
}

func denied(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: allowed, want denied", what)
	case !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err):
		t.Errorf("%s: %v, want a refusal", what, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: %v, want it to say %q", what, err, want)
	default:
		t.Logf("%s: denied: %v", what, err)
	}
}

// waitUntilInEffect waits until the roles and both admission policies just
// created are in effect: the apiserver loads them through informers, a
// moment later (longer on a busy machine). Dry runs probe each: node-a's
// agent may create its own NodeCapability and not node-b's, and the
// controller may not cordon a node.
func waitUntilInEffect(ctx context.Context, t *testing.T, agentOnNodeA, controller client.Client) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, "roles and admission policies in effect", func() (bool, string) {
		own := agentOnNodeA.Create(ctx, &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, client.DryRunAll)
		other := agentOnNodeA.Create(ctx, &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}, client.DryRunAll)
		spec := controller.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
			client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`)), client.DryRunAll)
		inEffect := own == nil && other != nil && strings.Contains(other.Error(), "not node-b") &&
			spec != nil && strings.Contains(spec.Error(), "may not change a Node's spec")
		return inEffect, fmt.Sprintf("own NodeCapability: %v; node-b's: %v; cordon: %v", own, other, spec)
	})
}

// writeCapability creates a node's NodeCapability (if absent) and writes its status, as an agent does.
func writeCapability(ctx context.Context, c client.Client, node string) error {
	capability := &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := c.Create(ctx, capability); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, capability); err != nil {
		return err
	}
	capability.Status.KVM = &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}
	return c.Status().Update(ctx, capability)
}

func writeLease(ctx context.Context, c client.Client, ns, node string) error {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("vmop-agent/" + node), LeaseDurationSeconds: ptr.To[int32](40)}}
	err := c.Create(ctx, lease)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func labelNode(ctx context.Context, c client.Client, node, key, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	return c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.MergePatchType, []byte(patch)))
}

func patchNode(ctx context.Context, c client.Client, node, patch string) error {
	return c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.MergePatchType, []byte(patch)))
}

func cordon(ctx context.Context, c client.Client, node string) error {
	return c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`)))
}
