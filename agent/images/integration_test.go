package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	cimages "github.com/containerd/containerd/images"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	lcontainerd "labctl/agent/containerd"

	"labctl/internal/testimage"
)

// testEnv is a containerd of the test's own, under a short temporary
// directory (unix socket paths must stay under 108 bytes).
type testEnv struct {
	dir    string
	cfg    lcontainerd.Config
	client *ctrd.Client
}

func startContainerd(t *testing.T) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not installed")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox to build test images from (apt-get install busybox-static)")
	}
	dir, err := os.MkdirTemp("/tmp", "lci")
	if err != nil {
		t.Fatal(err)
	}
	cfg := lcontainerd.Defaults(dir)
	cfg.State = filepath.Join(dir, "state")
	cfg.Address = filepath.Join(dir, "c.sock")
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := lcontainerd.Start(ctx, cfg)
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	env := &testEnv{dir: dir, cfg: cfg, client: rt.Client()}
	t.Cleanup(func() {
		// Remove the namespace's images (and with them their content and
		// snapshots), stop containerd, check that nothing is left mounted.
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		is := env.client.ImageService()
		if list, err := is.List(dctx); err == nil {
			for _, img := range list {
				is.Delete(dctx, img.Name, cimages.SynchronousDelete())
			}
		}
		dcancel()
		cancel()
		<-rt.Done()
		if mounts, err := os.ReadFile("/proc/mounts"); err == nil && strings.Contains(string(mounts), " "+dir+"/") {
			t.Errorf("mounts left under %s:\n%s", dir, mounts)
		}
		os.RemoveAll(dir)
	})
	return env
}

// busyboxImage builds a small image from the machine's static busybox:
// /bin/busybox with /bin/sh and a few more applets as links, Cmd ["sh"].
// variant goes into a label, so that variants have different IDs.
func busyboxImage(t *testing.T, variant string) v1.Image {
	t.Helper()
	img, err := testimage.Busybox(variant)
	if errors.Is(err, testimage.ErrNoBusybox) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// dockerSave writes img as `docker save` does, tagged with tags.
func dockerSave(t *testing.T, img v1.Image, path string, tags ...string) {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for _, tag := range tags {
		ref, err := name.NewTag(tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, path, buf.Bytes())
}

// ociArchive writes img as an OCI layout tarball whose index names it
// refName (org.opencontainers.image.ref.name).
func ociArchive(t *testing.T, img v1.Image, path, refName string) {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName})); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := d.Info()
		hdr, _ := tar.FileInfoHeader(fi, "")
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	writeAtomically(t, path, buf.Bytes())
}

// writeAtomically puts a file in place in one step, as `mv` does.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startRegistry serves go-containerregistry's in-memory registry on
// 127.0.0.1; with a user it asks for HTTP basic authentication.
func startRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="labctl-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// push uploads img to the registry at host as repo:tag, with the plain
// registry API (monolithic blob uploads).
func push(t *testing.T, host, user, pass, repo, tag string, img v1.Image) {
	t.Helper()
	do := func(method, url, ctype string, body []byte) *http.Response {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s", method, url, resp.Status)
		}
		return resp
	}
	base := "http://" + host + "/v2/" + repo
	upload := func(d v1.Hash, data []byte) {
		resp := do("POST", base+"/blobs/uploads/", "", nil)
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + host + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		do("PUT", loc+sep+"digest="+d.String(), "application/octet-stream", data)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		rc, _ := l.Compressed()
		data, _ := io.ReadAll(rc)
		rc.Close()
		upload(d, data)
	}
	cfgName, _ := img.ConfigName()
	cfg, _ := img.RawConfigFile()
	upload(cfgName, cfg)
	mt, _ := img.MediaType()
	raw, _ := img.RawManifest()
	do("PUT", base+"/manifests/"+tag, string(mt), raw)
}

// closedPort returns a 127.0.0.1 address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// events records Ensure's events.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		fmt.Fprintf(&b, "%s %s %s\n", ev.Type, ev.Reason, ev.Message)
	}
	return b.String()
}

func (e *events) has(typ, reason, substr string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if ev.Type == typ && ev.Reason == reason && strings.Contains(ev.Message, substr) {
			return true
		}
	}
	return false
}

