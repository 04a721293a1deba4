// Command kubevirt-admit runs KubeVirt's validation of VirtualMachines
// (ValidateVirtualMachineSpec of virt-api's admitters, KubeVirt v1.8.0)
// under a default cluster configuration, as virt-api's webhook would on
// create. It reads JSON arrays of VirtualMachines on stdin, one after the
// other, and answers each with one line of JSON: each VM's name and the
// causes KubeVirt gives for refusing it (none when admitted). One process
// serves many requests because KubeVirt's packages take over 3 s to
// initialise (virt-api's OpenAPI definitions).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfield "k8s.io/apimachinery/pkg/util/validation/field"
	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/kubevirt/pkg/testutils"
	"kubevirt.io/kubevirt/pkg/virt-api/webhooks/validating-webhook/admitters"
)

// verdict is one VM's result.
type verdict struct {
	Namespace string               `json:"namespace"`
	Name      string               `json:"name"`
	Causes    []metav1.StatusCause `json:"causes"`
}

func main() {
	config, _, _ := testutils.NewFakeClusterConfigUsingKVConfig(&v1.KubeVirtConfiguration{})
	in, out := json.NewDecoder(os.Stdin), json.NewEncoder(os.Stdout)
	for {
		var vms []v1.VirtualMachine
		err := in.Decode(&vms)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubevirt-admit: reading VirtualMachines:", err)
			os.Exit(2)
		}
		verdicts := make([]verdict, 0, len(vms))
		for i := range vms {
			causes := admitters.ValidateVirtualMachineSpec(k8sfield.NewPath("spec"), &vms[i].Spec, config, false)
			verdicts = append(verdicts, verdict{Namespace: vms[i].Namespace, Name: vms[i].Name, Causes: causes})
		}
		if err := out.Encode(verdicts); err != nil {
			fmt.Fprintln(os.Stderr, "kubevirt-admit:", err)
			os.Exit(2)
		}
	}
}
