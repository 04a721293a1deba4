package kubelet

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Image is an image the node holds, unpacked for running.
type Image struct {
	Reference  string
	Entrypoint []string
	User       string
	// Root is the unpacked filesystem; the entrypoint is relative to it.
	Root string
}

// Images are the images a node imported, by reference, as containerd
// names images imported from an archive (io.containerd.image.name).
type Images map[string]Image

// ImportArchives imports every OCI image-layout archive (*.tar) in dir, the
// way k3s imports its airgap image directory, unpacking this machine's
// platform of each into workDir.
func ImportArchives(dir, workDir string) (Images, error) {
	archives, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("image archives in %s: %w", dir, err)
	}
	if len(archives) == 0 {
		return nil, fmt.Errorf("no image archives in %s: run make images", dir)
	}
	images := Images{}
	for _, archive := range archives {
		if err := images.importArchive(archive, workDir); err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
	}
	return images, nil
}

func (images Images) importArchive(archive, workDir string) error {
	dir, err := os.MkdirTemp(workDir, "layout-")
	if err != nil {
		return err
	}
	if err := untar(archive, dir); err != nil {
		return err
	}
	path, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("OCI layout of %s: %w", archive, err)
	}
	top, err := path.ImageIndex()
	if err != nil {
		return fmt.Errorf("index of %s: %w", archive, err)
	}
	manifest, err := top.IndexManifest()
	if err != nil {
		return fmt.Errorf("index manifest of %s: %w", archive, err)
	}
	for _, entry := range manifest.Manifests {
		ref := entry.Annotations["io.containerd.image.name"]
		if ref == "" {
			continue
		}
		index, err := top.ImageIndex(entry.Digest)
		if err != nil {
			return fmt.Errorf("index %s in %s: %w", entry.Digest, archive, err)
		}
		img, err := imageForThisMachine(index)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		unpacked, err := unpack(img, ref, workDir)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		images[ref] = unpacked
	}
	return nil
}

func imageForThisMachine(index v1.ImageIndex) (v1.Image, error) {
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image index manifest: %w", err)
	}
	for _, m := range manifest.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			img, err := index.Image(m.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", m.Digest, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("no linux/%s image", runtime.GOARCH)
}

// unpack writes the image's layers into a root directory readable by any
// user (the controller runs as 65532).
func unpack(img v1.Image, ref, workDir string) (Image, error) {
	config, err := img.ConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("config of image %s: %w", ref, err)
	}
	root, err := os.MkdirTemp(workDir, "rootfs-")
	if err != nil {
		return Image{}, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return Image{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return Image{}, fmt.Errorf("layers of image %s: %w", ref, err)
	}
	for _, layer := range layers {
		rc, err := layer.Uncompressed()
		if err != nil {
			return Image{}, fmt.Errorf("layer of image %s: %w", ref, err)
		}
		err = extract(tar.NewReader(rc), root)
		rc.Close()
		if err != nil {
			return Image{}, err
		}
	}
	return Image{Reference: ref, Entrypoint: config.Config.Entrypoint, User: config.Config.User, Root: root}, nil
}

func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	return extract(tar.NewReader(f), dir)
}

// extract writes regular files and directories (all an image of ours or
// an OCI layout holds) below dir, refusing paths that leave it.
func extract(r *tar.Reader, dir string) error {
	for {
		header, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("untar into %s: %w", dir, err)
		}
		target := filepath.Join(dir, filepath.FromSlash(header.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q leaves the directory", header.Name)
		}
		switch header.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(target, r, os.FileMode(header.Mode)&0o777); err != nil {
				return err
			}
		default:
			return fmt.Errorf("archive entry %q: type %c not supported", header.Name, header.Typeflag)
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
