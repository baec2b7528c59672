// Package testimage builds container images for tests from the machine's
// static busybox (Debian's busybox-static), so that tests need no
// registry: a layer with /bin/busybox and links for the common applets,
// run as `sh`.
package testimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is where the static busybox is read from.
const BusyboxPath = "/bin/busybox"

// ErrNoBusybox is returned when BusyboxPath is missing.
var ErrNoBusybox = errors.New("no " + BusyboxPath + " to build test images from (apt-get install busybox-static)")

var applets = []string{"sh", "ls", "cat", "echo", "sleep", "env", "hostname", "readlink", "head", "tr", "timeout",
	"tail", "rm", "touch", "mkdir", "grep", "sed", "wc", "id", "ps", "kill", "true", "false", "test",
	"httpd", "nc", "wget", "nslookup", "mount", "df", "date", "printf", "seq", "yes", "stat", "cp", "mv", "ip"}

// Busybox is an image of the static busybox, Cmd ["sh"], PATH=/bin.
// A non-empty variant goes into a label, so that variants have
// different IDs.
func Busybox(variant string) (v1.Image, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoBusybox
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(1700000000, 0)
	for _, d := range []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod})
	}
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb)), ModTime: mod})
	tw.Write(bb)
	for _, applet := range applets {
		tw.WriteHeader(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mod})
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: mod}
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Env = []string{"PATH=/bin"}
	if variant != "" {
		cf.Config.Labels = map[string]string{"labctl.test/variant": variant}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("test image config: %w", err)
	}
	return img, nil
}
