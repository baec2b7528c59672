// Package coredns runs CoreDNS inside labctl as the cluster's DNS add-on:
// the coredns module's server and plugins, in the server's process, on
// the node IP, answering for the cluster domain (services, headless and
// StatefulSet pod names, SRV, ExternalName, pod A records) and forwarding
// every other name to the host's upstream resolvers.
//
// It plays the parts of upstream's CoreDNS Deployment, Service and
// ConfigMap:
//
//   - CoreDNS starts from a Corefile equivalent to upstream's (kubeadm's),
//     built by defaultCorefile. A coredns ConfigMap in
//     kube-system with a Corefile key replaces it; Run watches that
//     ConfigMap and restarts CoreDNS in place (caddy's Instance.Restart,
//     which hands the listening sockets over, so no query is dropped)
//     each time it changes. A Corefile that cannot run leaves the running
//     one in place, with a log line and a Warning event on the ConfigMap
//     saying why. A Corefile written for a pod is adapted to the host (see
//     adaptCorefile). The reload directive is accepted and does nothing
//     more: this watch is what reloads (see plugins.go).
//   - The kube-dns Service in kube-system, at the cluster DNS address, has
//     no selector: Run keeps it, its Endpoints and its EndpointSlice, which
//     point at the node IP, so that every node's service proxy sends the
//     cluster DNS address to CoreDNS.
//
// Ports on the node IP: DNS on 53 (UDP and TCP) and metrics on 9153, which
// the kube-dns Service names; health and readiness on ports the kernel
// picks free at start (logged), since nothing outside labctl probes them
// and fixed ones (upstream's 8080 and 8181) clash with programs on the host.
//
// Caveats: CoreDNS and caddy keep process-wide state (caddy's instance
// list, the standard library's logger, klog's logger, Prometheus's
// registry), so one Run at a time per process (ErrRunning). CoreDNS's loop
// plugin, on seeing its own probe come back, ends the process, as it ends
// a CoreDNS pod: here that is labctl. Run therefore never forwards to the
// cluster DNS address or to itself, and refuses a Corefile that does.
package coredns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Defaults for Config's zero values and the fixed ports.
const (
	DefaultClusterDomain = "cluster.local"
	DefaultResolvConf    = "/etc/resolv.conf"
	// DNSPort is where CoreDNS answers, UDP and TCP, on Config.ListenIP.
	DNSPort = 53
	// MetricsPort is where CoreDNS's Prometheus metrics are, on ListenIP.
	MetricsPort = 9153
)

// ErrRunning is returned by Run when CoreDNS already runs in this process.
var ErrRunning = errors.New("coredns: CoreDNS already runs in this process (caddy and CoreDNS keep process-wide state)")

// Config is what Run needs.
type Config struct {
	// Kubeconfig holds the add-on's credentials; the kubernetes plugin
	// reads it (required).
	Kubeconfig string
	// Client reaches the API for the kube-dns objects, the coredns
	// ConfigMap and events (required).
	Client kubernetes.Interface
	// ListenIP is where CoreDNS listens: the server's node IP, on port 53,
	// UDP and TCP (required).
	ListenIP netip.Addr
	// ClusterDNS is the kube-dns Service's cluster IP, from --cluster-dns
	// (required; labctl's default is 10.43.0.10).
	ClusterDNS netip.Addr
	// ClusterDomain is the zone CoreDNS answers for the cluster (default
	// cluster.local).
	ClusterDomain string
	// ResolvConf lists the upstream resolvers for other names (default
	// /etc/resolv.conf). When it names only systemd-resolved's stub
	// (127.0.0.53), /run/systemd/resolve/resolv.conf is read instead, as
	// k3s and the kubelet do; the cluster DNS address and ListenIP are
	// never used as upstreams.
	ResolvConf string
	// Logger receives CoreDNS's messages (default: discarded).
	Logger *slog.Logger

	// For tests: ports (0: DNSPort, free, free, MetricsPort),
	// systemd-resolved's resolv.conf (default resolvedResolvConf), and the
	// address the kube-dns endpoints name (default ListenIP; the API
	// refuses loopback addresses there, and tests listen on loopback).
	dnsPort, healthPort, readyPort, metricsPort int
	resolvedConf                                string
	endpointIP                                  netip.Addr
}

