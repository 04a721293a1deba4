// Command vmop-controller reconciles VirtualMachineProfiles into networks,
// disks and KubeVirt VMs. Reconciliation is not implemented yet (issue #3):
// for now it parses its flags and exits.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	flags := flag.NewFlagSet("vmop-controller", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig file; empty means in-cluster configuration")
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	_ = kubeconfig
	fmt.Fprintln(os.Stderr, "vmop-controller: reconciliation is not implemented yet; nothing to do")
}
