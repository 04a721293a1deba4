package kubectlplugin

import (
	"context"
	"fmt"
	"strings"
)

// handOver replaces the plugin with virtctl console, vnc or ssh on the
// profile's VM: KubeVirt names the VM <profile>-vm (status.vmName), not
// the profile, so virtctl console <profile> would find nothing. For ssh,
// USER@PROFILE becomes USER@vm/<vm>; arguments after -- go to virtctl.
func handOver(ctx context.Context, s *session, env Env, verb string, args []string) (int, error) {
	user, name := "", args[0]
	if verb == "ssh" {
		if at := strings.LastIndex(name, "@"); at >= 0 {
			user, name = name[:at+1], name[at+1:]
		}
	}
	profile, err := readProfile(ctx, s, name)
	if err != nil {
		return ExitProblems, err
	}
	vm := vmNameOf(profile)
	target := vm
	if verb == "ssh" {
		target = user + "vm/" + vm
	}
	program, argv := virtctl(env)
	if program == "" {
		fmt.Fprintf(env.Stderr, "virtctl not found in PATH. The VM of profile %s is %s. Install virtctl with\n"+
			"  kubectl krew install virt        (then: kubectl virt %s %s -n %s)\n"+
			"or download virtctl-<version>-<os>-<arch> matching your KubeVirt from https://github.com/kubevirt/kubevirt/releases\n",
			profile.Name, vm, verb, target, profile.Namespace)
		return ExitProblems, nil
	}
	argv = append(argv, verb, target, "--namespace", profile.Namespace)
	if s.flags.kubeconfig != "" {
		argv = append(argv, "--kubeconfig", s.flags.kubeconfig)
	}
	if s.flags.context != "" {
		argv = append(argv, "--context", s.flags.context)
	}
	argv = append(argv, args[1:]...)
	if err := env.Exec(program, argv, env.Environ); err != nil {
		return ExitProblems, fmt.Errorf("run %s: %w", program, err)
	}
	return ExitOK, nil // Exec returned without error: a test's stand-in
}

// virtctl finds virtctl, or kubectl's virt plugin (krew's name for it).
func virtctl(env Env) (string, []string) {
	if path, err := env.LookPath("virtctl"); err == nil {
		return path, []string{"virtctl"}
	}
	if path, err := env.LookPath("kubectl-virt"); err == nil {
		return path, []string{"kubectl-virt"}
	}
	return "", nil
}
