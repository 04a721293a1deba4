package nodestack

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestImageReferenceReadsContainerdsAnnotation(t *testing.T) {
	index := []byte(`{"schemaVersion":2,"manifests":[{"annotations":{"io.containerd.image.name":"registry.local/vmoperator/pause:0.2.0","org.opencontainers.image.ref.name":"0.2.0"}}]}`)
	ref, err := imageReference(index)
	if err != nil || ref != "registry.local/vmoperator/pause:0.2.0" {
		t.Errorf("imageReference = %q, %v", ref, err)
	}
	if _, err := imageReference([]byte(`{"manifests":[{}]}`)); err == nil {
		t.Error("an index naming no image gave no error")
	}
}

func TestKubeletConfigKeepsCgroupV1AndTheHostsImages(t *testing.T) {
	raw, err := kubeletConfig(kubeletSettings{CgroupRoot: "/nodestack-1", ContainerdSocket: "/tmp/x/containerd.sock", Port: 1, HealthzPort: 2})
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]any
	if err := yaml.Unmarshal(raw, &config); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "cgroupRoot": "/nodestack-1",
		"containerRuntimeEndpoint": "unix:///tmp/x/containerd.sock", "readOnlyPort": float64(0),
		"imageGCHighThresholdPercent": float64(100),
	} {
		if config[key] != want {
			t.Errorf("%s = %v, want %v", key, config[key], want)
		}
	}
	authorization, _ := config["authorization"].(map[string]any)
	if authorization["mode"] != "Webhook" {
		t.Errorf("authorization %v, want Webhook", authorization)
	}
}

func TestContainerdConfigKeepsEverythingUnderTheStacksDirectory(t *testing.T) {
	config := containerdConfig(paths{Bin: "/bin", Dir: "/tmp/ns", ContainerdSocket: "/tmp/ns/c.sock", CNIConfDir: "/tmp/ns/cni", PauseImage: "p:1"})
	for _, want := range []string{`root = "/tmp/ns/containerd/root"`, `state = "/tmp/ns/containerd/state"`, `address = "/tmp/ns/c.sock"`,
		`sandbox = "p:1"`, `BinaryName = "/bin/runc"`, `netns_mounts_under_state_dir = true`, `restrict_oom_score_adj = true`, `snapshotter = "native"`} {
		if !strings.Contains(config, want) {
			t.Errorf("containerd config lacks %s:\n%s", want, config)
		}
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/tmp/a\040b`); got != "/tmp/a b" {
		t.Errorf("unescapeMountPath = %q", got)
	}
}
