package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/apply"
	"github.com/jianfenliu/vmoperator/test/observe"
)

func conditionMessage(p *vmv1alpha1.VirtualMachineProfile, conditionType string) string {
	if c := meta.FindStatusCondition(p.Status.Conditions, conditionType); c != nil {
		return c.Message
	}
	return ""
}

// TestAPIErrorOnEachChildKindIsVisible makes the apiserver fail the write of
// each kind of child in turn. The part that could not be done is Unknown,
// never passed; Ready carries the reason and the message; the VM is not
// written; healing the fault lets the profile run.
func TestAPIErrorOnEachChildKindIsVisible(t *testing.T) {
	cases := []struct {
		kind, method, resource string
		condition              string
		withImage              bool
	}{
		{"attachment", "PATCH", "network-attachment-definitions", vmv1alpha1.ConditionNetworksConfigured, false},
		{"blank disk", "POST", "persistentvolumeclaims", vmv1alpha1.ConditionVolumesBound, false},
		{"imported disk", "POST", "datavolumes", vmv1alpha1.ConditionVolumesBound, true},
		{"cloud-init too long to go inline", "PATCH", "secrets", vmv1alpha1.ConditionReady, false},
		{"VM", "PATCH", "virtualmachines", vmv1alpha1.ConditionReady, false},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			ns := newNamespace(t)
			heal := faults.fail(c.method, c.resource, ns, http.StatusInternalServerError)
			defer heal()
			options := []func(*vmv1alpha1.VirtualMachineProfile){withDisk("data", "1Gi", "huamei-sc-ssd", "")}
			if c.withImage {
				options = append(options, withImage("registry.local/os:1"))
			}
			if c.resource == "secrets" {
				options = append(options, withLongNetworkData)
			}
			create(t, profile("flaky", ns, options...))
			p := waitForCondition(t, ns, "flaky", c.condition, metav1.ConditionUnknown, apply.ReasonAPIError)
			ready := meta.FindStatusCondition(p.Status.Conditions, vmv1alpha1.ConditionReady)
			if ready.Status != metav1.ConditionUnknown || ready.Reason != apply.ReasonAPIError || !strings.Contains(ready.Message, "injected fault") {
				t.Fatalf("Ready should carry the error: %s", observe.Describe(p))
			}
			if p.Status.Phase == vmv1alpha1.PhaseRunning || p.Status.ObservedGeneration == p.Generation {
				t.Fatalf("a failed reconcile must not look done: %s", observe.Describe(p))
			}
			if c.kind != "VM" && getObject(t, &kubevirtv1.VirtualMachine{}, ns, "flaky-vm") {
				t.Fatal("the VM was written although an earlier step failed")
			}
			t.Logf("%s: %s", c.kind, observe.Describe(p))
			expectEvent(t, ns, "flaky", apply.ReasonAPIError)
			heal()
			waitForPhase(t, ns, "flaky", vmv1alpha1.PhaseRunning)
		})
	}
}

// TestFailingStepKeepsARunningProfileRunning: an error after the VM runs
// leaves the VM observed (phase Running, vmName set) and marks only what
// could not be checked.
func TestFailingStepKeepsARunningProfileRunning(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("steady", ns))
	waitForPhase(t, ns, "steady", vmv1alpha1.PhaseRunning)
	heal := faults.fail("PATCH", "network-attachment-definitions", ns, http.StatusServiceUnavailable)
	defer heal()
	p := getProfile(t, ns, "steady")
	p.Spec.Networks[0].MTU = ptr.To[int32](9000) // the attachment must be re-applied
	if err := cluster.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	p = waitForCondition(t, ns, "steady", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionUnknown, apply.ReasonAPIError)
	if p.Status.Phase != vmv1alpha1.PhaseRunning || p.Status.VMName != "steady-vm" || p.Status.NodeName == "" {
		t.Fatalf("the running VM must stay visible: %s", observe.Describe(p))
	}
	volumes := meta.FindStatusCondition(p.Status.Conditions, vmv1alpha1.ConditionVolumesBound)
	if volumes == nil || volumes.Status != metav1.ConditionTrue || volumes.Reason == "" {
		t.Fatalf("the disks were checked and are fine: %+v", volumes)
	}
	heal()
	observe.Eventually(t, 30*time.Second, "networks configured again", func() (bool, string) {
		p := getProfile(t, ns, "steady")
		return meta.IsStatusConditionTrue(p.Status.Conditions, vmv1alpha1.ConditionNetworksConfigured) && p.Status.ObservedGeneration == p.Generation,
			observe.Describe(p)
	})
}

// TestQuotaRejectionIsReported: a claim refused by a ResourceQuota is not
// "bound": VolumesBound is False with the apiserver's word, the phase is
// Error, and there is no VM.
func TestQuotaRejectionIsReported(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "small", Namespace: ns},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsStorage: resource.MustParse("1Gi")}}}
	create(t, quota)
	// The quota controller is not running here: fill in the usage it would.
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourceRequestsStorage: resource.MustParse("0")}}
	if err := cluster.Client.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	create(t, profile("greedy", ns, withDisk("data", "5Gi", "huamei-sc-ssd", "")))
	p := waitForCondition(t, ns, "greedy", vmv1alpha1.ConditionVolumesBound, metav1.ConditionFalse, apply.ReasonQuotaExceeded)
	if p.Status.Phase != vmv1alpha1.PhaseError || !strings.Contains(conditionMessage(p, vmv1alpha1.ConditionReady), "exceeded quota") {
		t.Fatalf("quota rejection: %s", observe.Describe(p))
	}
	if getObject(t, &kubevirtv1.VirtualMachine{}, ns, "greedy-vm") {
		t.Fatal("VM created although its disk was refused")
	}
	t.Logf("quota: %s", observe.Describe(p))
	expectEvent(t, ns, "greedy", apply.ReasonQuotaExceeded)
}

// TestWebhookDenialIsReported: a validating webhook that refuses the VM is
// shown as AdmissionDenied with the webhook's message.
func TestWebhookDenialIsReported(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	url, caBundle := denyingWebhook(t, "VMs need an approval ticket")
	webhook := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-vms-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "deny.vms.example.com",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"kubevirt.io"}, APIVersions: []string{"v1"}, Resources: []string{"virtualmachines"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		}},
	}
	create(t, webhook)
	t.Cleanup(func() { _ = cluster.Client.Delete(ctx, webhook) })
	create(t, profile("unapproved", ns))
	p := waitForCondition(t, ns, "unapproved", vmv1alpha1.ConditionReady, metav1.ConditionFalse, apply.ReasonAdmissionDenied)
	if p.Status.Phase != vmv1alpha1.PhaseError || !strings.Contains(conditionMessage(p, vmv1alpha1.ConditionReady), "approval ticket") {
		t.Fatalf("webhook denial: %s", observe.Describe(p))
	}
	t.Logf("webhook: %s", observe.Describe(p))
	expectEvent(t, ns, "unapproved", apply.ReasonAdmissionDenied)
}

// denyingWebhook serves an admission webhook over TLS on loopback that
// refuses everything with message; it returns its URL and CA bundle.
func denyingWebhook(t *testing.T, message string) (string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false,
			Result: &metav1.Status{Code: http.StatusForbidden, Message: message}}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	server.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	server.StartTLS()
	t.Cleanup(server.Close)
	return server.URL + "/validate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
