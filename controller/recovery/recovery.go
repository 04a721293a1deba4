// Package recovery decides what happens to a VM whose node is lost: when
// KubeVirt may start it on another node, and what it waits for until then.
// Its functions are pure: the profile reconciler reads the node and the
// claims, and acts on the decision.
package recovery

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TaintOutOfService is the taint an admin puts on a node that is shut down
// for good (Kubernetes' non-graceful node shutdown): Kubernetes then
// deletes its pods and force-detaches its volumes, so a ReadWriteOnce
// claim can be attached elsewhere without two nodes writing to it.
const TaintOutOfService = "node.kubernetes.io/out-of-service"

// Lost says whether a node is lost: its kubelet stopped reporting (its
// Ready condition is False or Unknown) and its vmop-agent too (the node
// lost the reporting label when the agent's Lease expired). Either alone
// is not enough: a restarting agent, or a kubelet restarting while its
// VMs run, must not move them. A node with no Ready condition at all has
// never been judged by the node lifecycle controller: not lost. A deleted
// node (nil) is lost.
func Lost(node *corev1.Node) bool {
	if node == nil {
		return true
	}
	return NotReady(node) && node.Labels[vmv1alpha1.LabelReporting] != "true"
}

// NotReady says whether the node's Ready condition is False or Unknown.
func NotReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status != corev1.ConditionTrue
		}
	}
	return false
}

// Fenced says whether nothing can still run or write on the node: it is
// deleted (nil) or tainted out-of-service.
func Fenced(node *corev1.Node) bool {
	if node == nil {
		return true
	}
	return slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintOutOfService })
}

// SingleNodeClaims are the names of the claims only one node may attach
// (ReadWriteOnce or ReadWriteOncePod, and not ReadWriteMany), sorted.
func SingleNodeClaims(claims []corev1.PersistentVolumeClaim) []string {
	var names []string
	for i := range claims {
		modes := claims[i].Spec.AccessModes
		if slices.Contains(modes, corev1.ReadWriteMany) {
			continue
		}
		if slices.Contains(modes, corev1.ReadWriteOnce) || slices.Contains(modes, corev1.ReadWriteOncePod) {
			names = append(names, claims[i].Name)
		}
	}
	slices.Sort(names)
	return names
}

// ClaimNames are the claims a VM instance mounts (a DataVolume's claim has its name).
func ClaimNames(vmi *kubevirtv1.VirtualMachineInstance) []string {
	var names []string
	for _, volume := range vmi.Spec.Volumes {
		switch {
		case volume.DataVolume != nil:
			names = append(names, volume.DataVolume.Name)
		case volume.PersistentVolumeClaim != nil:
			names = append(names, volume.PersistentVolumeClaim.ClaimName)
		}
	}
	return names
}

// Restarts says whether KubeVirt starts a new instance of a VM with this
// run strategy once its instance is gone.
func Restarts(strategy *kubevirtv1.VirtualMachineRunStrategy) bool {
	return strategy != nil && (*strategy == kubevirtv1.RunStrategyAlways || *strategy == kubevirtv1.RunStrategyRerunOnFailure)
}

// Action is what the reconciler does about an instance on a lost node.
type Action int

const (
	// None means the node is not lost.
	None Action = iota
	// Wait keeps the instance where it is; Message says what for.
	Wait
	// Restart deletes the instance so that KubeVirt starts it elsewhere.
	Restart
)

// Decision is an Action and the message the profile's status and event carry.
type Decision struct {
	Action  Action
	Message string
}

// Decide says what to do about an instance on nodeName, node being that
// node (nil: deleted), singleNode the single-node claims the instance
// mounts, restarts whether its run strategy starts it again. A VM with a
// ReadWriteOnce disk waits until its node is fenced or back: while the
// node may still run the old instance, starting another elsewhere would
// attach the disk twice (or hang on its attachment).
func Decide(nodeName string, node *corev1.Node, singleNode []string, restarts bool) Decision {
	if !Lost(node) {
		return Decision{Action: None}
	}
	lost := fmt.Sprintf("node %s is lost (NotReady, and its vmop-agent's Lease expired)", nodeName)
	if node == nil {
		lost = fmt.Sprintf("node %s was deleted", nodeName)
	}
	switch {
	case !restarts:
		return Decision{Action: Wait, Message: lost + "; the VM's run strategy does not restart it: start it again to run it on another node"}
	case len(singleNode) > 0 && !Fenced(node):
		return Decision{Action: Wait, Message: fmt.Sprintf("%s; the VM waits to restart on another node until %s is back, or fenced "+
			"(taint %s) or deleted: its ReadWriteOnce claim(s) %s may still be attached there",
			lost, nodeName, TaintOutOfService, strings.Join(singleNode, ", "))}
	case len(singleNode) > 0:
		if node != nil {
			lost += " and fenced"
		}
		return Decision{Action: Restart, Message: fmt.Sprintf("%s; its instance was deleted so that KubeVirt restarts "+
			"the VM on another node (Kubernetes detaches claim(s) %s from %s)", lost, strings.Join(singleNode, ", "), nodeName)}
	}
	return Decision{Action: Restart, Message: lost + "; its instance was deleted so that KubeVirt restarts the VM on another node " +
		"(no ReadWriteOnce claim holds it there)"}
}
