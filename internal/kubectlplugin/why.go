package kubectlplugin

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// why prints, node by node, whether the profile's VM may run there, from
// the controller's own chain of checks (placement.Explain) over what the
// controller reads: the nodes, their NodeCapabilities and agent Leases, and
// the profile's networks resolved against the HostNetworks.
func why(ctx context.Context, s *session, env Env, args []string) (int, error) {
	profile, err := readProfile(ctx, s, args[0])
	if err != nil {
		return ExitProblems, err
	}
	w := env.Stdout
	fmt.Fprintf(w, "VirtualMachineProfile %s/%s: VM %s%s\n", profile.Namespace, profile.Name, vmNameOf(profile), vmState(profile))
	deps, err := manager.DiscoverDependencies(s.client.RESTMapper())
	if err != nil {
		return ExitProblems, err
	}
	if !deps.KubeVirt {
		fmt.Fprintln(w, "KubeVirt is not installed: the controller makes no VM and places none.")
		fmt.Fprintln(w, "  fix: install KubeVirt (docs/install.md), then run kubectl vmprofile doctor")
		return ExitProblems, nil
	}
	cfg, err := readSettings(ctx, s.client, s.flags.overrides)
	if err != nil {
		return ExitProblems, err
	}
	attachments, refusal, err := attach.Reader{Client: s.client, Multus: deps.Multus, Policy: cfg.policy}.Resolve(ctx, profile)
	if err != nil {
		return ExitProblems, err
	}
	if refusal != nil {
		printSettings(w, cfg)
		printRefusal(w, refusal)
		return ExitProblems, nil
	}
	nodes, err := placement.ReadNodes(ctx, s.client, cfg.leaseNamespace, env.Now())
	if err != nil {
		return ExitProblems, err
	}
	needs := placement.Requirements(attachments)
	if cfg.controller == "" && cfg.emulationSource == "" {
		cfg = inferEmulation(cfg, profile, needs, nodes)
	}
	printSettings(w, cfg)
	fmt.Fprintf(w, "Needs: %s\n", strings.Join(describeNeeds(profile, needs, cfg.allowEmulation), "; "))
	verdicts := placement.Explain(profile, needs, nodes, placement.Options{AllowEmulation: cfg.allowEmulation})
	eligible := printVerdicts(w, verdicts)
	compareWithStatus(w, profile, eligible)
	return ExitOK, printSpread(ctx, s.client, w, profile, verdicts)
}

func readProfile(ctx context.Context, s *session, name string) (*vmv1alpha1.VirtualMachineProfile, error) {
	profile := &vmv1alpha1.VirtualMachineProfile{}
	err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, profile)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("VirtualMachineProfile %s/%s not found (kubectl get vmprofile -n %s lists them)", s.namespace, name, s.namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("read VirtualMachineProfile %s/%s: %w", s.namespace, name, err)
	}
	return profile, nil
}

// vmNameOf is the KubeVirt VM's name: as the status records it, or as the
// controller names it before it exists.
func vmNameOf(profile *vmv1alpha1.VirtualMachineProfile) string {
	if profile.Status.VMName != "" {
		return profile.Status.VMName
	}
	return vmv1alpha1.VMName(profile.Name)
}

