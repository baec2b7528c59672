package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"labctl/agent/images"
	"labctl/networking"
)

// The kubelet proper (kubelet.go, sync.go, staticpods.go): it takes the
// pods bound to its node from the API (an informer filtered on
// spec.nodeName) and the static pods from its manifest folder, and keeps
// one worker per pod that turns the pod's spec into runtime calls and
// posts the pod's status back. A worker runs a sync whenever something
// about its pod changed (the pod, one of its containers exiting, a probe
// result) and every ResyncInterval; each sync looks at the containers as
// containerd has them, so a restarted kubelet simply carries on.

// podVolumes is what the kubelet needs of the volume manager.
type podVolumes interface {
	SetUp(ctx context.Context, pod *corev1.Pod) error
	Mounts(pod *corev1.Pod, c *corev1.Container) ([]specs.Mount, error)
	TearDown(uid types.UID) error
}

// envResolver resolves a container's environment (valueFrom, envFrom,
// the services' variables); nil means the spec's plain values.
type envResolver func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIPs, hostIPs []string) ([]string, error)

// podProbes is what the kubelet needs of the probe manager.
type podProbes interface {
	Sync(pod *corev1.Pod, podIP string, running map[string]string)
	Remove(uid types.UID)
	// Verdicts for the container's run with id: ready, started, and
	// whether (and why) liveness or startup failed.
	Ready(uid types.UID, container, id string) bool
	Started(uid types.UID, container, id string) bool
	Failed(uid types.UID, container, id string) (message string, failed bool)
}

// lifecycleHooks runs postStart and preStop handlers.
type lifecycleHooks interface {
	PostStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string) (string, error)
	PreStop(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, grace time.Duration) (string, error)
}

// Config configures the kubelet.
type Config struct {
	// Client reaches the API server as the node.
	Client kubernetes.Interface
	// NodeName is the node's name; NodeIP its address (the pods'
	// hostIP).
	NodeName string
	NodeIP   netip.Addr
	// StaticPodDir holds static pod manifests ("": none).
	StaticPodDir string
	// ResyncInterval is how often every pod is synced anyway (default
	// 10 s): configMap and secret volumes are refreshed then.
	ResyncInterval time.Duration
	// StaticPodInterval is how often the manifest folder is read
	// (default 5 s).
	StaticPodInterval time.Duration
	// Allocatable is the node's allocatable resources, for env
	// resourceFieldRefs without a limit.
	Allocatable corev1.ResourceList
	// Recorder records pod events (default: one to the API as the
	// kubelet on NodeName).
	Recorder record.EventRecorder
	// Logger receives the kubelet's logs (default: discarded).
	Logger *slog.Logger

	// Containerd is the runtime's client (its default namespace
	// labctl's); Images the images Manager over it; Network the pod
	// network (nil: hostNetwork pods only).
	Containerd *ctrd.Client
	Images     *images.Manager
	Network    *networking.Network
	// Root holds the pods' directories (<data-dir>/agent); LogDir the
	// containers' logs (default /var/log/pods); CgroupParent the pods'
	// cgroups (default /labctl).
	Root, LogDir, CgroupParent string
	// ClusterDNS and ClusterDomain go into the pods' resolv.conf.
	ClusterDNS    []string
	ClusterDomain string
	// HostResolvConf is the node's resolv.conf, for pods with dnsPolicy
	// Default (default /etc/resolv.conf).
	HostResolvConf string
	// ServerAddr is where the kubelet's HTTPS endpoint (logs, exec,
	// attach, port-forward, stats) listens (default ":10250"); ClientCA
	// is the PEM of the CA its clients' certificates must come from (the
	// cluster CA). No ClientCA: no endpoint.
	ServerAddr string
	ClientCA   []byte

	// The parts New makes from the above; tests set them directly.
	runtime *podRuntime
	server  *kubeletServer
	volumes podVolumes
	env     envResolver
	probes  podProbes
	hooks   lifecycleHooks
}