func (c Config) withDefaults() Config {
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	c.ClusterDomain = strings.TrimSuffix(c.ClusterDomain, ".")
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.resolvedConf == "" {
		c.resolvedConf = resolvedResolvConf
	}
	if c.dnsPort == 0 {
		c.dnsPort = DNSPort
	}
	if c.metricsPort == 0 {
		c.metricsPort = MetricsPort
	}
	if !c.endpointIP.IsValid() {
		c.endpointIP = c.ListenIP
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Kubeconfig == "" {
		errs = append(errs, errors.New("no kubeconfig for the kubernetes plugin"))
	}
	if c.Client == nil {
		errs = append(errs, errors.New("no API client"))
	}
	if !c.ListenIP.IsValid() || c.ListenIP.IsUnspecified() {
		errs = append(errs, fmt.Errorf("listen address %v is not one address of this machine: give the node IP", c.ListenIP))
	}
	if !c.ClusterDNS.IsValid() {
		errs = append(errs, errors.New("no cluster DNS address (--cluster-dns)"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("coredns: %w", err)
	}
	return nil
}

// runMu makes Run one at a time.
var runMu sync.Mutex

// Run serves cluster DNS until ctx ends, then stops CoreDNS and returns
// nil. It returns as soon as something prevents CoreDNS from starting:
// an invalid Config, another Run in this process, or a default Corefile
// that cannot run (port 53 on ListenIP taken, typically). Once CoreDNS
// serves, failures to keep the kube-dns objects are logged and retried.
func Run(ctx context.Context, cfg Config) error {
	start := time.Now()
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if !runMu.TryLock() {
		return ErrRunning
	}
	defer runMu.Unlock()
	defer redirectStdlibLog(cfg.Logger)()
	// Not the banner on standard output.
	dnsserver.Quiet, caddy.Quiet = true, true

	s, err := newServer(cfg)
	if err != nil {
		return err
	}
	return s.run(ctx, start)
}

// server is one Run's state; only Run's goroutine touches it.
type server struct {
	cfg         Config
	log         *slog.Logger
	params      corefileParams
	def         string // the default Corefile
	kube        kubeDNS
	restoreKlog func()
	recorder    record.EventRecorder
	configMaps  cache.Store

	inst     *caddy.Instance
	running  string // the Corefile inst runs
	origin   string // where it came from, for messages
	rejected string // the resourceVersion of the ConfigMap last refused
}

func newServer(cfg Config) (*server, error) {
	log := cfg.Logger
	p := corefileParams{
		listen: cfg.ListenIP, dnsPort: cfg.dnsPort, healthPort: cfg.healthPort, readyPort: cfg.readyPort,
		metricsPort: cfg.metricsPort, domain: cfg.ClusterDomain, kubeconfig: cfg.Kubeconfig, clusterDNS: cfg.ClusterDNS,
	}
	for _, port := range []*int{&p.healthPort, &p.readyPort} {
		if *port != 0 {
			continue
		}
		free, err := freePort(cfg.ListenIP)
		if err != nil {
			return nil, fmt.Errorf("coredns: find a free port on %s for health and readiness: %w", cfg.ListenIP, err)
		}
		*port = free
	}
	ups, err := readUpstreams(cfg.ResolvConf, cfg.resolvedConf, []netip.Addr{cfg.ClusterDNS, cfg.ListenIP})
	switch {
	case err != nil:
		log.Warn("no upstream resolvers: names outside the cluster will not resolve; give labctl a readable resolv.conf", "err", err)
	case len(ups.dropped) > 0:
		log.Warn("left out upstream resolvers that are CoreDNS itself (forwarding to them would loop)", "file", ups.from, "left-out", ups.dropped)
	}
	if err == nil && len(ups.servers) == 0 {
		log.Warn("no upstream resolver: names outside the cluster will not resolve; add a nameserver line", "file", ups.from)
	}
	p.upstreams = ups.servers
	return &server{
		cfg: cfg, log: log, params: p, def: defaultCorefile(p),
		kube: kubeDNS{clusterDNS: cfg.ClusterDNS, listen: cfg.endpointIP, dnsPort: cfg.dnsPort, metricsPort: cfg.metricsPort},
	}, nil
}

func (s *server) run(ctx context.Context, start time.Time) error {
	s.restoreKlog = keepKlog()
	defer s.restoreKlog()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	events := record.NewBroadcaster(record.WithContext(ctx))
	defer events.Shutdown()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cfg.Client.CoreV1().Events("")})
	s.recorder = events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "coredns"})

	// Two watches, each of one name in kube-system: the ConfigMap, and
	// the kube-dns Service, Endpoints and EndpointSlice.
	named := func(name string) informers.SharedInformerFactory {
		return informers.NewSharedInformerFactoryWithOptions(s.cfg.Client, 0,
			informers.WithNamespace(metav1.NamespaceSystem),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + name }))
	}
	cmChanged, objChanged := make(chan struct{}, 1), make(chan struct{}, 1)
	cmFactory, objFactory := named(ConfigMapName), named(ServiceName)
	cmInformer := cmFactory.Core().V1().ConfigMaps().Informer()
	_, _ = cmInformer.AddEventHandler(notify(cmChanged))
	for _, inf := range []cache.SharedIndexInformer{
		objFactory.Core().V1().Services().Informer(),
		objFactory.Core().V1().Endpoints().Informer(),
		objFactory.Discovery().V1().EndpointSlices().Informer(),
	} {
		_, _ = inf.AddEventHandler(notify(objChanged))
	}
	s.configMaps = cmInformer.GetStore()
	cmFactory.Start(ctx.Done())
	objFactory.Start(ctx.Done())
	wg.Go(func() {
		<-ctx.Done()
		cmFactory.Shutdown()
		objFactory.Shutdown()
	})
	// The ConfigMap decides the first Corefile. (cache.WaitForCacheSync
	// looks every 100 ms; the list takes a few.)
	for !cmInformer.HasSynced() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Millisecond):
		}
	}

	if err := s.startFirst(); err != nil {
		return err
	}
	defer s.stop()
	attrs := []any{"corefile", s.origin, "took", time.Since(start).Round(time.Millisecond)}
	if s.running == s.def {
		at := func(port int) netip.AddrPort { return netip.AddrPortFrom(s.cfg.ListenIP, uint16(port)) }
		attrs = append(attrs, "dns", at(s.cfg.dnsPort), "health", at(s.params.healthPort), "ready", at(s.params.readyPort),
			"metrics", at(s.cfg.metricsPort), "upstreams", s.params.upstreams)
	}
	s.log.Info("CoreDNS serving", attrs...)

	// The kube-dns objects now that CoreDNS answers; again on every
	// change to them, and after a failure.
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cmChanged:
			s.reconcileCorefile()
			continue
		case <-objChanged:
		case <-retry.C:
		}
		if err := s.kube.ensure(ctx, s.cfg.Client); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("cannot keep the kube-dns service; retrying", "err", err, "in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
	}
}

