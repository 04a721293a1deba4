package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/controller/lifecycle"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/version"
)

// The subcommands the chart's hooks run (see controller/lifecycle). They
// take their cluster from the pod (or $KUBECONFIG) like the controller.
const (
	commandApplyCRDs = "apply-crds"
	commandCleanup   = "uninstall-cleanup"
)

// runHook runs a hook subcommand and returns the exit code: 2 for bad
// flags, 1 when the hook failed (Helm then reports the hook's failure).
func runHook(command string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch command {
	case commandApplyCRDs:
		err = applyCRDs(ctx, args)
	case commandCleanup:
		err = cleanup(ctx, args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmop-controller %s: %v\n", command, err)
		var bad flagError
		if errors.As(err, &bad) {
			return 2
		}
		return 1
	}
	return 0
}

// flagError marks errors in a subcommand's flags.
type flagError struct{ error }

func parseHookFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return flagError{err}
	}
	if fs.NArg() > 0 {
		return flagError{fmt.Errorf("unexpected arguments %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}

func hookClient() (client.Client, error) {
	config, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := manager.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("add apiextensions/v1 to the scheme: %w", err)
	}
	c, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", config.Host, err)
	}
	return c, nil
}

func applyCRDs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(commandApplyCRDs, flag.ContinueOnError)
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the ConfigMap holding the CRDs (default $POD_NAMESPACE)")
	configMap := fs.String("configmap", "", "ConfigMap holding one CRD manifest per key")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for each CRD to be established")
	if err := parseHookFlags(fs, args); err != nil {
		return err
	}
	if *namespace == "" || *configMap == "" {
		return flagError{fmt.Errorf("--namespace and --configmap are required")}
	}
	c, err := hookClient()
	if err != nil {
		return err
	}
	fmt.Println(version.String("vmop-controller"), commandApplyCRDs)
	names, err := lifecycle.ApplyCRDs(ctx, c, client.ObjectKey{Namespace: *namespace, Name: *configMap}, *timeout)
	for _, name := range names {
		fmt.Println("applied CRD", name)
	}
	return err
}

func cleanup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(commandCleanup, flag.ContinueOnError)
	c := lifecycle.Cleanup{Log: os.Stdout}
	fs.StringVar(&c.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the release namespace (default $POD_NAMESPACE)")
	fs.StringVar(&c.Release, "release", "", "the Helm release, whose controller and agent Pods must be gone first")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "how long to wait for the components to stop")
	if err := parseHookFlags(fs, args); err != nil {
		return err
	}
	if c.Namespace == "" || c.Release == "" {
		return flagError{fmt.Errorf("--namespace and --release are required")}
	}
	var err error
	if c.Client, err = hookClient(); err != nil {
		return err
	}
	fmt.Println(version.String("vmop-controller"), commandCleanup)
	_, err = c.Run(ctx)
	return err
}
