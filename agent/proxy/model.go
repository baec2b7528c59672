package proxy

import (
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// A servicePort is one port of one Service as the proxy programs it, with
// the endpoints the Service's EndpointSlices give it.
type servicePort struct {
	// name is "namespace/service:port" (kube-proxy's ServicePortName).
	name string
	// chainBase is "namespace/service/protocol/port", the root of the
	// port's chain names.
	chainBase string
	proto     uint8
	clusterIP netip.Addr
	port      uint16
	nodePort  uint16
	// externalIPs are spec.externalIPs; lbIPs the LoadBalancer ingress IPs
	// (of a LoadBalancer Service, ipMode VIP).
	externalIPs, lbIPs []netip.Addr
	// externalLocal: externalTrafficPolicy Local, on a port that takes
	// external traffic; internalLocal: internalTrafficPolicy Local.
	externalLocal, internalLocal bool
	// affinity is the ClientIP sessionAffinity timeout; 0 without one.
	affinity  time.Duration
	endpoints []endpoint
}

// An endpoint is one address and port of a service port, with the
// EndpointSlice's conditions.
type endpoint struct {
	addr                        netip.Addr
	port                        uint16
	ready, serving, terminating bool
	local                       bool // on this node
}

func (sp *servicePort) externallyAccessible() bool {
	return sp.nodePort != 0 || len(sp.lbIPs) > 0 || len(sp.externalIPs) > 0
}

// usesClusterEndpoints: Cluster-policy endpoints are needed for internal
// traffic, or for external traffic (even with a Local policy, the node's
// and the pods' own traffic short-circuits to them).
func (sp *servicePort) usesClusterEndpoints() bool {
	return !sp.internalLocal || sp.externallyAccessible()
}

func (sp *servicePort) usesLocalEndpoints() bool {
	return sp.internalLocal || sp.externalLocal
}

func (sp *servicePort) externalAddrs() []netip.Addr {
	if len(sp.lbIPs) == 0 {
		return sp.externalIPs
	}
	return append(append([]netip.Addr(nil), sp.externalIPs...), sp.lbIPs...)
}

// categorize picks the endpoints for each traffic policy, as kube-proxy's
// CategorizeEndpoints does without topology hints: Ready endpoints, or,
// when there are none, the ones that still serve while terminating
// (separately for Cluster and Local). It returns the Cluster and Local
// endpoints, all the endpoints this node sends traffic to, and whether
// the service has usable endpoints anywhere.
func categorize(sp *servicePort) (cluster, local, reachable []endpoint, hasAny bool) {
	if len(sp.endpoints) == 0 {
		return nil, nil, nil, false
	}
	if sp.usesClusterEndpoints() {
		cluster = filterEndpoints(sp.endpoints, func(ep endpoint) bool { return ep.ready })
		if len(cluster) == 0 {
			cluster = filterEndpoints(sp.endpoints, func(ep endpoint) bool { return ep.serving && ep.terminating })
		}
		hasAny = len(cluster) > 0
	}
	if !sp.usesLocalEndpoints() {
		return cluster, nil, cluster, hasAny
	}
	var localReady, localTerminating bool
	for _, ep := range sp.endpoints {
		switch {
		case ep.ready:
			hasAny = true
			localReady = localReady || ep.local
		case ep.serving && ep.terminating:
			hasAny = true
			localTerminating = localTerminating || ep.local
		}
	}
	terminatingOnly := false
	switch {
	case localReady:
		local = filterEndpoints(sp.endpoints, func(ep endpoint) bool { return ep.local && ep.ready })
	case localTerminating:
		terminatingOnly = true
		local = filterEndpoints(sp.endpoints, func(ep endpoint) bool { return ep.local && ep.serving && ep.terminating })
	}
	if !sp.usesClusterEndpoints() {
		return nil, local, local, hasAny
	}
	if !terminatingOnly {
		// The Ready local endpoints are among the Ready cluster ones.
		return cluster, local, cluster, hasAny
	}
	seen := map[netip.AddrPort]bool{}
	for _, ep := range append(append([]endpoint(nil), cluster...), local...) {
		ap := netip.AddrPortFrom(ep.addr, ep.port)
		if !seen[ap] {
			seen[ap] = true
			reachable = append(reachable, ep)
		}
	}
	sortEndpoints(reachable)
	return cluster, local, reachable, hasAny
}

func filterEndpoints(eps []endpoint, keep func(endpoint) bool) []endpoint {
	var out []endpoint
	for _, ep := range eps {
		if keep(ep) {
			out = append(out, ep)
		}
	}
	return out
}

func sortEndpoints(eps []endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if c := eps[i].addr.Compare(eps[j].addr); c != 0 {
			return c < 0
		}
		return eps[i].port < eps[j].port
	})
}

// defaultAffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds'
// default, 3 hours.
const defaultAffinityTimeout = 10800 * time.Second

// servicePorts turns Services and their EndpointSlices into service
// ports, sorted by name. Services that carry no traffic through the proxy
// are left out: ExternalName, headless (no ClusterIP) and those without
// an IPv4 ClusterIP. Only IPv4 EndpointSlices count.
func servicePorts(services []*corev1.Service, slices []*discoveryv1.EndpointSlice, nodeName string) []*servicePort {
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range slices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" || s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		key := s.Namespace + "/" + name
		bySvc[key] = append(bySvc[key], s)
	}
	var out []*servicePort
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		clusterIP, ok := ipv4ClusterIP(svc)
		if !ok {
			continue
		}
		svcSlices := bySvc[svc.Namespace+"/"+svc.Name]
		for i := range svc.Spec.Ports {
			sp := newServicePort(svc, &svc.Spec.Ports[i], clusterIP)
			if sp == nil {
				continue
			}
			sp.endpoints = sliceEndpoints(svcSlices, svc.Spec.Ports[i], nodeName)
			out = append(out, sp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].chainBase < out[j].chainBase })
	return out
}

func ipv4ClusterIP(svc *corev1.Service) (netip.Addr, bool) {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false // headless ("None"), or IPv6 only
}

func newServicePort(svc *corev1.Service, p *corev1.ServicePort, clusterIP netip.Addr) *servicePort {
	var proto uint8
	switch p.Protocol {
	case corev1.ProtocolTCP, "":
		proto = protoTCP
	case corev1.ProtocolUDP:
		proto = protoUDP
	case corev1.ProtocolSCTP:
		proto = protoSCTP
	default:
		return nil
	}
	ns := svc.Namespace + "/" + svc.Name
	sp := &servicePort{
		name:      ns + ":" + p.Name,
		chainBase: ns + "/" + protoName(proto) + "/" + p.Name,
		proto:     proto,
		clusterIP: clusterIP,
		port:      uint16(p.Port),
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		sp.nodePort = uint16(p.NodePort)
	}
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			sp.externalIPs = append(sp.externalIPs, a)
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP {
				continue // the load balancer proxies: traffic arrives at the node ports
			}
			if a, err := netip.ParseAddr(ing.IP); err == nil && a.Is4() {
				sp.lbIPs = append(sp.lbIPs, a)
			}
		}
	}
	sp.externalLocal = svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && sp.externallyAccessible()
	sp.internalLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		sp.affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			sp.affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	return sp
}

// sliceEndpoints collects a service port's endpoints from the Service's
// slices: the slice port of the same name and protocol gives the port
// number. An endpoint listed twice (two slices during a change) counts
// once, as ready if either says so.
func sliceEndpoints(slices []*discoveryv1.EndpointSlice, p corev1.ServicePort, nodeName string) []endpoint {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	index := map[netip.AddrPort]int{}
	var eps []endpoint
	for _, s := range slices {
		var port int32 = -1
		for _, sp := range s.Ports {
			name, pr := "", corev1.ProtocolTCP
			if sp.Name != nil {
				name = *sp.Name
			}
			if sp.Protocol != nil {
				pr = *sp.Protocol
			}
			if name == p.Name && pr == proto && sp.Port != nil {
				port = *sp.Port
				break
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || !a.Is4() {
				continue
			}
			c := e.Conditions
			ep := endpoint{
				addr:        a,
				port:        uint16(port),
				ready:       c.Ready == nil || *c.Ready,
				serving:     c.Serving == nil || *c.Serving,
				terminating: c.Terminating != nil && *c.Terminating,
				local:       e.NodeName != nil && *e.NodeName == nodeName,
			}
			ap := netip.AddrPortFrom(a, ep.port)
			if i, ok := index[ap]; ok {
				if ep.ready && !eps[i].ready {
					eps[i] = ep
				}
				continue
			}
			index[ap] = len(eps)
			eps = append(eps, ep)
		}
	}
	sortEndpoints(eps)
	return eps
}
