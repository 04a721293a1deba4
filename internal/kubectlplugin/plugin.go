// Package kubectlplugin is kubectl vmprofile (the binary kubectl-vmprofile):
// why explains, node by node, where a profile's VM may run, with the
// controller's own placement (controller/placement.Explain); doctor checks
// what the operator depends on and says how to fix each problem; console,
// vnc and ssh hand over to virtctl with the VM's name.
package kubectlplugin

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/controller/manager"
)

// Env is what the plugin touches outside the cluster, so tests can watch it.
type Env struct {
	Stdout, Stderr io.Writer
	// LookPath finds an executable (exec.LookPath).
	LookPath func(file string) (string, error)
	// Exec replaces the process with another program (syscall.Exec); it
	// returns only on failure.
	Exec func(path string, argv []string, environ []string) error
	// Environ is the environment Exec passes on.
	Environ []string
	// Now is the clock (time.Now).
	Now func() time.Time
}

const usage = `kubectl vmprofile explains and diagnoses vmoperator.

Usage:
  kubectl vmprofile why PROFILE [flags]       per node, why the profile's VM may or may not run there, and what to change
  kubectl vmprofile doctor [flags]            check KubeVirt, CDI, Multus, nmstate, the agents, HostNetworks, admission and CRDs
  kubectl vmprofile console PROFILE [flags]   virtctl console on the profile's VM
  kubectl vmprofile vnc PROFILE [flags]       virtctl vnc on the profile's VM
  kubectl vmprofile ssh [USER@]PROFILE [flags] [-- virtctl ssh flags]

Flags:
  --kubeconfig FILE      kubeconfig to use (default: $KUBECONFIG or ~/.kube/config)
  --context NAME         kubeconfig context
  -n, --namespace NAME   namespace of the profile (default: the context's)
  --agent-namespace NAME namespace of the agents' Leases (default: the controller's --agent-lease-namespace)
  --allow-emulation      placement as a controller run with --allow-emulation (why; default: the controller's)
  --allow-undeclared-host-networks
                         resolution as a controller run with that flag (why; default: the controller's)
`

// Exit codes: doctor returns ExitProblems when a check failed.
const (
	ExitOK       = 0
	ExitProblems = 1
	ExitUsage    = 2
)

// flags are the options every subcommand takes.
type flags struct {
	kubeconfig, context, namespace string
	overrides                      settingsOverrides
}

// Main runs kubectl vmprofile with args (os.Args[1:]) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	}
	command := args[0]
	var f flags
	positional, err := parseFlags(&f, args[1:])
	if err != nil {
		fmt.Fprintf(env.Stderr, "kubectl vmprofile %s: %v\n\n%s", command, err, usage)
		return ExitUsage
	}
	run, arity := commandOf(command)
	if run == nil {
		fmt.Fprintf(env.Stderr, "kubectl vmprofile: unknown command %q\n\n%s", command, usage)
		return ExitUsage
	}
	if len(positional) < arity || (arity == 0 && len(positional) > 0) {
		fmt.Fprintf(env.Stderr, "kubectl vmprofile %s: wrong arguments %v\n\n%s", command, positional, usage)
		return ExitUsage
	}
	session, err := connect(f)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kubectl vmprofile %s: %v\n", command, err)
		return ExitProblems
	}
	code, err := run(ctx, session, env, positional)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kubectl vmprofile %s: %v\n", command, err)
		return ExitProblems
	}
	return code
}

type command func(ctx context.Context, s *session, env Env, args []string) (int, error)

func commandOf(name string) (command, int) {
	switch name {
	case "why":
		return why, 1
	case "doctor":
		return doctor, 0
	case "console", "vnc", "ssh":
		return func(ctx context.Context, s *session, env Env, args []string) (int, error) {
			return handOver(ctx, s, env, name, args)
		}, 1
	}
	return nil, 0
}

// parseFlags parses flags anywhere among the arguments (kubectl's habit:
// kubectl vmprofile why test-vm -n demo); everything after -- is positional.
func parseFlags(f *flags, args []string) ([]string, error) {
	set := flag.NewFlagSet("kubectl vmprofile", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&f.kubeconfig, "kubeconfig", "", "")
	set.StringVar(&f.context, "context", "", "")
	set.StringVar(&f.namespace, "namespace", "", "")
	set.StringVar(&f.namespace, "n", "", "")
	set.Func("agent-namespace", "", func(v string) error { f.overrides.leaseNamespace = &v; return nil })
	set.BoolFunc("allow-emulation", "", func(v string) error { return setBool(&f.overrides.allowEmulation, v) })
	set.BoolFunc("allow-undeclared-host-networks", "", func(v string) error { return setBool(&f.overrides.allowUndeclared, v) })
	var positional []string
	for {
		if err := set.Parse(args); err != nil {
			return nil, fmt.Errorf("flags: %w", err)
		}
		rest := set.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil // the flag set consumed --
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

func setBool(target **bool, value string) error {
	b := value == "" || value == "true"
	if !b && value != "false" {
		return fmt.Errorf("not a boolean: %q", value)
	}
	*target = &b
	return nil
}

// session is a connection to the cluster.
type session struct {
	flags     flags
	config    *rest.Config
	client    client.Client
	namespace string
}

func connect(f flags) (*session, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	config, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	namespace, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	config.UserAgent = "kubectl-vmprofile"
	scheme := manager.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil { // doctor reads our CRDs
		return nil, fmt.Errorf("scheme: %w", err)
	}
	c, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", config.Host, err)
	}
	return &session{flags: f, config: config, client: c, namespace: namespace}, nil
}

// DefaultEnv is the real process's environment.
func DefaultEnv(stdout, stderr io.Writer, environ []string, execve func(string, []string, []string) error) Env {
	return Env{Stdout: stdout, Stderr: stderr, LookPath: exec.LookPath, Exec: execve, Environ: environ, Now: time.Now}
}
