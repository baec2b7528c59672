package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"labctl/agent/images"
	"labctl/networking"
)

// The pod runtime (runtime.go, sandbox.go, container.go, logs.go, dns.go):
// the kubelet's calls into containerd, the images Manager and the pod
// network. podRuntime runs a pod's sandbox (sandbox.go), starts and stops
// its containers and reads their states (container.go), kills whole pods
// and lists the pods whose containers it finds in containerd, so that a
// restarted agent adopts them. What each container belongs to is in its
// containerd labels (the io.kubernetes.* names upstream's CRI uses, and
// labctl.io/* for the rest), and what a container's exit was is recorded
// there too when its task is deleted, so that containerd alone tells a
// restarted agent everything.

// Container labels.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	labelManaged       = "labctl.io/managed"       // "true" on every container labctl made
	labelInit          = "labctl.io/init"          // "true" on init containers
	labelRestartCount  = "labctl.io/restart-count" // the run's restart count
	labelImage         = "labctl.io/image"         // the spec's image
	labelImageID       = "labctl.io/image-id"      // the image by digest
	labelLogPath       = "labctl.io/log-path"
	labelStartedAt     = "labctl.io/started-at" // RFC 3339, set once started
	labelFinishedAt    = "labctl.io/finished-at"
	labelExitCode      = "labctl.io/exit-code"
	labelOOMKilled     = "labctl.io/oom-killed"
)

// imageEnsurer is what podRuntime needs of the images Manager.
type imageEnsurer interface {
	Ensure(ctx context.Context, req images.EnsureRequest) (images.EnsureResult, error)
}

// podNetwork is what podRuntime needs of networking.Network.
type podNetwork interface {
	NetNSPath(id string) string
	NewNetNS(id string) (string, error)
	RemoveNetNS(id string) error
	Setup(ctx context.Context, podID, netnsPath string, ports []networking.PortMapping) (networking.PodNetwork, error)
	Teardown(ctx context.Context, podID, netnsPath string) error
}

var (
	_ imageEnsurer = (*images.Manager)(nil)
	_ podNetwork   = (*networking.Network)(nil)
)

// runtimeConfig configures a podRuntime. Zero values mean the defaults.
type runtimeConfig struct {
	// Root holds the pods' directories, Root/pods/<uid>, and the FIFOs of
	// the containers' output, Root/fifo.
	Root string
	// LogDir holds the container logs (default /var/log/pods).
	LogDir string
	// CgroupParent is the cgroup under which each pod gets one,
	// <CgroupParent>/pod<uid> (default /labctl).
	CgroupParent string
	// Snapshotter unpacks the containers' root filesystems (default
	// overlayfs, as the images Manager).
	Snapshotter string
	// ClusterDNS and ClusterDomain are the cluster's DNS service
	// addresses and domain (default cluster.local).
	ClusterDNS    []string
	ClusterDomain string
	// HostResolvConf and HostHostsFile are the node's (default
	// /etc/resolv.conf and /etc/hosts).
	HostResolvConf, HostHostsFile string
	// MemoryCapacity is the node's memory in bytes, for the oom_score_adj
	// of Burstable pods (0: read /proc/meminfo).
	MemoryCapacity int64
	// Exited, when set, is called (on the waiter's goroutine) after a
	// container of the pod with the UID exited and its exit is recorded.
	Exited func(podUID types.UID)
	// Logger receives the runtime's messages (default: discarded).
	Logger *slog.Logger
}

