package nodestack

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// paths are where the stack's files, binaries and sockets are.
type paths struct {
	Bin              string // etcd, kubelet, containerd, runc... (bin/)
	Dir              string // the stack's own temporary directory
	ContainerdSocket string
	CNIConfDir       string
	PauseImage       string
}

// containerdConfig is containerd's configuration (version 3, containerd 2):
// every directory under the stack's own, the native snapshotter (it works on
// any filesystem and needs no kernel module), runc from bin/ with cgroupfs
// (the kubelet's driver), the CNI plugins from bin/cni, the pause image as
// the sandbox, network namespaces under the state directory (so cleanup
// finds them with the other mounts), NRI off (its socket would be
// under /var/run), and OOM scores no lower than containerd's own: the
// kubelet asks -998 for sandboxes, which needs CAP_SYS_RESOURCE, and the
// sandboxes these tests run in withhold it (as rootless containerd does).
func containerdConfig(p paths) string {
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = %[3]q

[plugins.'io.containerd.internal.v1.opt']
  path = %[4]q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "native"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[5]q

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[6]q
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[7]q]
    conf_dir = %[8]q
`, p.Dir+"/containerd/root", p.Dir+"/containerd/state", p.ContainerdSocket, p.Dir+"/containerd/opt",
		p.PauseImage, p.Bin+"/runc", p.Bin+"/cni", p.CNIConfDir)
}

// cniConfig is the pod network: a bridge with host-local addresses from
// subnet, the node as the pods' gateway (no masquerade: nothing here leaves
// the machine), and portmap for hostPort, on nftables (these hosts have no
// iptables).
func cniConfig(bridge, subnet, ipamDir string) ([]byte, error) {
	config := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "nodestack",
		"plugins": []map[string]any{
			{
				"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": ipamDir,
				},
			},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "backend": "nftables"},
		},
	}
	raw, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("CNI config: %w", err)
	}
	return raw, nil
}

// kubeletSettings are what the kubelet's configuration varies by.
type kubeletSettings struct {
	CgroupRoot       string
	ContainerdSocket string
	ClientCAFile     string
	Port             int
	HealthzPort      int
	PodLogsDir       string
	Taints           []map[string]string
}

// kubeletConfig is the KubeletConfiguration. failCgroupV1: false because
// these hosts boot a hybrid cgroup v1 hierarchy, which kubelets from 1.35
// refuse otherwise; cgroupfs because no systemd runs; a cgroup root of the
// stack's own so cleanup finds every pod's cgroup; authentication of the
// apiserver by its client certificate and authorization by webhook, as on
// kubeadm clusters; eviction and image garbage collection thresholds so low
// that a full shared disk never evicts the test's pods or deletes the
// imported images, which no registry could bring back.
func kubeletConfig(s kubeletSettings) ([]byte, error) {
	config := map[string]any{
		"apiVersion":               "kubelet.config.k8s.io/v1beta1",
		"kind":                     "KubeletConfiguration",
		"failCgroupV1":             false,
		"cgroupDriver":             "cgroupfs",
		"cgroupRoot":               s.CgroupRoot,
		"cgroupsPerQOS":            true,
		"enforceNodeAllocatable":   []string{"pods"},
		"containerRuntimeEndpoint": "unix://" + s.ContainerdSocket,
		"port":                     s.Port,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              s.HealthzPort,
		"podLogsDir":               s.PodLogsDir,
		"failSwapOn":               false,
		"makeIPTablesUtilChains":   false,
		"serializeImagePulls":      false,
		"authentication": map[string]any{
			"anonymous": map[string]bool{"enabled": false},
			"webhook":   map[string]bool{"enabled": true},
			"x509":      map[string]string{"clientCAFile": s.ClientCAFile},
		},
		"authorization": map[string]string{"mode": "Webhook"},
		"evictionHard": map[string]string{
			"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%",
			"nodefs.inodesFree": "1%", "imagefs.inodesFree": "1%",
		},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"registerWithTaints":          s.Taints,
		"nodeStatusReportFrequency":   "10s",
	}
	raw, err := yaml.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	return raw, nil
}

// kubeProxyConfig is the KubeProxyConfiguration: nftables mode (the
// hosts have nft and no iptables), everything it serves on loopback, and
// conntrack left alone (zero values: it would otherwise tune the host's
// conntrack sysctls for every test run).
func kubeProxyConfig(kubeconfig, node, podSubnet string, healthzPort, metricsPort int) ([]byte, error) {
	config := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "nftables",
		"clientConnection":   map[string]string{"kubeconfig": kubeconfig},
		"hostnameOverride":   node,
		"clusterCIDR":        podSubnet,
		"healthzBindAddress": fmt.Sprintf("127.0.0.1:%d", healthzPort),
		"metricsBindAddress": fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"conntrack": map[string]any{
			"maxPerCore": 0, "min": 0,
			"tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
		},
	}
	raw, err := yaml.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	return raw, nil
}

// imageReference is the name an OCI archive of make images or build/images
// -node gives its image (the io.containerd.image.name annotation of its
// index.json), which ctr imports it under.
func imageReference(index []byte) (string, error) {
	var layout struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(index, &layout); err != nil {
		return "", fmt.Errorf("index.json: %w", err)
	}
	for _, m := range layout.Manifests {
		if name := m.Annotations["io.containerd.image.name"]; strings.TrimSpace(name) != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("index.json names no image (no io.containerd.image.name annotation)")
}