// Kubelet runs the node's pods.
type Kubelet struct {
	cfg     Config
	rt      *podRuntime
	backoff *flowcontrol.Backoff
	log     *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // the Run context, for workers
	api     map[types.UID]*corev1.Pod
	static  map[types.UID]*corev1.Pod
	mirrors map[string]*corev1.Pod // by namespace/name
	records map[types.UID]*podRecord
	workers map[types.UID]*podWorker
	synced  bool // the API pods are known: orphans may be killed
	wg      sync.WaitGroup
}

// podRecord is what the kubelet remembers of a pod between syncs.
type podRecord struct {
	startTime time.Time
	// waiting holds why a container could not be started (image pull,
	// config errors), until it is.
	waiting map[string]*corev1.ContainerStateWaiting
	// posted is the status last posted.
	posted *corev1.PodStatus
	// killed: the pod's containers were stopped for its deletion or
	// because it finished; deleted: the API object is being removed.
	killed, deleted bool
	// lastPod is the pod as last synced, for the final teardown.
	lastPod *corev1.Pod
}

// newKubelet makes a kubelet over its parts.
func newKubelet(cfg Config) (*Kubelet, error) {
	if cfg.Client == nil || cfg.NodeName == "" || cfg.runtime == nil {
		return nil, errors.New("kubelet: a client, a node name and a runtime are required")
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 10 * time.Second
	}
	if cfg.StaticPodInterval == 0 {
		cfg.StaticPodInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Kubelet{
		cfg: cfg, rt: cfg.runtime, log: cfg.Logger,
		backoff: flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		api:     map[types.UID]*corev1.Pod{}, static: map[types.UID]*corev1.Pod{},
		mirrors: map[string]*corev1.Pod{}, records: map[types.UID]*podRecord{},
		workers: map[types.UID]*podWorker{},
	}
	return k, nil
}

// Run runs the pods until ctx ends; the containers keep running after
// it (the next kubelet adopts them).
func (k *Kubelet) Run(ctx context.Context) error {
	k.mu.Lock()
	k.ctx = ctx
	k.mu.Unlock()
	if k.cfg.Recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.cfg.Client.CoreV1().Events("")})
		defer b.Shutdown()
		k.cfg.Recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: k.cfg.NodeName})
	}
	defer k.rt.Close()
	if k.cfg.server != nil {
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := k.cfg.server.Run(ctx); err != nil {
				k.log.Error("the kubelet's HTTPS endpoint stopped: logs, exec and port-forward will fail", "err", err)
			}
		}()
		defer func() { <-served }()
	}
	if err := k.rt.Adopt(ctx); err != nil {
		k.log.Warn("adopting running containers", "err", err)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(k.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.apiPodChanged(obj.(*corev1.Pod), false) },
		UpdateFunc: func(_, obj any) { k.apiPodChanged(obj.(*corev1.Pod), false) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				k.apiPodChanged(pod, true)
			}
		},
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	if k.cfg.StaticPodDir != "" {
		k.readStaticPods(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		k.wg.Wait()
		return ctx.Err()
	}
	k.mu.Lock()
	k.synced = true
	k.mu.Unlock()
	k.housekeeping(ctx)

	resync := time.NewTicker(k.cfg.ResyncInterval)
	defer resync.Stop()
	static := time.NewTicker(k.cfg.StaticPodInterval)
	defer static.Stop()
	for {
		select {
		case <-ctx.Done():
			k.wg.Wait()
			if k.cfg.probes != nil {
				if s, ok := k.cfg.probes.(interface{ Stop() }); ok {
					s.Stop()
				}
			}
			return nil
		case <-resync.C:
			k.housekeeping(ctx)
		case <-static.C:
			if k.cfg.StaticPodDir != "" {
				k.readStaticPods(ctx)
			}
		}
	}
}

