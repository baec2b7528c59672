package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Config configures a Proxier.
type Config struct {
	// Client is the node's client: the proxy lists and watches Services
	// and EndpointSlices with it. Required.
	Client kubernetes.Interface
	// NodeName is this node's name: endpoints on it are local for the
	// Local traffic policies. Required.
	NodeName string
	// NodeIPs are the addresses NodePorts answer on (IPv4; loopback ones
	// are left out, as kube-proxy's nftables mode does not serve node
	// ports on localhost). Empty: every local address but 127.0.0.0/8.
	NodeIPs []netip.Addr
	// ClusterCIDR is the pod network: traffic to a ClusterIP from outside
	// it is masqueraded, and the pods' traffic to a node port of a Local
	// service may go to any endpoint (default 10.42.0.0/16).
	ClusterCIDR netip.Prefix
	// ServiceCIDRs are the ranges the API server gives ClusterIPs from
	// (labctl server's --service-cidr; DiscoverServiceCIDRs asks the
	// server). New connections to an address in them that no Service
	// holds are dropped, rather than routed out of the node, as
	// kube-proxy's nftables mode does with the ServiceCIDRs it watches.
	// IPv4 ones only (others are left out); empty: no such rule.
	ServiceCIDRs []netip.Prefix
	// Table is the nftables table, family ip (default "labctl-proxy").
	Table string
	// SyncPeriod is how often the whole table is rewritten, whatever
	// changed (default 30 s).
	SyncPeriod time.Duration
	// MinSyncInterval is the least time between two syncs: changes that
	// come closer together go into one (default 100 ms).
	MinSyncInterval time.Duration
	// Logger receives the proxy's logs (default: discarded).
	Logger *slog.Logger
}

// DefaultTable is the proxy's nftables table, family ip.
const DefaultTable = "labctl-proxy"

