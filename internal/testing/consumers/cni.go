package consumers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Delegate runs a NetworkAttachmentDefinition's config for one pod
// interface the way Multus hands it to the delegate plugin: the plugin
// binary from BinDir, CNI_NETNS the pod's namespace, CNI_IFNAME net1 and
// so on, CNI_ARGS with the pod's identity and, when KubeVirt asks for one,
// the MAC.
type Delegate struct {
	// BinDir holds the reference plugins (make builds them into bin/cni).
	BinDir string
	// Node runs fn on a thread inside the node's network namespace: the
	// plugin process is started there, so its host side (bridge ports,
	// macvlan masters) is the node's, never this machine's.
	Node func(fn func() error) error
	// PodNetNS is the path of the pod's network namespace.
	PodNetNS              string
	PodNamespace, PodName string
}

// CNIBinDir is where make builds the reference plugins: bin/cni of the
// repository the test runs in (found upwards from the working directory),
// or $VMOP_CNI_BIN (the kernel VM's initramfs).
func CNIBinDir() (string, error) {
	dir := os.Getenv("VMOP_CNI_BIN")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin", "cni")
	}
	for _, plugin := range []string{"bridge", "macvlan"} {
		if _, err := os.Stat(filepath.Join(dir, plugin)); err != nil {
			return "", fmt.Errorf("CNI plugin %s: %w (make test builds bin/cni from test/tools/cni)", plugin, err)
		}
	}
	return dir, nil
}

// AddCheckDel runs ADD, then inspect on the result, then CHECK, then DEL,
// and stops at the first that fails; the error names the command and keeps
// the plugin's own message.
func (d Delegate) AddCheckDel(ctx context.Context, config []byte, ifName, mac string, inspect func(types.Result) error) error {
	// A NAD holds one plugin's config, as the operator writes it; Multus
	// turns it into a list the same way.
	conf, err := libcni.ConfFromBytes(config) //nolint:staticcheck // SA1019: single-plugin NAD configs are what Multus accepts and the operator writes.
	if err != nil {
		return fmt.Errorf("parsing the NAD config: %w", err)
	}
	list, err := libcni.ConfListFromConf(conf) //nolint:staticcheck // SA1019: as above.
	if err != nil {
		return fmt.Errorf("NAD config as a list: %w", err)
	}
	cacheDir, err := os.MkdirTemp("", "vmop-cni-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	exec := &nodeExec{node: d.Node, DefaultExec: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}}
	cni := libcni.NewCNIConfigWithCacheDir([]string{d.BinDir}, cacheDir, exec)
	rt := &libcni.RuntimeConf{
		ContainerID: "vmop-consumers-" + d.PodName,
		NetNS:       d.PodNetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", d.PodNamespace},
			{"K8S_POD_NAME", d.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", "vmop-consumers-" + d.PodName},
		},
	}
	if mac != "" {
		rt.Args = append(rt.Args, [2]string{"MAC", mac})
	}
	result, err := cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		return fmt.Errorf("CNI ADD: %w", err)
	}
	var errs []error
	if err := inspect(result); err != nil {
		errs = append(errs, err)
	}
	if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
		errs = append(errs, fmt.Errorf("CNI CHECK: %w", err))
	}
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		errs = append(errs, fmt.Errorf("CNI DEL: %w", err))
	}
	return errors.Join(errs...)
}

// nodeExec starts plugin processes inside the node's namespace: a process
// forked from a thread set into a namespace starts in it.
type nodeExec struct {
	*invoke.DefaultExec
	node func(fn func() error) error
}

func (e *nodeExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var out []byte
	var runErr error
	if err := e.node(func() error {
		out, runErr = e.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, environ)
		return nil
	}); err != nil {
		return nil, err
	}
	return out, runErr //nolint:wrapcheck // libcni reads the plugin's own *types.Error from here.
}

// repoRoot is the nearest directory upwards holding the operator's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		raw, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(raw), "module github.com/jianfenliu/vmoperator\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the vmoperator repository")
		}
		dir = parent
	}
}
