package recovery

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func node(ready corev1.ConditionStatus, reporting bool, taints ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{}}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	}
	if reporting {
		n.Labels[vmv1alpha1.LabelReporting] = "true"
	}
	for _, key := range taints {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute})
	}
	return n
}

func TestLost(t *testing.T) {
	for name, tc := range map[string]struct {
		node *corev1.Node
		want bool
	}{
		"ready and reporting":               {node(corev1.ConditionTrue, true), false},
		"agent silent, kubelet fine":        {node(corev1.ConditionTrue, false), false},
		"kubelet silent, agent fine":        {node(corev1.ConditionUnknown, true), false},
		"both silent":                       {node(corev1.ConditionUnknown, false), true},
		"NotReady and agent silent":         {node(corev1.ConditionFalse, false), true},
		"never judged (no Ready), no agent": {node("", false), false},
		"deleted":                           {nil, true},
	} {
		if got := Lost(tc.node); got != tc.want {
			t.Errorf("%s: Lost = %v, want %v", name, got, tc.want)
		}
	}
}

func TestSingleNodeClaims(t *testing.T) {
	claim := func(name string, modes ...corev1.PersistentVolumeAccessMode) corev1.PersistentVolumeClaim {
		return corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes}}
	}
	got := SingleNodeClaims([]corev1.PersistentVolumeClaim{
		claim("z-rwo", corev1.ReadWriteOnce), claim("rwx", corev1.ReadWriteMany), claim("both", corev1.ReadWriteOnce, corev1.ReadWriteMany),
		claim("a-rwop", corev1.ReadWriteOncePod), claim("rox", corev1.ReadOnlyMany),
	})
	if strings.Join(got, ",") != "a-rwop,z-rwo" {
		t.Fatalf("single-node claims: %v", got)
	}
}

func TestDecide(t *testing.T) {
	lost := node(corev1.ConditionUnknown, false)
	for name, tc := range map[string]struct {
		node       *corev1.Node
		singleNode []string
		restarts   bool
		want       Action
		says       []string
	}{
		"not lost":                     {node(corev1.ConditionTrue, true), []string{"d"}, true, None, nil},
		"lost, no disk: restart":       {lost, nil, true, Restart, []string{"node n1 is lost", "no ReadWriteOnce claim"}},
		"lost, RWO disk: wait":         {lost, []string{"vm-system", "vm-data"}, true, Wait, []string{"waits", "vm-system, vm-data", TaintOutOfService}},
		"lost, RWO disk, fenced":       {node(corev1.ConditionUnknown, false, TaintOutOfService), []string{"vm-system"}, true, Restart, []string{"and fenced", "detaches claim(s) vm-system"}},
		"deleted, RWO disk":            {nil, []string{"vm-system"}, true, Restart, []string{"node n1 was deleted;"}},
		"lost, run strategy Manual":    {lost, nil, false, Wait, []string{"run strategy does not restart it"}},
		"other taints are not fencing": {node(corev1.ConditionUnknown, false, "node.kubernetes.io/unreachable"), []string{"d"}, true, Wait, nil},
	} {
		got := Decide("n1", tc.node, tc.singleNode, tc.restarts)
		if got.Action != tc.want {
			t.Errorf("%s: action %v, want %v (%s)", name, got.Action, tc.want, got.Message)
		}
		for _, want := range tc.says {
			if !strings.Contains(got.Message, want) {
				t.Errorf("%s: message does not say %q: %s", name, want, got.Message)
			}
		}
	}
}

func TestRestartsAndClaimNames(t *testing.T) {
	for strategy, want := range map[kubevirtv1.VirtualMachineRunStrategy]bool{
		kubevirtv1.RunStrategyAlways: true, kubevirtv1.RunStrategyRerunOnFailure: true,
		kubevirtv1.RunStrategyManual: false, kubevirtv1.RunStrategyHalted: false, kubevirtv1.RunStrategyOnce: false,
	} {
		if got := Restarts(ptr.To(strategy)); got != want {
			t.Errorf("Restarts(%s) = %v", strategy, got)
		}
	}
	if Restarts(nil) {
		t.Error("no run strategy restarts")
	}
	vmi := &kubevirtv1.VirtualMachineInstance{Spec: kubevirtv1.VirtualMachineInstanceSpec{Volumes: []kubevirtv1.Volume{
		{Name: "a", VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: "dv"}}},
		{Name: "b", VolumeSource: kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
			PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc"}}}},
		{Name: "c", VolumeSource: kubevirtv1.VolumeSource{CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{}}},
	}}}
	if got := strings.Join(ClaimNames(vmi), ","); got != "dv,pvc" {
		t.Fatalf("claims: %s", got)
	}
}
