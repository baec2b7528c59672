package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"labctl/agent/proxy"
	"labctl/internal/mountinfo"
	"labctl/internal/testimage"
	"labctl/networking"
)

// The node tests run `labctl server` with its node: real containerd, runc,
// CNI and nftables, pods from an image the test builds from the machine's
// busybox-static. They need root (CI is root). One node cluster runs at a
// time: the node owns the machine's cni0 bridge, port 10250 and labctl's
// containerd.

// nodeName is the node the e2e server registers.
const nodeName = "e2e-node"

// nodeMu keeps node clusters one at a time.
var nodeMu sync.Mutex

// importedImage is the image the tests put in the images folder;
// registryImage is pushed to the test's registry on 127.0.0.1.
const importedImage = "busybox:e2e"

// nodeCluster is a server with its node and a registry.
type nodeCluster struct {
	*cluster
	dataDir  string
	registry string // 127.0.0.1:port
}

// startNodeCluster starts a server with its node, after writing the test
// image into the images folder and into a registry on 127.0.0.1; it
// waits for the node to be Ready. At the end it deletes every pod, waits
// for the node to remove them, stops the server and removes the pod
// network and the pods' cgroups.
func startNodeCluster(t *testing.T) *nodeCluster {
	t.Helper()
	return startNodeClusterWith(t, clusterOptions{})
}

// startNodeClusterWith is startNodeCluster with more options (agent and
// prepare are set here).
func startNodeClusterWith(t *testing.T, opts clusterOptions) *nodeCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the node tests need root (CI runs them as root)")
	}
	img, err := testimage.Busybox("")
	if err != nil {
		t.Skip(err)
	}
	nodeMu.Lock()
	t.Cleanup(nodeMu.Unlock)
	// And one per machine, with the node benchmark (scripts/nodebench).
	lock, err := os.OpenFile("/tmp/labctl-node.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, err := name.ParseReference(host + "/e2e/busybox:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push the test image to %s: %v", ref, err)
	}

	var dataDir string
	opts.agent = true
	opts.prepare = func(dir string) {
		dataDir = dir
		images := filepath.Join(dir, "agent", "images")
		if err := os.MkdirAll(images, 0o755); err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag("docker.io/library/" + importedImage)
		if err := tarball.WriteToFile(filepath.Join(images, "busybox.tar"), tag, img); err != nil {
			t.Fatal(err)
		}
	}
	c := startClusterWith(t, opts)
	n := &nodeCluster{cluster: c, dataDir: dataDir, registry: host}
	t.Cleanup(func() { n.cleanup(t) })
	n.waitNodeReady(t, 60*time.Second)
	return n
}

// admin runs the kubectl on PATH (any version) as the admin, with a
// discovery and HTTP cache of this cluster's own: kubectl's default cache
// (~/.kube/cache) is keyed by host and port only, so it holds what earlier
// servers on the same port answered (once, a labctl build of an earlier
// session whose /api document had the wrong Content-Type, revalidated by
// its unchanged ETag, which left this server's node "without" pods).
func (n *nodeCluster) admin(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", n.kubeconfig, "--cache-dir", n.adminCache()}, args...)...)
	out, err := cmd.Output()
	r := result{version: "path", args: args, stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		r.stderr = string(ee.Stderr)
	} else if err != nil {
		r.code = -1
		r.stderr = err.Error()
	}
	return r
}

func (n *nodeCluster) waitNodeReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r := n.admin(t, "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if r.stdout == "True" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("node %s not Ready after %v\nserver log:\n%s", nodeName, timeout, n.stderr.String())
}

// cleanup removes every pod (static ones by their manifests), stops the
// server and removes what the node left on the machine.
func (n *nodeCluster) cleanup(t *testing.T) {
	n.checkHealthy(t)
	manifests := filepath.Join(n.dataDir, "agent", "pod-manifests")
	entries, _ := os.ReadDir(manifests)
	for _, e := range entries {
		os.Remove(filepath.Join(manifests, e.Name()))
	}
	select {
	case <-n.exited:
	default:
		// The workloads first, or their controllers make new pods.
		r := n.admin(t, "delete", "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs,replicationcontrollers",
			"--all", "--all-namespaces", "--wait=false")
		if r.code != 0 {
			t.Errorf("deleting the workloads: %s", r)
		}
		r = n.admin(t, "delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait", "--timeout=60s")
		if r.code != 0 {
			t.Errorf("deleting the pods: %s", r)
		}
		// The kubelet removes a pod's containers once the API object goes.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if dirs, _ := os.ReadDir(filepath.Join(n.dataDir, "agent", "pods")); len(dirs) == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if dirs, _ := os.ReadDir(filepath.Join(n.dataDir, "agent", "pods")); len(dirs) != 0 {
			t.Errorf("the node left %d pod directories", len(dirs))
		}
	}
	n.stop(t)
	n.forceCleanup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := networking.Cleanup(ctx, networking.Config{}); err != nil {
		t.Errorf("removing the pod network: %v", err)
	}
	if err := proxy.Cleanup(proxy.DefaultTable); err != nil {
		t.Errorf("removing the service proxy's table: %v", err)
	}
	removeCgroups("/labctl")
}

