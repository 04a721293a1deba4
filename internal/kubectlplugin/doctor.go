package kubectlplugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/controller/profile"
	"github.com/jianfenliu/vmoperator/deploy/crds"
	"github.com/jianfenliu/vmoperator/version"
)

// level is how bad a finding is: a problem fails doctor, a warning does not.
type level int

const (
	levelOK level = iota
	levelWarn
	levelProblem
)

func (l level) String() string {
	return [...]string{"ok", "WARN", "FAIL"}[l]
}

// finding is one line of doctor's report; every warning and problem has a fix.
type finding struct {
	level   level
	subject string
	fix     string
}

func ok(format string, args ...any) finding {
	return finding{level: levelOK, subject: fmt.Sprintf(format, args...)}
}

func warn(fix, format string, args ...any) finding {
	return finding{level: levelWarn, subject: fmt.Sprintf(format, args...), fix: fix}
}

func problem(fix, format string, args ...any) finding {
	return finding{level: levelProblem, subject: fmt.Sprintf(format, args...), fix: fix}
}

// section is a titled group of findings.
type section struct {
	title    string
	findings []finding
}

// cluster is what several checks read once.
type cluster struct {
	deps          profile.Dependencies
	settings      settings
	hostNetworks  []vmv1alpha1.HostNetwork
	profiles      []vmv1alpha1.VirtualMachineProfile
	now           time.Time
	fromChartPath bool // a controller Deployment of the chart exists
}

// doctor checks, in order, the dependencies and their versions, nmstate's
// NMState resource, the controller, an agent on every node and fresh, the
// HostNetworks, the admission policies, webhooks and our CRDs, and prints
// each finding with a fix. It fails when any check found a problem.
func doctor(ctx context.Context, s *session, env Env, _ []string) (int, error) {
	state, err := readCluster(ctx, s, env.Now())
	if err != nil {
		return ExitProblems, err
	}
	checks := []struct {
		title string
		run   func(context.Context, client.Reader, *cluster) ([]finding, error)
	}{
		{"Dependencies", dependencies},
		{"nmstate's NMState resource", nmstateResource},
		{"Controller", controller},
		{"Agents (NodeCapability and Lease in " + state.settings.leaseNamespace + ")", agents},
		{"HostNetworks", hostNetworksReady},
		{"Admission policies", admissionPolicies},
		{"Webhooks", webhooks},
		{"CRDs", ourCRDs},
	}
	var sections []section
	for _, check := range checks {
		findings, err := check.run(ctx, s.client, state)
		if err != nil {
			return ExitProblems, fmt.Errorf("%s: %w", check.title, err)
		}
		sections = append(sections, section{title: check.title, findings: findings})
	}
	if printReport(env.Stdout, sections) > 0 {
		return ExitProblems, nil
	}
	return ExitOK, nil
}

func readCluster(ctx context.Context, s *session, now time.Time) (*cluster, error) {
	deps, err := manager.DiscoverDependencies(s.client.RESTMapper())
	if err != nil {
		return nil, err
	}
	cfg, err := readSettings(ctx, s.client, s.flags.overrides)
	if err != nil {
		return nil, err
	}
	var hostNetworks vmv1alpha1.HostNetworkList
	if err := s.client.List(ctx, &hostNetworks); err != nil {
		return nil, fmt.Errorf("list HostNetworks: %w", err)
	}
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := s.client.List(ctx, &profiles); err != nil {
		return nil, fmt.Errorf("list VirtualMachineProfiles: %w", err)
	}
	return &cluster{deps: deps, settings: cfg, hostNetworks: hostNetworks.Items, profiles: profiles.Items, now: now,
		fromChartPath: cfg.controller != ""}, nil
}

// printReport prints the sections and returns the number of problems.
func printReport(w io.Writer, sections []section) int {
	problems, warnings := 0, 0
	for _, s := range sections {
		fmt.Fprintln(w, s.title)
		for _, f := range s.findings {
			fmt.Fprintf(w, "  %-4s  %s\n", f.level, f.subject)
			if f.fix != "" {
				fmt.Fprintf(w, "        fix: %s\n", f.fix)
			}
			switch f.level {
			case levelProblem:
				problems++
			case levelWarn:
				warnings++
			}
		}
	}
	fmt.Fprintf(w, "%d problem(s), %d warning(s).\n", problems, warnings)
	return problems
}

