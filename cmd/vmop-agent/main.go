// Command vmop-agent is the node agent of vmoperator; agent/daemon holds
// its flags and wiring, agent/ the work.
package main

import (
	"os"

	"github.com/jianfenliu/vmoperator/agent/daemon"
)

func main() {
	os.Exit(daemon.Run(os.Args[1:]))
}
