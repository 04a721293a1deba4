// Package controlplane starts the real test control plane — etcd and
// kube-apiserver built from their Go modules into bin/ (make controlplane) —
// through envtest, installs the operator's CRDs and the third-party CRDs
// generated from the upstream KubeVirt, CDI, Multus and nmstate API types,
// and, for tests that need garbage collection, runs the real
// kube-controller-manager against it.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/controller/manager"
)

// ControlPlane is a running etcd and kube-apiserver with every CRD installed.
type ControlPlane struct {
	// Config reaches the apiserver as cluster admin.
	Config *rest.Config
	// Client is a cluster-admin client that knows every type the operator uses.
	Client client.Client
	// Scheme is the scheme Client uses.
	Scheme *k8sruntime.Scheme
	// Kubeconfig is the path of a cluster-admin kubeconfig file, for kubectl
	// and for kube-controller-manager.
	Kubeconfig string

	env               *envtest.Environment
	stopAtOnce        bool
	workDir           string
	controllerManager *exec.Cmd
	controllerExited  chan error
}

// RepoRoot is the root of this repository, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// BinDir is where make builds etcd, kube-apiserver and kube-controller-manager.
func BinDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "bin")
}

// NewScheme knows every type the operator reads or writes: the controller's own scheme.
func NewScheme() *k8sruntime.Scheme {
	return manager.NewScheme()
}

// Option adjusts the control plane Start brings up.
type Option func(*settings)

type settings struct {
	withoutCRDs    []string
	withoutOwnCRDs bool
	stopAtOnce     bool
	apiserverFlags map[string][]string
	certDir        string
	servingCA      []byte
}

// WithAPIServerCerts makes kube-apiserver serve the certificate in
// certDir (apiserver.crt and apiserver.key, with sa-signer.crt and
// sa-signer.key for service account tokens), signed by ca, instead of the
// one envtest makes, which names only localhost and 127.0.0.1: the node
// stack's pods reach the apiserver as 10.0.0.1, the kubernetes Service.
func WithAPIServerCerts(certDir string, ca []byte) Option {
	return func(s *settings) { s.certDir, s.servingCA = certDir, ca }
}

// WithAPIServerFlags sets kube-apiserver flags over envtest's defaults; a
// nil value removes a default flag. The node stack (internal/testing/nodestack)
// uses it for what a real cluster's apiserver has and envtest's lacks: the
// Node authorizer, the ServiceAccount admission plugin and a client
// certificate for the kubelets.
func WithAPIServerFlags(flags map[string][]string) Option {
	return func(s *settings) {
		if s.apiserverFlags == nil {
			s.apiserverFlags = map[string][]string{}
		}
		for name, values := range flags {
			s.apiserverFlags[name] = values
		}
	}
}

// WithoutCRDs leaves out the third-party CRD files of test/crds whose names
// start with one of prefixes (for example "kubevirt.io_"), to play a cluster
// where that dependency is not installed.
func WithoutCRDs(prefixes ...string) Option {
	return func(s *settings) { s.withoutCRDs = append(s.withoutCRDs, prefixes...) }
}

// WithoutOwnCRDs leaves out the operator's CRDs (deploy/crds), for tests
// that install them the way a user does.
func WithoutOwnCRDs() Option {
	return func(s *settings) { s.withoutOwnCRDs = true }
}

// StopAtOnce makes Stop kill etcd and kube-apiserver instead of waiting
// for them to shut down gracefully (up to 20 s each), for test binaries
// that must exit quickly: go test -fuzz gives each worker process one
// second to exit once fuzzing ends, then kills it, and a worker killed
// while stopping its control plane leaves etcd running.
func StopAtOnce() Option {
	return func(s *settings) { s.stopAtOnce = true }
}

// Start runs etcd and kube-apiserver from BinDir and installs the CRDs in
// deploy/crds and test/crds. The binaries must exist: make controlplane builds them.
func Start(options ...Option) (*ControlPlane, error) {
	var s settings
	for _, option := range options {
		option(&s)
	}
	keepDescriptorsFromChildren()
	bin := BinDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("test control plane: %s not found in %s; run `make controlplane` (or `make test`, which builds it): %w", name, bin, err)
		}
	}
	root := RepoRoot()
	scheme := NewScheme()
	thirdParty, err := thirdPartyCRDs(root, s.withoutCRDs)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDs:                     thirdParty,
		CRDDirectoryPaths:        []string{filepath.Join(root, "deploy", "crds")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: time.Minute,
	}
	if s.withoutOwnCRDs {
		env.CRDDirectoryPaths = nil
	}
	if s.certDir != "" {
		apiserver := env.ControlPlane.GetAPIServer()
		apiserver.CertDir = s.certDir
		apiserver.CA = s.servingCA
	}
	apiserverArgs := env.ControlPlane.GetAPIServer().Configure()
	for name, values := range s.apiserverFlags {
		if values == nil {
			apiserverArgs.Disable(name)
			continue
		}
		apiserverArgs.Set(name, values...)
	}
	if s.stopAtOnce {
		// Zero means the 20 s default: 1 ns is SIGKILL right after SIGTERM.
		env.ControlPlaneStopTimeout = time.Nanosecond
	}
	config, err := env.Start()
	if err != nil {
		// Start leaves etcd and kube-apiserver running when a later step
		// (installing CRDs) fails.
		return nil, errors.Join(fmt.Errorf("test control plane: %w", err), env.Stop())
	}
	cp := &ControlPlane{Config: config, Scheme: scheme, env: env, stopAtOnce: s.stopAtOnce}
	if err := cp.finishSetup(); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

