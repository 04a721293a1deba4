package simulator

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func runningFrom(template kubevirtv1.VirtualMachineInstanceSpec) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
	vm := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: template}}}
	vmi := instanceFor(vm)
	vmi.Status.Phase = kubevirtv1.Running
	return vm, vmi
}

// TestRestartRequiredFollowsKubeVirtsLiveFields: under the LiveUpdate
// rollout only sockets, placement and added interfaces are live.
func TestRestartRequiredFollowsKubeVirtsLiveFields(t *testing.T) {
	memory := resource.MustParse("1Gi")
	base := kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{
			CPU:    &kubevirtv1.CPU{Cores: 1, Sockets: 1},
			Memory: &kubevirtv1.Memory{Guest: &memory},
			Devices: kubevirtv1.Devices{
				Disks:      []kubevirtv1.Disk{{Name: "root"}},
				Interfaces: []kubevirtv1.Interface{{Name: "lan", MacAddress: "02:00:00:00:00:01"}},
			},
		},
		Networks: []kubevirtv1.Network{{Name: "lan", NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: "lan"}}}},
		Volumes:  []kubevirtv1.Volume{{Name: "root", VolumeSource: kubevirtv1.VolumeSource{CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{UserData: "a"}}}},
	}
	cases := []struct {
		name string
		edit func(*kubevirtv1.VirtualMachineInstanceSpec)
		want string
	}{
		{"nothing", func(*kubevirtv1.VirtualMachineInstanceSpec) {}, ""},
		{"cores", func(s *kubevirtv1.VirtualMachineInstanceSpec) { s.Domain.CPU.Cores = 2 }, restartNonLiveField},
		{"sockets are live", func(s *kubevirtv1.VirtualMachineInstanceSpec) { s.Domain.CPU.Sockets = 2 }, ""},
		{"memory", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
			m := resource.MustParse("2Gi")
			s.Domain.Memory.Guest = &m
		}, restartMemory},
		{"node selector is live", func(s *kubevirtv1.VirtualMachineInstanceSpec) { s.NodeSelector = map[string]string{"a": "b"} }, ""},
		{"tolerations are live", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
		}, ""},
		{"MAC", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
			s.Domain.Devices.Interfaces[0].MacAddress = "02:00:00:00:00:02"
		}, restartNonLiveField},
		{"network changed", func(s *kubevirtv1.VirtualMachineInstanceSpec) { s.Networks[0].Multus.NetworkName = "other" }, restartNonLiveField},
		{"interface added is hotplugged", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
			s.Domain.Devices.Interfaces = append(s.Domain.Devices.Interfaces, kubevirtv1.Interface{Name: "biz"})
			s.Networks = append(s.Networks, kubevirtv1.Network{Name: "biz"})
		}, ""},
		{"interface removed", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
			s.Domain.Devices.Interfaces, s.Networks = nil, nil
		}, restartNonLiveField},
		{"disk added", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
			s.Domain.Devices.Disks = append(s.Domain.Devices.Disks, kubevirtv1.Disk{Name: "data"})
			s.Volumes = append(s.Volumes, kubevirtv1.Volume{Name: "data"})
		}, restartNonLiveField},
		{"cloud-init changed", func(s *kubevirtv1.VirtualMachineInstanceSpec) { s.Volumes[0].CloudInitNoCloud.UserData = "b" }, restartNonLiveField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vm, vmi := runningFrom(*base.DeepCopy())
			c.edit(&vm.Spec.Template.Spec)
			if got := restartRequired(vm, vmi); got != c.want {
				t.Fatalf("restartRequired %q, want %q", got, c.want)
			}
		})
	}
}

// TestStartFailuresBackOff: counted once per instance that never ran,
// cleared by one that did; the wait grows with the square of the count.
func TestStartFailuresBackOff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	always := kubevirtv1.RunStrategyAlways
	vm := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: &always}}
	failed := &kubevirtv1.VirtualMachineInstance{}
	failed.UID, failed.Status.Phase = "one", kubevirtv1.Failed
	first := startFailure(vm, failed, now)
	if first == nil || first.ConsecutiveFailCount != 1 || !first.RetryAfterTimestamp.Time.Equal(now.Add(10*time.Second)) {
		t.Fatalf("first failure: %+v", first)
	}
	vm.Status.StartFailure = first
	if again := startFailure(vm, failed, now.Add(time.Second)); again.ConsecutiveFailCount != 1 {
		t.Fatalf("one instance counts once: %+v", again)
	}
	failed.UID = "two"
	second := startFailure(vm, failed, now)
	if second.ConsecutiveFailCount != 2 || !second.RetryAfterTimestamp.Time.Equal(now.Add(40*time.Second)) {
		t.Fatalf("second failure: %+v", second)
	}
	if startBackoff(100) != maxStartBackoff {
		t.Fatalf("the backoff is capped at %v", maxStartBackoff)
	}
	vm.Status.StartFailure = second
	ranThenFailed := failed.DeepCopy()
	ranThenFailed.Status.PhaseTransitionTimestamps = []kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{{Phase: kubevirtv1.Running}}
	if got := startFailure(vm, ranThenFailed, now); got != nil {
		t.Fatalf("an instance that ran clears the count: %+v", got)
	}
	halted := kubevirtv1.RunStrategyHalted
	vm.Spec.RunStrategy = &halted
	if got := startFailure(vm, failed, now); got != nil {
		t.Fatalf("a strategy that restarts nothing keeps no count: %+v", got)
	}
}