func (c runtimeConfig) withDefaults() runtimeConfig {
	if c.LogDir == "" {
		c.LogDir = "/var/log/pods"
	}
	if c.CgroupParent == "" {
		c.CgroupParent = "/labctl"
	}
	if c.Snapshotter == "" {
		c.Snapshotter = "overlayfs"
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.HostResolvConf == "" {
		c.HostResolvConf = "/etc/resolv.conf"
	}
	if c.HostHostsFile == "" {
		c.HostHostsFile = "/etc/hosts"
	}
	if c.MemoryCapacity == 0 {
		if kib, err := memTotalKiB("/proc/meminfo"); err == nil {
			c.MemoryCapacity = kib * 1024
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// podRuntime runs pods on containerd.
type podRuntime struct {
	cfg    runtimeConfig
	client *ctrd.Client
	images imageEnsurer
	net    podNetwork // nil: hostNetwork pods only

	// ctx ends, and closed is closed, when Close is called.
	ctx    context.Context
	cancel context.CancelFunc
	closed chan struct{}

	// creating has a slot for each shim group: the task being created
	// or deleted in it (createSlot, deleteTask).
	creating []chan struct{}

	// containers knows each pod's containers (podContainers).
	containers *containerIndex

	mu      sync.Mutex
	running map[string]*runningContainer // by container ID: the ones whose output this process copies
}

// newPodRuntime returns a runtime over client (whose default namespace is
// labctl's), the images Manager and the pod network (nil when the node
// has no pod CIDR yet).
func newPodRuntime(cfg runtimeConfig, client *ctrd.Client, im imageEnsurer, net podNetwork) (*podRuntime, error) {
	if cfg.Root == "" {
		return nil, errors.New("pod runtime: no root directory")
	}
	cfg = cfg.withDefaults()
	for _, d := range []string{filepath.Join(cfg.Root, "pods"), filepath.Join(cfg.Root, "fifo"), cfg.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	r := &podRuntime{cfg: cfg, client: client, images: im, net: net, running: map[string]*runningContainer{}, closed: make(chan struct{}),
		containers: newContainerIndex()}
	r.creating = newShimSlots()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Close lets go of the containers without stopping them, as the agent
// does when it stops: it stops waiting for their exits and copying their
// output (which waits in the FIFOs for the next agent's Adopt).
func (r *podRuntime) Close() {
	r.mu.Lock()
	select {
	case <-r.closed:
		r.mu.Unlock()
		return
	default:
	}
	close(r.closed)
	r.cancel()
	running := r.running
	r.running = map[string]*runningContainer{}
	r.mu.Unlock()
	for _, rc := range running {
		// Attached clients end; the stdin copy stops (the container sees
		// its stdin end, as it would when the FIFO's writer goes anyway).
		rc.attach.close()
		if io := rc.task.IO(); io != nil {
			io.Close()
		}
		rc.stdout.flush()
		rc.stderr.flush()
		rc.log.Close()
	}
}

// Adopt takes on the containers labctl left running (after a restart of
// the agent): it attaches to their output again, appending to their logs,
// and waits for their exits. A container that exited meanwhile gets its
// exit recorded now.
func (r *podRuntime) Adopt(ctx context.Context) error {
	cs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==true", labelManaged))
	if err != nil {
		return err
	}
	var errs []error
	for _, cont := range cs {
		r.mu.Lock()
		_, ours := r.running[cont.ID()]
		r.mu.Unlock()
		if ours {
			continue
		}
		if err := r.adopt(ctx, cont); err != nil {
			errs = append(errs, fmt.Errorf("adopt container %s: %w", cont.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func (r *podRuntime) adopt(ctx context.Context, cont ctrd.Container) error {
	labels, err := cont.Labels(ctx)
	if err != nil {
		return err
	}
	if _, recorded := labels[labelExitCode]; recorded {
		return nil
	}
	logPath := labels[labelLogPath]
	if logPath == "" {
		return errors.New("no log path label")
	}
	clog, err := openCRILog(logPath)
	if err != nil {
		return err
	}
	rc := &runningContainer{log: clog, stdout: clog.stream("stdout"), stderr: clog.stream("stderr"), done: make(chan struct{}), podUID: types.UID(labels[labelPodUID])}
	task, err := cont.Task(ctx, cio.NewAttach(cio.WithStreams(nil, rc.stdout, rc.stderr)))
	if err != nil {
		clog.Close()
		if errdefs.IsNotFound(err) {
			return nil // created, never started: StartContainer starts afresh
		}
		return err
	}
	rc.task = task
	if io := task.IO(); io != nil {
		if dir := filepath.Dir(io.Config().Stdout); strings.HasPrefix(dir, filepath.Join(r.cfg.Root, "fifo")+"/") {
			rc.fifoDir = dir
		}
	}
	exitCh, err := task.Wait(r.ctx)
	if err != nil {
		if io := task.IO(); io != nil {
			io.Close()
		}
		clog.Close()
		return err
	}
	r.mu.Lock()
	r.running[cont.ID()] = rc
	r.mu.Unlock()
	go r.wait(cont, rc, exitCh)
	return nil
}

// runtimePod is a pod as containerd and the pod directories show it.
type runtimePod struct {
	UID       types.UID
	Namespace string
	Name      string
	// Sandbox is the pod's sandbox, nil when its directory is gone.
	Sandbox *sandbox
	// Containers are its containers, by name and then restart count.
	Containers []runtimeContainer
}

// runtimeContainer is one container (one run of a pod's container).
type runtimeContainer struct {
	ID           string
	Name         string
	Init         bool
	RestartCount int32
	Labels       map[string]string
}

// ListPods finds the pods labctl runs: the containers with labctl's
// labels, and the sandboxes in the pod directories (a pod may have a
// sandbox and no container yet).
func (r *podRuntime) ListPods(ctx context.Context) ([]runtimePod, error) {
	cs, err := r.managedContainers(ctx, fmt.Sprintf("labels.%q==true", labelManaged))
	if err != nil {
		return nil, err
	}
	pods := map[types.UID]*runtimePod{}
	get := func(uid types.UID) *runtimePod {
		p := pods[uid]
		if p == nil {
			p = &runtimePod{UID: uid}
			pods[uid] = p
		}
		return p
	}
	for _, c := range cs {
		uid := types.UID(c.Labels[labelPodUID])
		if uid == "" {
			continue
		}
		p := get(uid)
		p.Namespace, p.Name = c.Labels[labelPodNamespace], c.Labels[labelPodName]
		p.Containers = append(p.Containers, c)
	}
	entries, err := os.ReadDir(filepath.Join(r.cfg.Root, "pods"))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		sb, err := r.loadSandbox(e.Name())
		if err != nil {
			continue
		}
		p := get(types.UID(sb.UID))
		p.Sandbox = sb
		p.Namespace, p.Name = sb.Namespace, sb.Name
	}
	out := make([]runtimePod, 0, len(pods))
	for _, p := range pods {
		sort.Slice(p.Containers, func(i, j int) bool {
			a, b := p.Containers[i], p.Containers[j]
			if a.Name != b.Name {
				return a.Name < b.Name
			}
			return a.RestartCount < b.RestartCount
		})
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out, nil
}

// managedContainers are labctl's containers that match the containerd
// filter, with what their labels say.
func (r *podRuntime) managedContainers(ctx context.Context, filter string) ([]runtimeContainer, error) {
	cs, err := r.client.Containers(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []runtimeContainer
	for _, c := range cs {
		// The labels the list read: asking again would be one more call
		// to containerd for each container.
		info, err := c.Info(ctx, ctrd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, err
		}
		labels := info.Labels
		if labels[labelManaged] != "true" {
			continue
		}
		out = append(out, newRuntimeContainer(c.ID(), labels))
	}
	return out, nil
}

// newRuntimeContainer describes the container id with labels.
func newRuntimeContainer(id string, labels map[string]string) runtimeContainer {
	n, _ := strconv.Atoi(labels[labelRestartCount])
	return runtimeContainer{ID: id, Name: labels[labelContainerName], Init: labels[labelInit] == "true",
		RestartCount: int32(n), Labels: labels}
}

// KillPod stops every container of the pod with uid (each with grace,
// as StopContainer), deletes them with their snapshots, and removes the
// sandbox: the network, the namespaces, the pod directory and the pod's
// cgroup. The pod's logs stay. It goes on past errors and returns them
// all; again is harmless.
func (r *podRuntime) KillPod(ctx context.Context, uid types.UID, grace time.Duration) error {
	cs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", labelPodUID, string(uid)))
	if err != nil {
		return err
	}
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.RemoveContainer(ctx, c.ID(), grace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sb, err := r.loadSandbox(string(uid))
	switch {
	case err == nil:
		errs = append(errs, r.removeSandbox(ctx, sb))
	case errors.Is(err, os.ErrNotExist):
		// No sandbox.json: a sandbox that failed half-way, or none. Tear
		// down what may be there anyway.
		errs = append(errs, r.removeSandbox(ctx, &sandbox{UID: string(uid), Dir: r.podDir(string(uid))}))
	default:
		errs = append(errs, err)
	}
	errs = append(errs, removeCgroup(r.podCgroup(uid)))
	return errors.Join(errs...)
}

// podCgroup is the pod's cgroup path.
func (r *podRuntime) podCgroup(uid types.UID) string {
	return filepath.Join(r.cfg.CgroupParent, "pod"+string(uid))
}

// containerLabels are the labels of a new container.
func containerLabels(pod *corev1.Pod, c *corev1.Container, init bool, restart int32) map[string]string {
	l := map[string]string{
		labelManaged:       "true",
		labelPodName:       pod.Name,
		labelPodNamespace:  pod.Namespace,
		labelPodUID:        string(pod.UID),
		labelContainerName: c.Name,
		labelRestartCount:  strconv.Itoa(int(restart)),
		labelImage:         c.Image,
	}
	if init {
		l[labelInit] = "true"
	}
	return l
}
