package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/archive/compression"
	"github.com/opencontainers/go-digest"
)

// tarballSuffixes are the file names Import's callers (the watcher and
// `labctl images import`) take as image tarballs: plain, gzip or zstd.
var tarballSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"}

// IsTarball tells whether a file name looks like an image tarball.
func IsTarball(name string) bool {
	for _, s := range tarballSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// baseName is a file name without its directory and tarball suffix
// (/x/busybox.tar.gz is busybox).
func baseName(file string) string {
	b := filepath.Base(file)
	for _, s := range tarballSuffixes {
		if strings.HasSuffix(b, s) {
			return strings.TrimSuffix(b, s)
		}
	}
	return b
}

// Import reads an image tarball, in OCI layout (as `docker buildx`,
// skopeo's oci-archive or `ctr export` write it) or in `docker save`
// format, plain or compressed with gzip or zstd, stores its images for this
// platform and unpacks them. source is the file it came from (for names
// and messages; may be empty).
//
// The images are named as the tarball names them: docker save's repository
// tags (busybox:1.36 becomes docker.io/library/busybox:1.36), an OCI
// layout's io.containerd.image.name annotation, or its
// org.opencontainers.image.ref.name when that is a full name. A ref.name
// that is only a tag ("1.36") is taken as a tag of the file's base name
// (busybox.tar: docker.io/library/busybox:1.36). An image with no name at
// all is kept as import-<base name>@<digest>.
func (m *Manager) Import(ctx context.Context, r io.Reader, source string) ([]Image, error) {
	ctx = m.withLog(ctx)
	stream, err := compression.DecompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", source, err)
	}
	defer stream.Close()

	base := strings.ToLower(baseName(source))
	translate := func(refName string) string {
		if strings.ContainsAny(refName, "/:@") {
			if name, err := Normalize(refName); err == nil {
				return name
			}
			return ""
		}
		if refName == "" || base == "" {
			return ""
		}
		if name, err := Normalize(base + ":" + refName); err == nil {
			return name
		}
		return ""
	}
	unnamed := "import"
	if base != "" {
		unnamed += "-" + base
	}
	imported, err := m.client.Import(ctx, stream,
		ctrd.WithImageRefTranslator(translate),
		ctrd.WithDigestRef(func(d digest.Digest) string { return unnamed + "@" + d.String() }),
		ctrd.WithSkipDigestRef(func(name string) bool { return name != "" }),
		ctrd.WithImportPlatform(m.platform),
	)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", source, err)
	}
	if len(imported) == 0 {
		return nil, fmt.Errorf("import %s: the tarball holds no image", source)
	}

	var out []Image
	unpacked := map[digest.Digest]error{}
	for _, img := range imported {
		uerr, done := unpacked[img.Target.Digest]
		if !done {
			uerr = ctrd.NewImageWithPlatform(m.client, img, m.platform).Unpack(ctx, m.opts.Snapshotter)
			unpacked[img.Target.Digest] = uerr
		}
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("unpack %s: %w", img.Name, uerr))
			continue
		}
		d, derr := m.describe(ctx, img)
		if derr != nil {
			err = errors.Join(err, derr)
			continue
		}
		out = append(out, d)
	}
	if err != nil {
		return out, fmt.Errorf("import %s: %w", source, err)
	}
	m.opts.Logger.Info("imported images", "file", source, "images", names(out))
	return out, nil
}

func names(imgs []Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.Name
	}
	return out
}