func (c Config) withDefaults() Config {
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")
	}
	c.ClusterCIDR = c.ClusterCIDR.Masked()
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.SyncPeriod <= 0 {
		c.SyncPeriod = 30 * time.Second
	}
	if c.MinSyncInterval <= 0 {
		c.MinSyncInterval = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Proxier programs one node's packet filter for the cluster's Services.
type Proxier struct {
	cfg Config
	log *slog.Logger
	// rules is the part of cfg the rule computation reads.
	rules rulesConfig
	// ns is the network namespace to program; netns.None() is the
	// process's own (tests use private ones).
	ns netns.NsHandle
	// syncs counts the successful syncs, for tests.
	syncs atomic.Int64
}

// New checks cfg and returns a Proxier; Run starts it.
func New(cfg Config) (*Proxier, error) {
	cfg = cfg.withDefaults()
	if cfg.Client == nil || cfg.NodeName == "" {
		return nil, errors.New("proxy: a client and the node's name are required")
	}
	if !cfg.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("proxy: the cluster CIDR %s is not IPv4; the proxy handles IPv4 only", cfg.ClusterCIDR)
	}
	rc := rulesConfig{clusterCIDR: cfg.ClusterCIDR}
	for _, p := range cfg.ServiceCIDRs {
		if !p.IsValid() || !p.Addr().Is4() {
			continue // an IPv6 proxy's
		}
		p = p.Masked()
		if p.Overlaps(cfg.ClusterCIDR) {
			return nil, fmt.Errorf("proxy: the service CIDR %s overlaps the cluster CIDR %s: the pods' own traffic would be dropped", p, cfg.ClusterCIDR)
		}
		if !slices.Contains(rc.serviceCIDRs, p) {
			rc.serviceCIDRs = append(rc.serviceCIDRs, p)
		}
	}
	slices.SortFunc(rc.serviceCIDRs, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	for _, ip := range cfg.NodeIPs {
		ip = ip.Unmap()
		if ip.Is4() && !ip.IsLoopback() && !ip.IsUnspecified() {
			rc.nodePortIPs = append(rc.nodePortIPs, ip)
		}
	}
	return &Proxier{cfg: cfg, log: cfg.Logger, rules: rc, ns: netns.None()}, nil
}

// Services that kube-proxy leaves to another proxy, or that are headless,
// are not even watched (its informers' label selector).
const proxyLabelSelector = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"

// Run watches Services and EndpointSlices and keeps the table in step
// with them until ctx ends; then it returns and leaves the rules in place
// (as kube-proxy does: a restarted proxy takes them over, and Services
// keep working meanwhile). Failed syncs are logged and retried; Run
// returns an error only when it cannot start.
func (p *Proxier) Run(ctx context.Context) error {
	k, err := openKernel(p.cfg.Table, p.ns)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	defer k.close()
	var ct *netlink.Handle
	if p.ns.IsOpen() {
		ct, err = netlink.NewHandleAt(p.ns, unix.NETLINK_NETFILTER)
	} else {
		ct, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return fmt.Errorf("proxy: a netlink handle for conntrack: %w", err)
	}
	defer ct.Close()
	return p.run(ctx, k, ct)
}

func (p *Proxier) run(ctx context.Context, k kernel, ct conntrackTable) error {
	factory := informers.NewSharedInformerFactoryWithOptions(p.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = proxyLabelSelector }))
	svcInf := factory.Core().V1().Services().Informer()
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	trigger := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke}
	if _, err := svcInf.AddEventHandler(handler); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if _, err := sliceInf.AddEventHandler(handler); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Syncing before both lists are in would take Services away for a
	// moment after every restart.
	if !cache.WaitForCacheSync(ctx.Done(), svcInf.HasSynced, sliceInf.HasSynced) {
		return nil
	}

	s := newSyncer(k, p.log)
	var lastUDP map[string]*udpService
	resync := time.NewTicker(p.cfg.SyncPeriod)
	defer resync.Stop()
	full, first := true, true
	backoff := time.Second
	for {
		start := time.Now()
		ports := servicePorts(listAs[*corev1.Service](svcInf), listAs[*discoveryv1.EndpointSlice](sliceInf), p.cfg.NodeName)
		want := buildRuleset(p.rules, ports)
		computed := time.Since(start)
		st, err := s.sync(want, full)
		var wake <-chan time.Time // a retry, or stale chains to delete
		if err != nil {
			p.log.Warn("syncing the service rules failed; retrying", "table", p.cfg.Table, "in", backoff, "err", err)
			wake = time.After(backoff)
			backoff = min(2*backoff, p.cfg.SyncPeriod)
		} else {
			backoff = time.Second
			p.syncs.Add(1)
			level := slog.LevelDebug
			if first {
				level, first = slog.LevelInfo, false
			}
			p.log.Log(ctx, level, "service rules synced", "table", p.cfg.Table, "servicePorts", len(ports),
				"took", time.Since(start), "computed", computed, "changes", st.String())
			udp := udpServices(ports)
			if f := newStaleFlows(lastUDP, udp, p.rules.nodePortIPs); f != nil {
				n, err := ct.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.InetFamily(unix.AF_INET), f)
				if err != nil {
					p.log.Warn("deleting stale UDP conntrack entries failed", "err", err)
				} else if n > 0 {
					p.log.Debug("deleted stale UDP conntrack entries", "entries", n)
				}
			}
			lastUDP = udp
			if next := s.nextStale(); !next.IsZero() {
				wake = time.After(time.Until(next))
			}
		}

		full = false
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-wake:
		case <-resync.C:
			full = true
		}
		// Let changes that come in a burst gather into one sync.
		if wait := p.cfg.MinSyncInterval - time.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select {
		case <-trigger:
		default:
		}
	}
}

func listAs[T any](inf cache.SharedIndexInformer) []T {
	objs := inf.GetStore().List()
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// Cleanup removes the proxy's table (nftables, family ip), for `labctl
// killall` and tests; a table that is not there is not an error.
func Cleanup(table string) error {
	return cleanupIn(table, netns.None())
}

func cleanupIn(table string, ns netns.NsHandle) error {
	if table == "" {
		table = DefaultTable
	}
	k, err := openKernel(table, ns)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	defer k.close()
	if err := k.deleteTable(); err != nil {
		return fmt.Errorf("proxy: removing the nftables table ip %s: %w", table, err)
	}
	return nil
}