// removeCgroups removes the cgroup at path (and what is under it) in
// every hierarchy.
func removeCgroups(path string) {
	roots := []string{"/sys/fs/cgroup"}
	if entries, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range entries {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	for _, root := range roots {
		dir := filepath.Join(root, path)
		var dirs []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// restart stops the server and starts it again on the same data.
func (n *nodeCluster) restart(t *testing.T) {
	t.Helper()
	n.stop(t)
	n.client = nil
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	if err := n.waitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	n.waitNodeReady(t, 60*time.Second)
}

// podJSON reads a pod as a map.
func (n *nodeCluster) pod(t testing.TB, ns, name string) map[string]any {
	t.Helper()
	r := n.admin(t, "get", "pod", "-n", ns, name, "-o", "json")
	if r.code != 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("pod %s/%s: %v", ns, name, err)
	}
	return m
}

// waitPod waits until ok holds for the pod (as JSON), and returns it.
func (n *nodeCluster) waitPod(t testing.TB, ns, name string, timeout time.Duration, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		if p := n.pod(t, ns, name); p != nil {
			last = p
			if ok(p) {
				return p
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	status, _ := field(last, "status")
	t.Fatalf("pod %s/%s: not %s after %v; status: %s\nevents:\n%s", ns, name, what, timeout, show(status),
		n.admin(t, "get", "events", "-n", ns, "--field-selector", "involvedObject.name="+name).stdout)
	return nil
}

func phaseIs(phase string) func(map[string]any) bool {
	return func(p map[string]any) bool {
		v, _ := field(p, "status.phase")
		return v == phase
	}
}

// containerStatus is the status of the pod's container (or init
// container) named c.
func containerStatus(p map[string]any, c string) map[string]any {
	for _, key := range []string{"containerStatuses", "initContainerStatuses"} {
		list, _ := field(p, "status."+key)
		items, _ := list.([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			if m["name"] == c {
				return m
			}
		}
	}
	return nil
}

func fieldString(obj any, path string) string {
	v, ok := field(obj, path)
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// adminCache is the kubectl cache directory of admin and apply.
func (n *nodeCluster) adminCache() string { return filepath.Join(n.dir, "kubectl-cache-admin") }

// apply applies a manifest as the admin.
func (n *nodeCluster) apply(t testing.TB, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", n.kubeconfig, "--cache-dir", n.adminCache(), "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// httpGet fetches url and returns the body.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// forceCleanup kills what the node left running (the shims of labctl's
// containerd and their containers) and unmounts what it left mounted, so
// that a failed test does not leave them behind. It finds nothing when
// the pods were removed as they should be.
func (n *nodeCluster) forceCleanup(t *testing.T) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if !strings.Contains(cmd, "containerd-shim-runc-v2 -namespace labctl ") || !strings.Contains(cmd, "/run/labctl/containerd/containerd.sock") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		t.Errorf("killing a container shim the node left: %d %s", pid, cmd)
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, c := range strings.Fields(string(children)) {
			if cp, err := strconv.Atoi(c); err == nil {
				syscall.Kill(cp, syscall.SIGKILL)
			}
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts, err := mountinfo.Read()
	if err != nil {
		return
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		m := mounts[i].Point
		if strings.HasPrefix(m, n.dataDir+"/") || strings.HasPrefix(m, "/run/labctl/netns/") ||
			strings.HasPrefix(m, "/run/labctl/containerd/") {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
}

// webDeployment is the Deployment the Service and DNS tests put behind
// their Services: replicas busybox pods labelled app=web that answer on
// 8080 with their hostname. With readiness, a pod is ready while its
// /tmp/ready exists (a test removes it to take the pod out of rotation).
func webDeployment(replicas int, readiness bool) string {
	command := "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"
	probe := ""
	if readiness {
		command = "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"
		probe = `
        ports: [{containerPort: 8080}]
        readinessProbe:
          exec: {command: [test, -f, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1`
	}
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %s
        command: [sh, -c, '%s']%s
---
`, replicas, importedImage, command, probe)
}
