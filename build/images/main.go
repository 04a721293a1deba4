// Command images builds the vmop-controller and vmop-agent images without a
// container engine: static Go binaries for linux/amd64 and linux/arm64, each
// in a one-layer image, written as OCI image-layout archives
// (bin/images/<name>.tar) that `ctr images import`, k3s' airgap image
// directory, `skopeo copy oci-archive:…` and `crane push` take. The same
// commit gives the same bytes: the binaries are built with -trimpath and the
// images are dated by the commit, not the clock.
//
//	go run ./build/images -out bin/images
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run() error {
	o := Options{Source: "."}
	flag.StringVar(&o.Out, "out", "bin/images", "directory for the archives")
	flag.StringVar(&o.Registry, "registry", "registry.local/vmoperator", "registry and path the archives name their images under (the chart's image.registry)")
	flag.StringVar(&o.Version, "version", "", "version stamped into the binaries and used as tag (default: the chart's appVersion)")
	node := flag.Bool("node", false, "build the node stack's images instead (pause and nodestack-hello, this machine's platform only; internal/testing/nodestack)")
	flag.Parse()
	if *node {
		o.Components, o.Platforms = NodeComponents(), []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}
	}
	var err error
	if o.Version == "" {
		if o.Version, err = chartAppVersion("deploy/chart/Chart.yaml"); err != nil {
			return err
		}
	}
	o.Revision = gitOutput("rev-parse", "HEAD")
	if o.Created, err = sourceDate(); err != nil {
		return err
	}
	started := time.Now()
	results, err := Build(context.Background(), o)
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Printf("%s  %s  %.1f MiB  index %s\n", r.Archive, r.Reference, float64(r.Size)/(1<<20), r.Index)
		for platform, digest := range r.Manifests {
			fmt.Printf("    %-12s %s\n", platform, digest)
		}
	}
	fmt.Printf("built in %v\n", time.Since(started).Round(100*time.Millisecond))
	return nil
}

// chartAppVersion reads the release version from the chart, the one place
// it is written.
func chartAppVersion(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if chart.AppVersion == "" {
		return "", fmt.Errorf("%s has no appVersion", path)
	}
	return chart.AppVersion, nil
}

// sourceDate is $SOURCE_DATE_EPOCH (the reproducible-builds convention),
// else the commit's time, else the Unix epoch outside a git checkout.
func sourceDate() (time.Time, error) {
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		epoch = gitOutput("log", "-1", "--format=%ct")
	}
	if epoch == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	seconds, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
	}
	return time.Unix(seconds, 0).UTC(), nil
}

// gitOutput runs git, "" when it fails (no git, not a checkout).
func gitOutput(args ...string) string {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
