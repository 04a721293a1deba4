// Command pause is the node stack's pod sandbox process (the image the
// kubelet's runtime starts first in every pod, to hold its namespaces), built
// here because no registry can be reached: it sleeps until SIGINT or SIGTERM
// and, as PID 1 of a pod that shares its process namespace, reaps the
// children that others leave behind, as Kubernetes' own pause does.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