// thirdPartyCRDs reads test/crds, less the files left out.
func thirdPartyCRDs(root string, without []string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(root, "test", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("test control plane: no CRDs in test/crds (%w)", err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, file := range files {
		if slices.ContainsFunc(without, func(prefix string) bool { return strings.HasPrefix(filepath.Base(file), prefix) }) {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

func (cp *ControlPlane) finishSetup() error {
	var err error
	cp.Client, err = client.New(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		return fmt.Errorf("test control plane: client: %w", err)
	}
	cp.workDir, err = os.MkdirTemp("", "vmop-controlplane-")
	if err != nil {
		return err
	}
	admin, err := cp.env.AddUser(envtest.User{Name: "vmop-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("test control plane: admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("test control plane: admin kubeconfig: %w", err)
	}
	cp.Kubeconfig = filepath.Join(cp.workDir, "kubeconfig")
	return os.WriteFile(cp.Kubeconfig, kubeconfig, 0o600)
}

// UserKubeconfig is a kubeconfig authenticating with a client certificate
// for user in groups, signed by the CA the apiserver trusts: how the node
// stack's kubelet (system:node:<name> in system:nodes), kube-scheduler and
// kube-proxy identify themselves, as on a kubeadm cluster.
func (cp *ControlPlane) UserKubeconfig(user string, groups ...string) ([]byte, error) {
	added, err := cp.env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("test control plane: user %s: %w", user, err)
	}
	kubeconfig, err := added.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("test control plane: kubeconfig of user %s: %w", user, err)
	}
	return kubeconfig, nil
}

// StartGarbageCollector runs the real kube-controller-manager with only the
// garbage collector, namespace, PVC-protection and ClusterRole-aggregation
// controllers, so owner references, namespace deletion, claim deletion and
// the aggregated view/edit/admin roles behave as on a real cluster.
func (cp *ControlPlane) StartGarbageCollector() error {
	path := filepath.Join(BinDir(), "kube-controller-manager")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("kube-controller-manager not found; run `make controlplane`: %w", err)
	}
	logFile, err := os.Create(filepath.Join(cp.workDir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path,
		"--kubeconfig="+cp.Kubeconfig,
		"--controllers=garbagecollector,namespace,pvc-protection,clusterrole-aggregation",
		"--leader-elect=false",
		"--secure-port=0",
		"--authentication-skip-lookup=true",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	cp.controllerManager = cmd
	cp.controllerExited = make(chan error, 1)
	go func() { cp.controllerExited <- cmd.Wait(); logFile.Close() }()
	return nil
}

// ServerVersion is what the apiserver says it is (its /version).
func (cp *ControlPlane) ServerVersion() (*version.Info, error) {
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		return nil, fmt.Errorf("discovery client for %s: %w", cp.Config.Host, err)
	}
	info, err := discoveryClient.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("version of %s: %w", cp.Config.Host, err)
	}
	return info, nil
}

// Stop ends kube-controller-manager (if started), kube-apiserver and etcd and
// removes their files.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.controllerManager != nil {
		_ = cp.controllerManager.Process.Kill()
		<-cp.controllerExited
	}
	// Stopped at once, each process reports that it did not stop in time.
	if err := cp.env.Stop(); err != nil && !cp.stopAtOnce {
		errs = append(errs, err)
	}
	if cp.workDir != "" {
		errs = append(errs, os.RemoveAll(cp.workDir))
	}
	return errors.Join(errs...)
}

// keepDescriptorsFromChildren marks every descriptor the test binary
// inherited close-on-exec, so etcd and kube-apiserver do not inherit them:
// go test -fuzz passes each worker its pipes to the coordinator, and the
// coordinator waits for the pipe to close, which an etcd outliving a killed
// worker would hold open for ever.
func keepDescriptorsFromChildren() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // not Linux: nothing to do for go test -fuzz's sake
	}
	for _, entry := range entries {
		if fd, err := strconv.Atoi(entry.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// RunTests is a test package's TestMain: it starts a control plane with
// options, shares it through shared, runs the tests, stops it and exits
// with their result.
func RunTests(m *testing.M, shared **ControlPlane, options ...Option) {
	cp, err := Start(options...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*shared = cp
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test control plane:", err)
	}
	os.Exit(code)
}
