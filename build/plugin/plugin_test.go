package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewPlugin is the part of Krew's Plugin (v1alpha2) the test checks.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Caveats          string `json:"caveats"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifestNamesTheBinary: the manifest, rendered, parses strictly
// as a Krew Plugin named vmprofile whose every platform installs the
// archive the release builds for it and runs kubectl-vmprofile from it.
func TestKrewManifestNamesTheBinary(t *testing.T) {
	template, err := os.ReadFile("../../deploy/krew/vmprofile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for i, p := range Platforms() {
		sums[p.Key()] = strings.Repeat(string(rune('a'+i)), 64)
	}
	rendered, err := Render(template, "0.3.1", sums)
	if err != nil {
		t.Fatal(err)
	}
	var plugin krewPlugin
	if err := yaml.UnmarshalStrict(rendered, &plugin); err != nil {
		t.Fatalf("manifest does not parse: %v", err)
	}
	if plugin.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || plugin.Kind != "Plugin" || plugin.Metadata.Name != "vmprofile" {
		t.Fatalf("not Krew's Plugin vmprofile: %s %s %s", plugin.APIVersion, plugin.Kind, plugin.Metadata.Name)
	}
	if plugin.Spec.Version != "v0.3.1" || plugin.Spec.ShortDescription == "" {
		t.Errorf("version %q, shortDescription %q", plugin.Spec.Version, plugin.Spec.ShortDescription)
	}
	if len(plugin.Spec.Platforms) != len(Platforms()) {
		t.Fatalf("%d platforms, the release builds %d", len(plugin.Spec.Platforms), len(Platforms()))
	}
	for i, p := range Platforms() {
		got := plugin.Spec.Platforms[i]
		if got.Selector.MatchLabels["os"] != p.OS || got.Selector.MatchLabels["arch"] != p.Arch {
			t.Errorf("platform %d selects %v, want %s", i, got.Selector.MatchLabels, p.Key())
		}
		if got.Bin != "kubectl-vmprofile" || len(got.Files) == 0 || got.Files[0].From != "kubectl-vmprofile" {
			t.Errorf("%s: bin %q, files %+v", p.Key(), got.Bin, got.Files)
		}
		if want := "/releases/download/v0.3.1/" + p.Archive(); !strings.HasSuffix(got.URI, want) {
			t.Errorf("%s: uri %s, want it to end with %s", p.Key(), got.URI, want)
		}
		if got.SHA256 != sums[p.Key()] {
			t.Errorf("%s: sha256 %s, want %s", p.Key(), got.SHA256, sums[p.Key()])
		}
	}
	delete(sums, "darwin_arm64")
	if _, err := Render(template, "0.3.1", sums); err == nil || !strings.Contains(err.Error(), "SHA256_darwin_arm64 not filled") {
		t.Errorf("a missing sum: %v", err)
	}
}

// TestPackIsReproducible: the archive holds the executable binary and the
// license at its root, and the same files give the same bytes.
func TestPackIsReproducible(t *testing.T) {
	files := map[string][]byte{"kubectl-vmprofile": []byte("\x7fELF..."), "LICENSE": []byte("Apache-2.0")}
	first, err := Pack(files)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := Pack(files)
	if !bytes.Equal(first, second) {
		t.Error("two packs of the same files differ")
	}
	gz, err := gzip.NewReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name+":"+strings.TrimPrefix(os.FileMode(h.Mode).String(), "-"))
	}
	if strings.Join(got, " ") != "kubectl-vmprofile:rwxr-xr-x LICENSE:rw-r--r--" {
		t.Errorf("archive holds %v", got)
	}
}
