// Package agent is a labctl node: it puts together the parts under agent/
// and networking/ and runs them, for `labctl agent` on a machine that
// joins a cluster and for the node that `labctl server` runs on its own
// machine. The order of Run is the order a node comes up in:
//
//  1. containerd: labctl's own, supervised (agent/containerd), or the one
//     at --container-runtime-endpoint;
//  2. images: the images Manager with registries.yaml, and the import of
//     every tarball in <data-dir>/agent/images before any pod starts
//     (agent/images), then a watcher for new files;
//  3. the Node: registration, Lease and conditions (kubelet.NodeAgent);
//  4. the pod network: the node's pod CIDR, which the server's node IPAM
//     controller puts in spec.podCIDR once the Node exists, then the
//     bridge, forwarding and masquerade (networking), and routes to the
//     other nodes' pod CIDRs, kept as Nodes come and go;
//  5. the service proxy (agent/proxy): Services in nftables;
//  6. the kubelet (agent/kubelet): the pods, and its HTTPS endpoint for
//     logs, exec, attach, port-forward and stats.
//
// Beside them, from the Node on, the local-path provisioner
// (addons/localpath) makes the volumes of the claims scheduled to the
// node in StorageDir, and removes them when they are released.
//
// The agent reaches the server only through the API, with the node's
// credentials (a kubeconfig for system:node:<name>), so the same code
// serves a node on the server's machine and one on another machine.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"labctl/addons/localpath"
	"labctl/agent/containerd"
	"labctl/agent/images"
	"labctl/agent/kubelet"
	"labctl/agent/proxy"
	"labctl/networking"
)

// Config configures a node agent.
type Config struct {
	// DataDir is labctl's data directory; the agent keeps its state in
	// DataDir/agent.
	DataDir string
	// Kubeconfig is the node's kubeconfig (system:node:<NodeName>).
	Kubeconfig string
	// Transport, when not nil, carries the node's API requests instead of
	// the kubeconfig's TLS settings; the kubeconfig still names the server
	// and the cluster CA. labctl server gives its own node one that calls
	// the API server in-process, as the same system:node:<NodeName>
	// (server/loopback); a joining node has none.
	Transport http.RoundTripper
	// NodeName and NodeIP are the node's name and address.
	NodeName string
	NodeIP   netip.Addr
	// ControlPlane marks the server's own node.
	ControlPlane bool
	// Labels and Taints are set on the Node when it registers.
	Labels map[string]string
	Taints []corev1.Taint
	// ContainerRuntimeEndpoint, when set, is a containerd to use instead
	// of labctl's own.
	ContainerRuntimeEndpoint string
	// ClusterCIDR is the whole pod network (default 10.42.0.0/16).
	ClusterCIDR netip.Prefix
	// ClusterDNS and ClusterDomain go into the pods' resolv.conf
	// (default 10.43.0.10 and cluster.local).
	ClusterDNS    netip.Addr
	ClusterDomain string
	// ResolvConf is the node's resolv.conf for pods with dnsPolicy
	// Default (default /etc/resolv.conf).
	ResolvConf string
	// RegistriesFile is registries.yaml (default
	// /etc/labctl/registries.yaml; absent is fine).
	RegistriesFile string
	// StorageDir holds the node's local-path volumes
	// (--default-local-storage-path; default DataDir/storage).
	StorageDir string
	// Logger receives the agent's logs (default: discarded).
	Logger *slog.Logger
}

// DefaultRegistriesFile is where registries.yaml is read from.
const DefaultRegistriesFile = "/etc/labctl/registries.yaml"