// dependencies: KubeVirt, CDI, Multus and nmstate served, with the version
// their operator reports or their DaemonSet's image tag. A missing one is
// a problem when something uses it: Multus and KubeVirt always, CDI for a
// disk with an image, nmstate for a managed HostNetwork.
func dependencies(ctx context.Context, c client.Reader, state *cluster) ([]finding, error) {
	var daemonSets appsv1.DaemonSetList
	if err := c.List(ctx, &daemonSets); err != nil {
		return nil, fmt.Errorf("list DaemonSets: %w", err)
	}
	kubeVirtVersion, err := operatorVersion(ctx, c, schema.GroupVersionKind{Group: "kubevirt.io", Version: "v1", Kind: "KubeVirtList"}, "observedKubeVirtVersion")
	if err != nil {
		return nil, err
	}
	cdiVersion, err := operatorVersion(ctx, c, schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "CDIList"}, "observedVersion")
	if err != nil {
		return nil, err
	}
	const install = " (docs/install.md)"
	deps := []struct {
		name, api, version, fix string
		installed, needed       bool
		usedBy                  string
	}{
		{"KubeVirt", "VirtualMachine (kubevirt.io/v1)", kubeVirtVersion,
			"kubectl create -f https://github.com/kubevirt/kubevirt/releases/download/$KUBEVIRT_VERSION/kubevirt-operator.yaml, then kubevirt-cr.yaml" + install,
			state.deps.KubeVirt, true, "every profile"},
		{"CDI", "DataVolume (cdi.kubevirt.io/v1beta1)", cdiVersion,
			"kubectl create -f https://github.com/kubevirt/containerized-data-importer/releases/download/$CDI_VERSION/cdi-operator.yaml, then cdi-cr.yaml" + install,
			state.deps.CDI, imageDisks(state.profiles) > 0, fmt.Sprintf("%d profile(s) with an image disk", imageDisks(state.profiles))},
		{"Multus", "NetworkAttachmentDefinition (k8s.cni.cncf.io/v1)", daemonSetVersion(daemonSets.Items, "multus"),
			"kubectl apply -f https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/$MULTUS_VERSION/deployments/multus-daemonset-thick.yml" + install,
			state.deps.Multus, true, "every profile's networks"},
		{"nmstate", "NodeNetworkConfigurationPolicy (nmstate.io/v1)", daemonSetVersion(daemonSets.Items, "nmstate-handler"),
			"install kubernetes-nmstate's operator and create an NMState resource" + install,
			state.deps.NMState, managedHostNetworks(state.hostNetworks) > 0, fmt.Sprintf("%d managed HostNetwork(s)", managedHostNetworks(state.hostNetworks))},
	}
	var findings []finding
	for _, d := range deps {
		switch {
		case d.installed:
			findings = append(findings, ok("%s installed, version %s", d.name, d.version))
		case d.needed:
			findings = append(findings, problem(d.fix, "%s missing: %s is not served; needed by %s", d.name, d.api, d.usedBy))
		default:
			findings = append(findings, warn(d.fix, "%s missing: %s is not served (nothing needs it yet)", d.name, d.api))
		}
	}
	return findings, nil
}

// operatorVersion reads the version an operator's resource reports, or
// says why it is unknown.
func operatorVersion(ctx context.Context, c client.Reader, gvk schema.GroupVersionKind, field string) (string, error) {
	kind := strings.TrimSuffix(gvk.Kind, "List")
	list, err := listKind(ctx, c, gvk)
	if err != nil {
		return "", err
	}
	if list == nil || len(list.Items) == 0 {
		return "unknown (no " + kind + " resource)", nil
	}
	if v, _, _ := unstructured.NestedString(list.Items[0].Object, "status", field); v != "" {
		return v, nil
	}
	return "unknown (" + kind + " " + list.Items[0].GetName() + " reports none yet)", nil
}