// apiPodChanged takes an informer event. Mirror pods are not run: they
// stand for static pods in the API.
func (k *Kubelet) apiPodChanged(pod *corev1.Pod, deleted bool) {
	k.mu.Lock()
	if isMirrorPod(pod) {
		key := pod.Namespace + "/" + pod.Name
		if deleted {
			delete(k.mirrors, key)
		} else {
			k.mirrors[key] = pod
		}
		// Its static pod's worker recreates or updates it.
		var uid types.UID
		for u, sp := range k.static {
			if sp.Namespace == pod.Namespace && sp.Name == pod.Name {
				uid = u
			}
		}
		k.mu.Unlock()
		if uid != "" {
			k.enqueue(uid)
		}
		return
	}
	if deleted {
		delete(k.api, pod.UID)
	} else {
		k.api[pod.UID] = pod
	}
	k.mu.Unlock()
	k.enqueue(pod.UID)
}

// housekeeping syncs every pod the kubelet knows of and every pod the
// runtime has, so that exits, orphans and refreshed volumes are seen.
func (k *Kubelet) housekeeping(ctx context.Context) {
	uids := map[types.UID]bool{}
	k.mu.Lock()
	for u := range k.api {
		uids[u] = true
	}
	for u := range k.static {
		uids[u] = true
	}
	for u := range k.records {
		uids[u] = true
	}
	k.mu.Unlock()
	if pods, err := k.rt.ListPods(ctx); err == nil {
		for _, p := range pods {
			uids[p.UID] = true
		}
	} else if ctx.Err() == nil {
		k.log.Warn("listing the runtime's pods", "err", err)
	}
	for u := range uids {
		k.enqueue(u)
	}
}

// desired is the pod with uid as the kubelet should run it: from the
// API or a static pod; nil when neither has it.
func (k *Kubelet) desired(uid types.UID) (*corev1.Pod, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.static[uid]; ok {
		return p, true
	}
	p, ok := k.api[uid]
	return p, ok
}

// record returns the pod's record, made on first use.
func (k *Kubelet) record(uid types.UID) *podRecord {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.records[uid]
	if r == nil {
		r = &podRecord{waiting: map[string]*corev1.ContainerStateWaiting{}}
		k.records[uid] = r
	}
	return r
}

// Pod finds a running pod by namespace and name (static pods by their
// mirror's name), for the streaming server.
func (k *Kubelet) Pod(namespace, name string) (*corev1.Pod, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range []map[types.UID]*corev1.Pod{k.static, k.api} {
		for _, p := range m {
			if p.Namespace == namespace && p.Name == name {
				return p, true
			}
		}
	}
	return nil, false
}

// Pods are all the pods the kubelet runs.
func (k *Kubelet) Pods() []*corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(k.api)+len(k.static))
	for _, m := range []map[types.UID]*corev1.Pod{k.static, k.api} {
		for _, p := range m {
			out = append(out, p)
		}
	}
	return out
}

// ContainerRuns are the IDs of the container's runs in the pod, oldest
// first (the last one is the current run).
func (k *Kubelet) ContainerRuns(ctx context.Context, uid types.UID, container string) ([]string, error) {
	runs, err := k.rt.podContainers(ctx, uid)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range runs[container] {
		out = append(out, c.ID)
	}
	return out, nil
}

// event records an event on the pod (on its mirror pod for static pods).
func (k *Kubelet) event(pod *corev1.Pod, eventType, reason, format string, args ...any) {
	ref := pod
	if isStaticPod(pod) {
		k.mu.Lock()
		m := k.mirrors[pod.Namespace+"/"+pod.Name]
		k.mu.Unlock()
		if m == nil {
			return
		}
		ref = m
	}
	k.cfg.Recorder.Eventf(ref, eventType, reason, format, args...)
}

// podFullName is upstream's format.Pod: name_namespace(uid).
func podFullName(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
