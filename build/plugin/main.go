// Command plugin builds the release of kubectl vmprofile (make plugin): a
// kubectl-vmprofile_<os>_<arch>.tar.gz per Krew platform, stamped with the
// version, and the Krew manifest deploy/krew/vmprofile.yaml with that
// version and each archive's SHA-256 filled in, all into -out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "plugin:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "bin/plugin", "directory for the archives and the manifest")
	version := flag.String("version", "", "version stamped into the binary and named by the manifest (default: the chart's appVersion)")
	flag.Parse()
	if *version == "" {
		v, err := chartAppVersion("deploy/chart/Chart.yaml")
		if err != nil {
			return err
		}
		*version = v
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	sums := map[string]string{}
	for _, p := range Platforms() {
		archive := filepath.Join(*out, p.Archive())
		sum, err := BuildArchive(context.Background(), p, *version, "LICENSE", archive)
		if err != nil {
			return err
		}
		sums[p.Key()] = sum
		fmt.Printf("%s  %s\n", sum, archive)
	}
	template, err := os.ReadFile("deploy/krew/vmprofile.yaml")
	if err != nil {
		return err
	}
	manifest, err := Render(template, *version, sums)
	if err != nil {
		return err
	}
	path := filepath.Join(*out, "vmprofile.yaml")
	if err := os.WriteFile(path, manifest, 0o644); err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}

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
	return chart.AppVersion, nil
}