// daemonSetVersion is the image tag of the first DaemonSet whose name
// holds part: Multus and nmstate's handler run as DaemonSets.
func daemonSetVersion(daemonSets []appsv1.DaemonSet, part string) string {
	for i := range daemonSets {
		d := &daemonSets[i]
		if !strings.Contains(d.Name, part) || len(d.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		image := d.Spec.Template.Spec.Containers[0].Image
		name := image[strings.LastIndex(image, "/")+1:]
		if _, tag, found := strings.Cut(name, ":"); found {
			return tag + " (DaemonSet " + d.Namespace + "/" + d.Name + ")"
		}
		return "unknown (DaemonSet " + d.Namespace + "/" + d.Name + "'s image has no tag)"
	}
	return "unknown (no " + part + " DaemonSet found)"
}

func imageDisks(profiles []vmv1alpha1.VirtualMachineProfile) int {
	n := 0
	for i := range profiles {
		for _, disk := range profiles[i].Spec.Disks {
			if disk.Image != "" {
				n++
				break
			}
		}
	}
	return n
}

func managedHostNetworks(hostNetworks []vmv1alpha1.HostNetwork) int {
	n := 0
	for i := range hostNetworks {
		if hostNetworks[i].Spec.Managed {
			n++
		}
	}
	return n
}

// nmstateResource: kubernetes-nmstate's operator runs the handler only
// once an NMState resource exists.
func nmstateResource(ctx context.Context, c client.Reader, state *cluster) ([]finding, error) {
	if !state.deps.NMState {
		return []finding{ok("skipped: nmstate is not installed")}, nil
	}
	list, err := listKind(ctx, c, schema.GroupVersionKind{Group: "nmstate.io", Version: "v1", Kind: "NMStateList"})
	if err != nil {
		return nil, err
	}
	create := "kubectl apply -f - <<<'{\"apiVersion\":\"nmstate.io/v1\",\"kind\":\"NMState\",\"metadata\":{\"name\":\"nmstate\"}}'"
	switch {
	case list == nil:
		return []finding{warn("install kubernetes-nmstate's operator (docs/install.md), or make sure nmstate-handler runs on every node",
			"the NMState kind is not served: nmstate's operator is not installed, so nothing here runs its handler")}, nil
	case len(list.Items) == 0:
		return []finding{problem(create, "no NMState resource: nmstate's operator runs no handler, so no policy of a managed HostNetwork is applied")}, nil
	}
	return []finding{ok("NMState %s", list.Items[0].GetName())}, nil
}

// controller: the chart's Deployment and its ready replicas.
func controller(ctx context.Context, c client.Reader, state *cluster) ([]finding, error) {
	if state.settings.controller == "" {
		return []finding{warn("install the chart (docs/install.md); make run and make dev run the controller outside the cluster",
			"no controller Deployment (labels app.kubernetes.io/name=vmoperator, app.kubernetes.io/component=controller)")}, nil
	}
	var deployment appsv1.Deployment
	namespace, name, _ := strings.Cut(state.settings.controller, "/")
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &deployment); err != nil {
		return nil, fmt.Errorf("read Deployment %s: %w", state.settings.controller, err)
	}
	if deployment.Status.ReadyReplicas == 0 {
		return []finding{problem("kubectl -n "+namespace+" describe deployment "+name+", and read its pods' logs",
			"controller %s has no ready replica", state.settings.controller)}, nil
	}
	return []finding{ok("controller %s: %d ready replica(s)", state.settings.controller, deployment.Status.ReadyReplicas)}, nil
}

// agents: every node has a NodeCapability and an agent Lease that has not
// lapsed; the ages say how fresh each is.
func agents(ctx context.Context, c client.Reader, state *cluster) ([]finding, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	var capabilities vmv1alpha1.NodeCapabilityList
	if err := c.List(ctx, &capabilities); err != nil {
		return nil, fmt.Errorf("list NodeCapabilities: %w", err)
	}
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(state.settings.leaseNamespace)); err != nil {
		return nil, fmt.Errorf("list Leases in %s: %w", state.settings.leaseNamespace, err)
	}
	if len(nodes.Items) == 0 {
		return []finding{warn("join nodes to the cluster", "no nodes")}, nil
	}
	written := map[string]time.Time{}
	for i := range capabilities.Items {
		written[capabilities.Items[i].Name] = lastWrite(&capabilities.Items[i])
	}
	// By name, as placement.ReadNodes reads them: what the controller
	// judges liveness from.
	byNode := map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		byNode[leases.Items[i].Name] = &leases.Items[i]
	}
	var findings []finding
	for i := range nodes.Items {
		findings = append(findings, agentFinding(nodes.Items[i].Name, written, byNode[nodes.Items[i].Name], state))
	}
	return findings, nil
}