func (c Config) withDefaults() Config {
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")
	}
	if !c.ClusterDNS.IsValid() {
		c.ClusterDNS = netip.MustParseAddr("10.43.0.10")
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.RegistriesFile == "" {
		c.RegistriesFile = DefaultRegistriesFile
	}
	if c.StorageDir == "" && c.DataDir != "" {
		c.StorageDir = filepath.Join(c.DataDir, "storage")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Run runs the node until ctx ends. The pods keep running after it: the
// next agent adopts them.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if cfg.NodeName == "" || !cfg.NodeIP.IsValid() || cfg.DataDir == "" || cfg.Kubeconfig == "" {
		return errors.New("agent: a node name, a node IP, a data directory and a kubeconfig are required")
	}
	agentDir := filepath.Join(cfg.DataDir, "agent")
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("agent: the node's kubeconfig: %w", err)
	}
	// The kubelet checks the API server's client certificate with it.
	clientCA := rc.TLSClientConfig.CAData
	if cfg.Transport != nil {
		// client-go refuses TLS options beside a transport of one's own.
		rc.TLSClientConfig, rc.Transport = rest.TLSClientConfig{}, cfg.Transport
	}
	rc.QPS, rc.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}

	// 1. containerd.
	ccfg := containerd.Defaults(cfg.DataDir)
	ccfg.Endpoint = cfg.ContainerRuntimeEndpoint
	ccfg.Logger = log.With("component", "containerd")
	regs, err := images.LoadRegistries(cfg.RegistriesFile)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if regs != nil {
		if err := regs.WriteHostsDir(ccfg.RegistryConfigDir); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	runtime, err := containerd.Start(ctx, ccfg)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	log.Info("containerd is up", "address", runtime.Address(), "version", runtime.Version(), "managed", runtime.Managed())

	// 2. images.
	im := images.New(runtime.Client(), images.Options{HostsDir: ccfg.RegistryConfigDir, Registries: regs,
		Logger: log.With("component", "images")})
	watcher := &images.Watcher{Dir: filepath.Join(agentDir, "images"), Manager: im, Logger: log.With("component", "images")}
	if err := watcher.ImportAll(ctx); err != nil {
		log.Warn("some image tarballs did not import", "dir", watcher.Dir, "err", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { watcher.Run(ctx) })

	// 3. the Node.
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	var netMu sync.Mutex
	var podNet *networking.Network
	node, err := kubelet.NewNodeAgent(cs, kubelet.NodeConfig{
		Name: cfg.NodeName, IP: cfg.NodeIP, ControlPlane: cfg.ControlPlane,
		Labels: cfg.Labels, Taints: cfg.Taints, DataDir: cfg.DataDir,
		RuntimeVersion: "containerd://" + runtime.Version(),
		Recorder:       recorder, Logger: log.With("component", "node"),
		Ready: func() error {
			select {
			case <-runtime.Done():
				return errors.New("container runtime is down")
			default:
			}
			netMu.Lock()
			defer netMu.Unlock()
			if podNet == nil {
				return errors.New("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:the node has no pod CIDR yet")
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wg.Go(func() { node.Run(ctx) })
	wg.Go(func() {
		err := localpath.Run(ctx, localpath.Config{Client: cs, NodeName: cfg.NodeName, StorageDir: cfg.StorageDir,
			Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: localpath.EventComponent(cfg.NodeName)}),
			Logger:   log.With("component", "local-path")})
		if err != nil {
			log.Error("the local-path provisioner did not start: claims of the local-path class scheduled to this node stay Pending", "err", err)
		}
	})

	// 4. the pod network.
	cidr, err := waitPodCIDR(ctx, cs, cfg.NodeName, log)
	if err != nil {
		return err
	}
	n, err := networking.New(networking.Config{PodCIDR: cidr, ClusterCIDR: cfg.ClusterCIDR,
		DataDir: filepath.Join(agentDir, "cni")})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := n.SetupHost(); err != nil {
		return fmt.Errorf("agent: the pod network: %w", err)
	}
	netMu.Lock()
	podNet = n
	netMu.Unlock()
	node.Changed()
	log.Info("pod network is up", "podCIDR", cidr, "bridge", n.Config().BridgeName)
	wg.Go(func() { syncRoutes(ctx, cs, cfg.NodeName, n, log) })

	// 5. the service proxy (the Service data plane in nftables), with the
	// service CIDR as the API server states it.
	serviceCIDRs, err := proxy.DiscoverServiceCIDRs(ctx, cs)
	if err != nil && ctx.Err() == nil {
		log.Warn("the service CIDR is unknown: traffic to unallocated ClusterIPs is not dropped", "err", err)
	}
	px, err := proxy.New(proxy.Config{Client: cs, NodeName: cfg.NodeName, NodeIPs: []netip.Addr{cfg.NodeIP},
		ClusterCIDR: cfg.ClusterCIDR, ServiceCIDRs: serviceCIDRs, Logger: log.With("component", "proxy")})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wg.Go(func() {
		if err := px.Run(ctx); err != nil {
			log.Error("the service proxy stopped: Services carry no traffic on this node", "err", err)
		}
	})

	// 6. the kubelet.
	k, err := kubelet.New(kubelet.Config{
		Client: cs, NodeName: cfg.NodeName, NodeIP: cfg.NodeIP,
		StaticPodDir: filepath.Join(agentDir, "pod-manifests"),
		Containerd:   runtime.Client(), Images: im, Network: n,
		Root: agentDir, ClusterDNS: []string{cfg.ClusterDNS.String()}, ClusterDomain: cfg.ClusterDomain,
		HostResolvConf: cfg.ResolvConf,
		Allocatable:    node.Allocatable(),
		ClientCA:       clientCA,
		Recorder:       recorder, Logger: log.With("component", "kubelet"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	err = k.Run(ctx)
	cancel()
	return err
}

// waitPodCIDR waits for the Node's spec.podCIDR.
func waitPodCIDR(ctx context.Context, cs kubernetes.Interface, name string, log *slog.Logger) (netip.Prefix, error) {
	start := time.Now()
	warned := false
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("agent: the node's podCIDR %q: %w", n.Spec.PodCIDR, err)
			}
			return p, nil
		}
		if !warned && time.Since(start) > 10*time.Second {
			log.Warn("still waiting for the node's pod CIDR from the server (is its controller manager running?)", "node", name)
			warned = true
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// syncRoutes keeps the routes to the other nodes' pod CIDRs.
func syncRoutes(ctx context.Context, cs kubernetes.Interface, self string, n *networking.Network, log *slog.Logger) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0)
	inf := factory.Core().V1().Nodes().Informer()
	trigger := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		}
		var peers []networking.Peer
		for _, obj := range inf.GetStore().List() {
			node := obj.(*corev1.Node)
			if node.Name == self || node.Spec.PodCIDR == "" {
				continue
			}
			cidr, err := netip.ParsePrefix(node.Spec.PodCIDR)
			if err != nil {
				continue
			}
			for _, a := range node.Status.Addresses {
				if a.Type != corev1.NodeInternalIP {
					continue
				}
				if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
					peers = append(peers, networking.Peer{PodCIDR: cidr, NodeIP: ip})
					break
				}
			}
		}
		if err := n.SyncRoutes(peers); err != nil {
			log.Warn("routes to the other nodes' pods", "err", err)
		}
	}
}

// DefaultNodeIP is the address of the interface of the default route, as
// k3s picks the node IP; without a default route, the first global
// IPv4 address.
func DefaultNodeIP() (netip.Addr, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" {
			continue
		}
		if ip, ok := netip.AddrFromSlice(r.Src.To4()); ok && r.Src != nil {
			return ip, nil
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		if ip, ok := firstIPv4(link); ok {
			return ip, nil
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && p.Addr().IsGlobalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, errors.New("no IPv4 address to use as the node IP: give one with --node-ip")
}

func firstIPv4(link netlink.Link) (netip.Addr, bool) {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip.IsGlobalUnicast() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
