// Command kubectl-vmprofile is the kubectl plugin of vmoperator: kubectl
// vmprofile why, doctor, console, vnc and ssh (internal/kubectlplugin).
// Installed on PATH, or with krew from deploy/krew/vmprofile.yaml.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/jianfenliu/vmoperator/internal/kubectlplugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := kubectlplugin.DefaultEnv(os.Stdout, os.Stderr, os.Environ(), syscall.Exec)
	code := kubectlplugin.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
