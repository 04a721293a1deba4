// Command vmop-agent probes its node (KVM, bridges, VLANs, bonds, OVS,
// SR-IOV) and publishes a NodeCapability. Probing is not implemented yet
// (issue #4): for now it parses its flags and exits.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	flags := flag.NewFlagSet("vmop-agent", flag.ContinueOnError)
	nodeName := flags.String("node-name", os.Getenv("NODE_NAME"), "name of this node (default from $NODE_NAME)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *nodeName == "" {
		fmt.Fprintln(os.Stderr, "vmop-agent: --node-name or $NODE_NAME is required")
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "vmop-agent: probing is not implemented yet; nothing to do")
}