func agentFinding(node string, written map[string]time.Time, lease *coordinationv1.Lease, state *cluster) finding {
	pods := "kubectl get pods -A -l app.kubernetes.io/component=agent --field-selector spec.nodeName=" + node
	when, reported := written[node]
	switch {
	case !reported && lease == nil:
		return problem("run vmop-agent there: its DaemonSet's nodeSelector and tolerations must admit the node ("+pods+")",
			"%s: no agent has reported (no NodeCapability, no Lease)", node)
	case lease == nil:
		return problem("check that the agent runs with --lease-namespace="+state.settings.leaseNamespace+" ("+pods+")",
			"%s: NodeCapability written %s, but no agent Lease in %s", node, ago(state.now, when), state.settings.leaseNamespace)
	}
	expiry := agentlease.Expiry(lease)
	if expiry.IsZero() || !state.now.Before(expiry) {
		return problem("the node may be down, or the agent stuck: read its log ("+pods+")",
			"%s: agent Lease lapsed %s; NodeCapability written %s", node, ago(state.now, expiry), ago(state.now, when))
	}
	if !reported {
		return problem("read the agent's log ("+pods+"): it renews its Lease but cannot write its NodeCapability",
			"%s: agent Lease renewed %s, but no NodeCapability", node, ago(state.now, lease.Spec.RenewTime.Time))
	}
	return ok("%s: agent Lease renewed %s, NodeCapability written %s", node, ago(state.now, lease.Spec.RenewTime.Time), ago(state.now, when))
}

// lastWrite is when the object was last written, from its managed fields
// (the agent writes the status), else its creation.
func lastWrite(obj client.Object) time.Time {
	last := obj.GetCreationTimestamp().Time
	for _, entry := range obj.GetManagedFields() {
		if entry.Time != nil && entry.Time.After(last) {
			last = entry.Time.Time
		}
	}
	return last
}

func ago(now, then time.Time) string {
	if then.IsZero() {
		return "never"
	}
	return now.Sub(then).Truncate(time.Second).String() + " ago"
}

// hostNetworksReady: each HostNetwork's Ready condition.
func hostNetworksReady(_ context.Context, _ client.Reader, state *cluster) ([]finding, error) {
	if len(state.hostNetworks) == 0 {
		return []finding{ok("none declared")}, nil
	}
	var findings []finding
	for i := range state.hostNetworks {
		h := &state.hostNetworks[i]
		ready := meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionReady)
		switch {
		case ready == nil:
			findings = append(findings, problem("is the controller running? kubectl describe hostnetwork "+h.Name,
				"%s: no Ready condition yet", h.Name))
		case ready.Status != "True":
			findings = append(findings, problem("kubectl describe hostnetwork "+h.Name+" says what it waits for",
				"%s: not Ready (%s): %s", h.Name, ready.Reason, ready.Message))
		default:
			findings = append(findings, ok("%s: Ready", h.Name))
		}
	}
	return findings, nil
}

// policySuffixes name the chart's ValidatingAdmissionPolicies (after the
// release's name; deploy/chart/templates/admission.yaml).
func policySuffixes() []string {
	return []string{"-agent-own-node", "-controller-node-labels", "-controller-owned-objects"}
}

// admissionPolicies: each of the chart's policies exists with its binding,
// and which actions the binding takes. Without the chart they are missing:
// a warning, since nothing installed them.
func admissionPolicies(ctx context.Context, c client.Reader, state *cluster) ([]finding, error) {
	var policies admissionregistrationv1.ValidatingAdmissionPolicyList
	if err := c.List(ctx, &policies); err != nil {
		return nil, fmt.Errorf("list ValidatingAdmissionPolicies: %w", err)
	}
	var bindings admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	if err := c.List(ctx, &bindings); err != nil {
		return nil, fmt.Errorf("list ValidatingAdmissionPolicyBindings: %w", err)
	}
	fix := "helm upgrade the release: the chart's templates/admission.yaml makes them"
	var findings []finding
	for _, suffix := range policySuffixes() {
		policy := findPolicy(policies.Items, suffix)
		if policy == nil {
			if state.fromChartPath {
				findings = append(findings, problem(fix, "policy *%s missing: what it forbids the agent or controller is not enforced", suffix))
			} else {
				findings = append(findings, warn(fix, "policy *%s not installed (no chart release here)", suffix))
			}
			continue
		}
		binding := findBinding(bindings.Items, policy.Name)
		if binding == nil {
			findings = append(findings, problem(fix, "policy %s has no binding: it is not in effect", policy.Name))
			continue
		}
		findings = append(findings, ok("%s in effect (%s)", policy.Name, actions(binding.Spec.ValidationActions)))
	}
	return findings, nil
}

func findPolicy(policies []admissionregistrationv1.ValidatingAdmissionPolicy, suffix string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	for i := range policies {
		if strings.HasSuffix(policies[i].Name, suffix) {
			return &policies[i]
		}
	}
	return nil
}