// notify signals ch, without blocking, on every event.
func notify(ch chan<- struct{}) cache.ResourceEventHandler {
	f := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { f() },
		UpdateFunc: func(any, any) { f() },
		DeleteFunc: func(any) { f() },
	}
}

// desired returns the Corefile to run: the ConfigMap's, adapted, or the
// default. cm is the ConfigMap it came from, nil for the default.
func (s *server) desired() (text, origin string, cm *corev1.ConfigMap, err error) {
	obj, ok, _ := s.configMaps.GetByKey(metav1.NamespaceSystem + "/" + ConfigMapName)
	if ok {
		cm, _ = obj.(*corev1.ConfigMap)
	}
	if cm == nil {
		return s.def, "the default Corefile", nil, nil
	}
	src, ok := cm.Data[CorefileKey]
	if !ok || strings.TrimSpace(src) == "" {
		s.log.Warn("ConfigMap kube-system/coredns has no Corefile key; running the default Corefile")
		return s.def, "the default Corefile", nil, nil
	}
	origin = fmt.Sprintf("the Corefile of ConfigMap kube-system/coredns (resourceVersion %s)", cm.ResourceVersion)
	text, err = adaptCorefile(src, s.params)
	return text, origin, cm, err
}

// startFirst starts CoreDNS with the ConfigMap's Corefile, or with the
// default one when there is none or it cannot run.
func (s *server) startFirst() error {
	text, origin, cm, err := s.desired()
	if err == nil {
		err = s.load(text)
	}
	if err != nil && cm != nil {
		s.reject(cm, err, "the default Corefile")
		text, origin, err = s.def, "the default Corefile", s.load(s.def)
	}
	if err != nil {
		return fmt.Errorf("coredns: start with %s (is port %d on %s taken by another DNS server? stop it, or run labctl server --disable coredns): %w",
			origin, s.cfg.dnsPort, s.cfg.ListenIP, err)
	}
	s.origin = origin
	if cm != nil {
		s.recorder.Eventf(cm, corev1.EventTypeNormal, "CorefileLoaded", "CoreDNS runs %s", origin)
	}
	return nil
}

// reconcileCorefile restarts CoreDNS when the Corefile to run changed.
func (s *server) reconcileCorefile() {
	text, origin, cm, err := s.desired()
	if err == nil && text == s.running || cm != nil && cm.ResourceVersion == s.rejected {
		return
	}
	if err == nil {
		err = s.load(text)
	}
	if err != nil {
		s.reject(cm, err, s.origin)
		return
	}
	s.origin, s.rejected = origin, ""
	s.log.Info("CoreDNS reloaded", "corefile", origin)
	if cm != nil {
		s.recorder.Eventf(cm, corev1.EventTypeNormal, "CorefileLoaded", "CoreDNS runs %s", origin)
	}
}