func vmState(profile *vmv1alpha1.VirtualMachineProfile) string {
	var parts []string
	if profile.Status.Phase != "" {
		parts = append(parts, "phase "+string(profile.Status.Phase))
	}
	if profile.Status.NodeName != "" {
		parts = append(parts, "on node "+profile.Status.NodeName)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func printSettings(w io.Writer, cfg settings) {
	emulation := "KVM required"
	if cfg.allowEmulation {
		emulation = "emulation allowed, KVM not required"
	}
	from := "No controller Deployment found: judged with the controller's defaults"
	if cfg.controller != "" {
		from = "Judged as controller " + cfg.controller + " does"
	}
	if cfg.emulationSource != "" {
		from += ", with " + cfg.emulationSource
	}
	fmt.Fprintf(w, "%s: %s\n", from, emulation)
}

// inferEmulation serves a controller run outside the cluster (make dev
// runs it with --allow-emulation, on hosts without /dev/kvm too), whose
// flags nothing shows: when the profile's status counts the eligible nodes
// that emulation gives and not those that KVM gives, the controller emulates.
func inferEmulation(cfg settings, profile *vmv1alpha1.VirtualMachineProfile, needs []placement.Requirement, nodes []placement.Node) settings {
	recorded := profile.Status.Placement
	if recorded == nil {
		return cfg
	}
	count := func(emulation bool) int32 {
		return placement.Evaluate(profile, needs, nodes, placement.Options{AllowEmulation: emulation}).Status.EligibleNodes
	}
	if count(false) != recorded.EligibleNodes && count(true) == recorded.EligibleNodes {
		cfg.allowEmulation = true
		cfg.emulationSource = fmt.Sprintf("emulation inferred from the profile's status (%d eligible, as with --allow-emulation)", recorded.EligibleNodes)
	}
	return cfg
}

func printRefusal(w io.Writer, refusal *attach.Refusal) {
	fmt.Fprintf(w, "Network %s cannot attach (%s): %s\n", refusal.Network, refusal.Reason, refusal.Message)
	fix := "correct the network in the profile, or the HostNetwork it names"
	if refusal.Restore != "" {
		fix = refusal.Restore
	}
	fmt.Fprintf(w, "  fix: %s\nNo node is judged until every network resolves.\n", fix)
}

// describeNeeds lists in words what every node must offer.
func describeNeeds(profile *vmv1alpha1.VirtualMachineProfile, needs []placement.Requirement, emulation bool) []string {
	var out []string
	for _, need := range needs {
		switch need.Kind {
		case placement.NeedKVM:
			if !emulation {
				out = append(out, "KVM")
			}
		case placement.NeedBridge:
			out = append(out, "bridge "+need.Name+" up")
		case placement.NeedVLAN:
			out = append(out, fmt.Sprintf("VLAN %d on bridge %s", need.VLAN, need.Name))
		case placement.NeedOVS:
			out = append(out, "OVS bridge "+need.Name+" up")
		case placement.NeedLink:
			out = append(out, "link "+need.Name+" up")
		case placement.NeedSRIOV:
			out = append(out, "a free SR-IOV VF")
		case placement.NeedHostNetwork:
			out = append(out, "HostNetwork "+need.Name+" ready on the node")
		case placement.NeedNodeLabels:
			out = append(out, "labels "+labelList(need.Selector)+" (HostNetwork "+need.Name+"'s nodeSelector)")
		}
	}
	if profile.Spec.HighAvailability != nil && len(profile.Spec.HighAvailability.NodeSelector) > 0 {
		selector := map[string]string{}
		for k, v := range profile.Spec.HighAvailability.NodeSelector {
			selector[k] = string(v)
		}
		out = append(out, "labels "+labelList(selector)+" (highAvailability.nodeSelector)")
	}
	return append([]string{"an agent reporting", "schedulable"}, out...)
}

func labelList(selector map[string]string) string {
	var pairs []string
	for _, key := range slices.Sorted(maps.Keys(selector)) {
		pairs = append(pairs, key+"="+selector[key])
	}
	return strings.Join(pairs, ",")
}

// printVerdicts prints one line per node and a fix under each excluded
// one, and returns how many are eligible.
func printVerdicts(w io.Writer, verdicts []placement.Verdict) int {
	eligible := 0
	for _, v := range verdicts {
		if v.Eligible {
			eligible++
		}
	}
	fmt.Fprintf(w, "%d of %d node(s) can host the VM.\n", eligible, len(verdicts))
	for _, v := range verdicts {
		if v.Eligible {
			fmt.Fprintf(w, "  %s: eligible\n", v.Node)
			continue
		}
		fmt.Fprintf(w, "  %s: excluded: %s\n", v.Node, v.Reason)
		fmt.Fprintf(w, "      fix: %s\n", v.Fix)
	}
	return eligible
}

// compareWithStatus flags a count that differs from the controller's, for
// when the plugin's settings are not the controller's.
func compareWithStatus(w io.Writer, profile *vmv1alpha1.VirtualMachineProfile, eligible int) {
	recorded := profile.Status.Placement
	if recorded == nil || int(recorded.EligibleNodes) == eligible {
		return
	}
	fmt.Fprintf(w, "Note: the profile's status counts %d eligible node(s): the controller judged earlier or with other settings (--allow-emulation, --agent-namespace).\n",
		recorded.EligibleNodes)
}

// printSpread explains an antiAffinity profile with no free eligible node.
func printSpread(ctx context.Context, c client.Reader, w io.Writer, profile *vmv1alpha1.VirtualMachineProfile, verdicts []placement.Verdict) error {
	if profile.Spec.HighAvailability == nil || !profile.Spec.HighAvailability.AntiAffinity {
		return nil
	}
	var eligible []string
	for _, v := range verdicts {
		if v.Eligible {
			eligible = append(eligible, v.Node)
		}
	}
	if len(eligible) == 0 {
		return nil
	}
	shortage, err := placement.SpreadShortage(ctx, c, profile, eligible)
	if err != nil || shortage == "" {
		return err
	}
	fmt.Fprintf(w, "But: %s\n  fix: add an eligible node, or turn off antiAffinity on this or another profile\n", shortage)
	return nil
}