func findBinding(bindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding, policy string) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	for i := range bindings {
		if bindings[i].Spec.PolicyName == policy {
			return &bindings[i]
		}
	}
	return nil
}

func actions(list []admissionregistrationv1.ValidationAction) string {
	words := make([]string, 0, len(list))
	for _, a := range list {
		words = append(words, string(a))
	}
	return strings.Join(words, ",")
}

// webhooks: the operator registers none (CEL rules in its CRDs and
// ValidatingAdmissionPolicies admit); a webhook of someone else's that
// intercepts our group can refuse or change what users and the operator write.
func webhooks(ctx context.Context, c client.Reader, _ *cluster) ([]finding, error) {
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := c.List(ctx, &validating); err != nil {
		return nil, fmt.Errorf("list ValidatingWebhookConfigurations: %w", err)
	}
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &mutating); err != nil {
		return nil, fmt.Errorf("list MutatingWebhookConfigurations: %w", err)
	}
	var findings []finding
	for _, w := range validating.Items {
		for _, hook := range w.Webhooks {
			findings = appendInterceptor(findings, "ValidatingWebhookConfiguration "+w.Name, hook.Name, hook.Rules)
		}
	}
	for _, w := range mutating.Items {
		for _, hook := range w.Webhooks {
			findings = appendInterceptor(findings, "MutatingWebhookConfiguration "+w.Name, hook.Name, hook.Rules)
		}
	}
	if len(findings) == 0 {
		findings = append(findings, ok("none intercepts %s (the operator needs none)", vmv1alpha1.GroupVersion.Group))
	}
	return findings, nil
}

func appendInterceptor(findings []finding, owner, hook string, rules []admissionregistrationv1.RuleWithOperations) []finding {
	for _, rule := range rules {
		for _, group := range rule.APIGroups {
			if group == vmv1alpha1.GroupVersion.Group || group == "*" {
				return append(findings, warn("make sure "+owner+" means to; kubectl get "+strings.ToLower(strings.Fields(owner)[0])+" "+strings.Fields(owner)[1]+" -o yaml",
					"%s's webhook %s intercepts %s", owner, hook, vmv1alpha1.GroupVersion.Group))
			}
		}
	}
	return findings
}

// ourCRDs: each CRD is installed and its versions (schema, printer
// columns, subresources) are those this plugin was built with.
func ourCRDs(ctx context.Context, c client.Reader, _ *cluster) ([]finding, error) {
	want, err := crds.Load()
	if err != nil {
		return nil, err
	}
	fix := "helm upgrade the release (its pre-upgrade hook applies the chart's CRDs), or kubectl apply --server-side --force-conflicts -f deploy/crds/"
	built := version.String("kubectl-vmprofile")
	var findings []finding
	for i := range want {
		var got apiextensionsv1.CustomResourceDefinition
		err := c.Get(ctx, client.ObjectKey{Name: want[i].Name}, &got)
		if apierrors.IsNotFound(err) {
			findings = append(findings, problem(fix, "%s missing", want[i].Name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read CRD %s: %w", want[i].Name, err)
		}
		if why := crdDifference(&want[i], &got); why != "" {
			findings = append(findings, problem(fix+"; or, if the cluster's is newer, a newer kubectl-vmprofile",
				"%s differs from %s's: %s", want[i].Name, built, why))
			continue
		}
		findings = append(findings, ok("%s current", want[i].Name))
	}
	return findings, nil
}

// crdDifference says how an installed CRD's versions differ from want's, or "".
func crdDifference(want, got *apiextensionsv1.CustomResourceDefinition) string {
	for i := range want.Spec.Versions {
		w := &want.Spec.Versions[i]
		var g *apiextensionsv1.CustomResourceDefinitionVersion
		for j := range got.Spec.Versions {
			if got.Spec.Versions[j].Name == w.Name {
				g = &got.Spec.Versions[j]
			}
		}
		switch {
		case g == nil:
			return "version " + w.Name + " missing"
		case g.Served != w.Served || g.Storage != w.Storage:
			return "version " + w.Name + " served or stored differently"
		case !apiequality.Semantic.DeepEqual(g.Schema, w.Schema):
			return "version " + w.Name + "'s schema"
		case !apiequality.Semantic.DeepEqual(g.AdditionalPrinterColumns, w.AdditionalPrinterColumns):
			return "version " + w.Name + "'s printer columns"
		case !apiequality.Semantic.DeepEqual(g.Subresources, w.Subresources):
			return "version " + w.Name + "'s subresources"
		}
	}
	return ""
}