// reject says, in the log and in a Warning event on the ConfigMap, why
// its Corefile does not run.
func (s *server) reject(cm *corev1.ConfigMap, err error, keeps string) {
	s.log.Error("the Corefile of ConfigMap kube-system/coredns cannot run; fix it with kubectl -n kube-system edit configmap coredns",
		"err", err, "running", keeps)
	if cm != nil {
		s.rejected = cm.ResourceVersion
		s.recorder.Eventf(cm, corev1.EventTypeWarning, "CorefileRejected", "CoreDNS keeps running %s: %v", keeps, err)
	}
}

// load checks a Corefile, then starts CoreDNS with it or, when running,
// restarts it in place; on failure the running Corefile keeps running.
func (s *server) load(text string) error {
	defer s.restoreKlog()
	input := caddy.CaddyfileInput{Filepath: "Corefile", Contents: []byte(text), ServerTypeName: "dns"}
	// A Corefile that does not parse fails here rather than in Restart,
	// which would first close the running instance's health, readiness
	// and metrics listeners and then reopen them. (Not caddy's
	// ValidateAndExecuteDirectives: plugins' setup keeps process-wide
	// state, the ready plugin's listener among it.)
	if _, err := caddyfile.Parse(input.Filepath, bytes.NewReader(input.Contents), runnableDirectives()); err != nil {
		if strings.Contains(err.Error(), "Unknown directive") {
			err = fmt.Errorf("%w (the plugins in labctl's CoreDNS: %s)", err, strings.Join(runnableDirectives(), ", "))
		}
		return err
	}
	if s.inst == nil {
		inst, err := caddy.Start(input)
		if err != nil {
			if inst != nil {
				inst.ShutdownCallbacks()
				_ = inst.Stop()
			}
			return err
		}
		s.inst = inst
	} else {
		inst, err := s.inst.Restart(input)
		if err != nil {
			return err
		}
		s.inst = inst
	}
	s.running = text
	s.awaitServing()
	return nil
}

// awaitServing waits, for up to 2 s, until the DNS server at the node IP
// answers over UDP and TCP. caddy starts serving in goroutines after
// Start and Restart return, and a server stopped before its goroutine ran
// would serve on, its port taken. The probe is a message without a
// question, which the DNS library answers (FORMERR) before any plugin
// sees it: nothing goes upstream.
func (s *server) awaitServing() {
	want := netip.AddrPortFrom(s.cfg.ListenIP, uint16(s.cfg.dnsPort))
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: dns.Id(), Opcode: dns.OpcodeQuery}}
	for _, sl := range s.inst.Servers() {
		for _, p := range []struct {
			network string
			addr    net.Addr
		}{{"udp", sl.LocalAddr()}, {"tcp", sl.Addr()}} {
			if ap, ok := addrPort(p.addr); !ok || ap != want {
				continue
			}
			c := &dns.Client{Net: p.network, Timeout: 200 * time.Millisecond}
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
				if _, _, err := c.Exchange(m, want.String()); err == nil {
					break
				}
			}
		}
	}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// runnableDirectives lists the directives that this build's CoreDNS has
// a plugin for, in CoreDNS's order.
var runnableDirectives = sync.OnceValue(func() []string {
	var out []string
	for _, d := range dnsserver.Directives {
		if _, err := caddy.DirectiveAction("dns", d); err == nil {
			out = append(out, d)
		}
	}
	return out
})

// stop stops CoreDNS: its plugins' restart callbacks, then their shutdown
// (informers, listeners), then the servers. The restart callbacks also
// take the health, readiness and metrics addresses out of the plugins'
// process-wide registries, which the metrics plugin's final shutdown
// does not, so that a later Run in this process serves them again.
func (s *server) stop() {
	for _, f := range s.inst.OnRestart {
		if err := f(); err != nil {
			s.log.Warn("CoreDNS shutdown", "err", err)
		}
	}
	for _, err := range s.inst.ShutdownCallbacks() {
		s.log.Warn("CoreDNS shutdown", "err", err)
	}
	if err := s.inst.Stop(); err != nil {
		s.log.Warn("CoreDNS did not stop cleanly", "err", err)
	}
	s.inst = nil
}

// freePort returns a TCP port free on ip now.
func freePort(ip netip.Addr) (int, error) {
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