func (env *testEnv) unpacked(t *testing.T, m *Manager, name string) bool {
	t.Helper()
	img, err := env.client.ImageService().Get(context.Background(), name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ok, err := ctrd.NewImageWithPlatform(env.client, img, m.platform).IsUnpacked(context.Background(), "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestImportWatchListRemove(t *testing.T) {
	env := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := New(env.client, Options{})
	imagesDir := filepath.Join(env.dir, "agent", "images")
	os.MkdirAll(imagesDir, 0o755)

	// At start: a docker save tarball (two tags) and a broken file.
	dockerSave(t, busyboxImage(t, "docker"), filepath.Join(imagesDir, "lcdocker.tar"), "lcdocker:1", "lcdocker:latest")
	os.WriteFile(filepath.Join(imagesDir, "broken.tar"), []byte("not a tarball"), 0o644)
	os.WriteFile(filepath.Join(imagesDir, "notes.txt"), []byte("not an image"), 0o644)

	var mu sync.Mutex
	imported := map[string]error{}
	importedCh := make(chan string, 10)
	newWatcher := func() *Watcher {
		return &Watcher{Dir: imagesDir, Manager: m, Interval: 100 * time.Millisecond,
			Imported: func(file string, imgs []Image, err error) {
				mu.Lock()
				imported[filepath.Base(file)] = err
				mu.Unlock()
				importedCh <- filepath.Base(file)
			}}
	}
	w := newWatcher()
	err := w.ImportAll(ctx)
	if err == nil || !strings.Contains(err.Error(), "broken.tar") {
		t.Errorf("ImportAll: %v", err)
	}
	mu.Lock()
	if imported["lcdocker.tar"] != nil || imported["broken.tar"] == nil || len(imported) != 2 {
		t.Errorf("imports at start: %v", imported)
	}
	mu.Unlock()
	<-importedCh
	<-importedCh

	// Later: an OCI layout tarball whose ref.name is a tag only.
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	ociArchive(t, busyboxImage(t, "oci"), filepath.Join(imagesDir, "lcoci.tar"), "1")
	select {
	case f := <-importedCh:
		if f != "lcoci.tar" {
			t.Fatalf("imported %s", f)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watcher did not import lcoci.tar")
	}
	wcancel()
	<-done
	mu.Lock()
	if imported["lcoci.tar"] != nil {
		t.Fatalf("lcoci.tar: %v", imported["lcoci.tar"])
	}
	mu.Unlock()

	list, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Image{}
	for _, img := range list {
		byName[img.Name] = img
	}
	for _, n := range []string{"docker.io/library/lcdocker:1", "docker.io/library/lcdocker:latest", "docker.io/library/lcoci:1"} {
		img, ok := byName[n]
		if !ok {
			t.Fatalf("%s not listed; list: %+v", n, list)
		}
		if img.Size < 500_000 || !strings.HasPrefix(img.ID, "sha256:") || !strings.HasPrefix(img.RepoDigest, "docker.io/library/lc") {
			t.Errorf("%s: %+v", n, img)
		}
		if !env.unpacked(t, m, n) {
			t.Errorf("%s is not unpacked", n)
		}
	}
	if len(list) != 3 {
		t.Errorf("%d images listed: %+v", len(list), list)
	}
	if byName["docker.io/library/lcdocker:1"].ID == byName["docker.io/library/lcoci:1"].ID {
		t.Error("the two variants have one ID")
	}

	// The image config survived: Cmd ["sh"].
	cimg, _ := env.client.GetImage(ctx, "docker.io/library/lcoci:1")
	spec, err := cimg.Spec(ctx)
	if err != nil || len(spec.Config.Cmd) != 1 || spec.Config.Cmd[0] != "sh" {
		t.Errorf("config: %+v, %v", spec.Config, err)
	}

	// Present by name, and by digest (an alias record appears).
	if img, ok, err := m.Get(ctx, "lcoci:1"); !ok || err != nil || img.Name != "docker.io/library/lcoci:1" {
		t.Errorf("Get(lcoci:1) = %+v, %v, %v", img, ok, err)
	}
	byDigest := "lcoci@" + byName["docker.io/library/lcoci:1"].Digest
	if img, ok, err := m.Get(ctx, byDigest); !ok || err != nil || img.ID != byName["docker.io/library/lcoci:1"].ID {
		t.Errorf("Get(%s) = %+v, %v, %v", byDigest, img, ok, err)
	}
	if _, ok, _ := m.Get(ctx, "lcabsent:1"); ok {
		t.Error("lcabsent:1 is present")
	}

	// A restart imports nothing again but the file that failed.
	w2 := newWatcher()
	if err := w2.ImportAll(ctx); err == nil || !strings.Contains(err.Error(), "broken.tar") {
		t.Errorf("second ImportAll: %v", err)
	}
	if f := <-importedCh; f != "broken.tar" {
		t.Errorf("%s imported again after a restart", f)
	}
	select {
	case f := <-importedCh:
		t.Errorf("%s imported again after a restart", f)
	default:
	}

	// Remove by name, and by ID prefix (every name of the image).
	removed, err := m.Remove(ctx, "lcoci:1")
	if err != nil || len(removed) != 1 {
		t.Errorf("Remove(lcoci:1) = %v, %v", removed, err)
	}
	id := strings.TrimPrefix(byName["docker.io/library/lcdocker:1"].ID, "sha256:")[:12]
	removed, err = m.Remove(ctx, id)
	if err != nil || len(removed) != 2 {
		t.Errorf("Remove(%s) = %v, %v", id, removed, err)
	}
	if _, err := m.Remove(ctx, "lcoci:1"); !errdefs.IsNotFound(err) {
		t.Errorf("Remove of a removed image: %v", err)
	}
	list, _ = m.List(ctx)
	for _, img := range list {
		if strings.Contains(img.Name, "lcdocker") || img.Name == "docker.io/library/lcoci:1" {
			t.Errorf("%s is still there", img.Name)
		}
	}
	// With the digest alias gone too, their content went with them.
	if _, err := m.Remove(ctx, byDigest); err != nil {
		t.Errorf("Remove(%s): %v", byDigest, err)
	}
	var blobs int
	env.client.ContentStore().Walk(ctx, func(content.Info) error { blobs++; return nil })
	if blobs != 0 {
		t.Errorf("%d blobs left", blobs)
	}

	// After a restart, files whose images are gone are imported again.
	os.Remove(filepath.Join(imagesDir, "broken.tar"))
	w3 := newWatcher()
	if err := w3.ImportAll(ctx); err != nil {
		t.Errorf("third ImportAll: %v", err)
	}
	got := map[string]bool{}
	for len(importedCh) > 0 {
		got[<-importedCh] = true
	}
	if !got["lcdocker.tar"] || !got["lcoci.tar"] || len(got) != 2 {
		t.Errorf("re-imported %v", got)
	}
	// The record forgets removed files.
	if b, err := os.ReadFile(filepath.Join(imagesDir, ".labctl-imported.json")); err != nil || strings.Contains(string(b), "broken.tar") {
		t.Errorf("import record: %v\n%s", err, b)
	}
	if _, ok, _ := m.Get(ctx, "lcdocker:1"); !ok {
		t.Error("lcdocker:1 was not imported again")
	}
}

func TestPullMirrorsDirectAndSecrets(t *testing.T) {
	env := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	img := busyboxImage(t, "pulled")
	reg := startRegistry(t, "", "")
	push(t, reg, "", "", "library/lcmirror", "1", img)
	push(t, reg, "", "", "test", "1", img)
	private := startRegistry(t, "student", "s3cret")
	push(t, private, "student", "s3cret", "private/app", "1", img)

	// docker.io goes to the local registry first (its own endpoint,
	// registry-1.docker.io, is not reachable here and never asked).
	regs, err := ParseRegistries([]byte(fmt.Sprintf(`
mirrors:
  docker.io:
    endpoint: ["http://%s"]
    rewrite:
      "^rewritten/(.*)": "library/$1"
`, reg)), "/")
	if err != nil {
		t.Fatal(err)
	}
	if err := regs.WriteHostsDir(env.cfg.RegistryConfigDir); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(filepath.Join(env.cfg.RegistryConfigDir, "docker.io", "hosts.toml"))
	if !strings.Contains(string(hosts), fmt.Sprintf(`[host."http://%s/v2"]`, reg)) ||
		!strings.Contains(string(hosts), `server = "https://registry-1.docker.io"`) {
		t.Errorf("docker.io/hosts.toml:\n%s", hosts)
	}
	m := New(env.client, Options{HostsDir: env.cfg.RegistryConfigDir, Registries: regs, ProgressInterval: 5 * time.Millisecond})

	var progress []Progress
	var pmu sync.Mutex
	pulled, err := m.Pull(ctx, "lcmirror:1", PullOptions{Progress: func(p Progress) {
		pmu.Lock()
		progress = append(progress, p)
		pmu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Name != "docker.io/library/lcmirror:1" || !env.unpacked(t, m, pulled.Name) {
		t.Errorf("pulled %+v", pulled)
	}
	pmu.Lock()
	if len(progress) == 0 {
		t.Error("no progress reported")
	} else {
		last := progress[len(progress)-1]
		if last.Total < 500_000 || last.Done != last.Total || last.Image != "docker.io/library/lcmirror:1" {
			t.Errorf("last progress %+v", last)
		}
		for i := 1; i < len(progress); i++ {
			if progress[i].Done < progress[i-1].Done {
				t.Errorf("progress went back: %+v", progress)
			}
		}
	}
	t.Logf("%d progress reports, last %+v", len(progress), progress[len(progress)-1])
	pmu.Unlock()

	// A rewrite: docker.io/rewritten/lcmirror:1 is library/lcmirror:1 on
	// the mirror, and keeps its name.
	rw, err := m.Pull(ctx, "rewritten/lcmirror:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rw.Name != "docker.io/rewritten/lcmirror:1" || rw.ID != pulled.ID {
		t.Errorf("rewritten pull: %+v", rw)
	}

	// A loopback registry directly, in plain HTTP.
	direct, err := m.Pull(ctx, reg+"/test:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if direct.Name != reg+"/test:1" || direct.ID != pulled.ID {
		t.Errorf("direct pull: %+v", direct)
	}

	// Ensure: IfNotPresent with the image present pulls nothing.
	ev := &events{}
	res, err := m.Ensure(ctx, EnsureRequest{Image: reg + "/test:1", Events: ev.add, BackOffKey: "uid_" + reg + "/test:1"})
	if err != nil || res.Pulled || res.Offline || !ev.has(EventNormal, ReasonPulled, "already present on machine") {
		t.Errorf("Ensure(present): %+v, %v\n%s", res, err, ev)
	}
	// Always pulls, with upstream's events.
	ev = &events{}
	res, err = m.Ensure(ctx, EnsureRequest{Image: "lcmirror:1", PullPolicy: PullAlways, Events: ev.add})
	if err != nil || !res.Pulled || !ev.has(EventNormal, ReasonPulling, `Pulling image "lcmirror:1"`) ||
		!ev.has(EventNormal, ReasonPulled, `Successfully pulled image "lcmirror:1" in `) || !ev.has(EventNormal, ReasonPulled, "Image size: ") {
		t.Errorf("Ensure(Always): %+v, %v\n%s", res, err, ev)
	}

	// A missing image: ErrImagePull, then ImagePullBackOff with the error.
	ev = &events{}
	key := "uid_" + reg + "/missing:1"
	_, err = m.Ensure(ctx, EnsureRequest{Image: reg + "/missing:1", Events: ev.add, BackOffKey: key})
	var pe *PullError
	if !errors.As(err, &pe) || !errors.Is(err, ErrImagePull) ||
		!strings.Contains(pe.Message, "rpc error: code = NotFound desc = failed to pull and unpack image \""+reg+"/missing:1\"") ||
		!ev.has(EventWarning, ReasonFailed, `Failed to pull image "`+reg+`/missing:1": rpc error: code = NotFound`) {
		t.Errorf("Ensure(missing): %v\n%s", err, ev)
	}
	_, err = m.Ensure(ctx, EnsureRequest{Image: reg + "/missing:1", Events: ev.add, BackOffKey: key})
	if !errors.As(err, &pe) || !errors.Is(err, ErrImagePullBackOff) ||
		!strings.HasPrefix(pe.Message, `Back-off pulling image "`+reg+`/missing:1": ErrImagePull: rpc error: code = NotFound`) ||
		!ev.has(EventNormal, ReasonBackOff, `Back-off pulling image "`+reg+`/missing:1"`) {
		t.Errorf("Ensure(missing) again: %v\n%s", err, ev)
	}
	t.Logf("missing image events:\n%s", ev)

	// Never, absent.
	ev = &events{}
	_, err = m.Ensure(ctx, EnsureRequest{Image: "lcnever:1", PullPolicy: PullNever, Events: ev.add})
	if !errors.Is(err, ErrImageNeverPull) || !ev.has(EventWarning, ReasonErrImageNeverPull, `Container image "lcnever:1" is not present with pull policy of Never`) {
		t.Errorf("Ensure(Never): %v\n%s", err, ev)
	}
	// An invalid name.
	_, err = m.Ensure(ctx, EnsureRequest{Image: "Bad/Name"})
	if !errors.Is(err, ErrInvalidImageName) || !strings.Contains(err.Error(), `Failed to apply default image tag "Bad/Name"`) {
		t.Errorf("Ensure(invalid): %v", err)
	}

	// A private registry: refused without credentials (the registry
	// answered, so no offline fallback), pulled with a pull secret.
	_, err = m.Ensure(ctx, EnsureRequest{Image: private + "/private/app:1"})
	if !errors.Is(err, ErrImagePull) || !strings.Contains(err.Error(), "rpc error: code = Unknown desc = failed to pull and unpack image") {
		t.Errorf("Ensure(private, no secret): %v", err)
	}
	t.Logf("private, no secret: %v", err)
	auth := base64.StdEncoding.EncodeToString([]byte("student:s3cret"))
	secret := PullSecret{Name: "regcred", DockerConfigJSON: []byte(`{"auths":{"` + private + `":{"auth":"` + auth + `"}}}`)}
	wrong := PullSecret{Name: "wrong", Dockercfg: []byte(`{"` + private + `":{"username":"student","password":"nope"}}`)}
	res, err = m.Ensure(ctx, EnsureRequest{Image: private + "/private/app:1", PullSecrets: []PullSecret{wrong, secret}})
	if err != nil || !res.Pulled || res.Image.ID != pulled.ID {
		t.Errorf("Ensure(private, secrets): %+v, %v", res, err)
	}
}

func TestOfflineRule(t *testing.T) {
	env := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := New(env.client, Options{HostsDir: env.cfg.RegistryConfigDir, DialTimeout: 3 * time.Second})

	down := closedPort(t)
	reg := startRegistry(t, "", "")
	img := busyboxImage(t, "offline")
	tarPath := filepath.Join(env.dir, "offline.tar")
	dockerSave(t, img, tarPath, down+"/offline:latest", reg+"/notpushed:latest")
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Import(ctx, f, tarPath); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// No registry reachable, image present, policy Always (no tag): the
	// local image, with a warning.
	ev := &events{}
	res, err := m.Ensure(ctx, EnsureRequest{Image: down + "/offline", Events: ev.add, BackOffKey: "k1"})
	if err != nil || !res.Offline || res.Pulled || res.Image.Name != down+"/offline:latest" {
		t.Errorf("offline, present: %+v, %v\n%s", res, err, ev)
	}
	if !ev.has(EventWarning, ReasonFailed, "connection refused") || !ev.has(EventWarning, ReasonFailed, "using the local image") {
		t.Errorf("no warning:\n%s", ev)
	}
	t.Logf("offline events:\n%s", ev)

	// Absent: ErrImagePull as upstream.
	_, err = m.Ensure(ctx, EnsureRequest{Image: down + "/absent", BackOffKey: "k2"})
	var pe *PullError
	if !errors.As(err, &pe) || !errors.Is(err, ErrImagePull) || !strings.Contains(pe.Message, "connection refused") {
		t.Errorf("offline, absent: %v", err)
	}

	// The registry answers (not found): upstream's rule, even though the
	// image is present.
	ev = &events{}
	_, err = m.Ensure(ctx, EnsureRequest{Image: reg + "/notpushed", Events: ev.add})
	if !errors.Is(err, ErrImagePull) || ev.has(EventWarning, ReasonFailed, "using the local image") {
		t.Errorf("registry answered: %v\n%s", err, ev)
	}
}
