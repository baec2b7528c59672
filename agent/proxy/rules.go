package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strconv"

	"github.com/google/nftables"
)

// Names in the table, kube-proxy's (pkg/proxy/nftables), so that what
// the course shows of upstream's table reads the same here.
const (
	chainServices        = "services"
	chainMarkMasq        = "mark-for-masquerade"
	chainMasquerading    = "masquerading"
	chainServiceEPCheck  = "service-endpoints-check"
	chainNodePortEPCheck = "nodeport-endpoints-check"
	chainClusterIPsCheck = "cluster-ips-check"
	chainReject          = "reject-chain"

	setClusterIPs   = "cluster-ips"
	setNodePortIPs  = "nodeport-ips"
	mapServiceIPs   = "service-ips"
	mapNodePorts    = "service-nodeports"
	mapNoEPServices = "no-endpoint-services"
	mapNoEPNodePort = "no-endpoint-nodeports"

	// Prefixes of the per-service-port and per-endpoint names.
	prefixCluster  = "service-"
	prefixLocal    = "local-"
	prefixExternal = "external-"
	prefixEndpoint = "endpoint-"
	prefixAffinity = "affinity-"
)

// A baseChain is a chain on a netfilter hook, with its fixed rules.
type baseChain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority int32
	rules    []rule
}

// Priorities: DNAT at dstnat (-100), the filter checks just before it so
// that they see the service address, and the check of ClusterIP ports
// just after it (kube-proxy's).
const (
	prioDstNAT = -100
	prioSrcNAT = 100
)

var baseChains = []baseChain{
	{"filter-input", nftables.ChainTypeFilter, nftables.ChainHookInput, prioDstNAT - 10, []rule{
		{ctNew{}, jumpTo(chainNodePortEPCheck)},
		{ctNew{}, jumpTo(chainServiceEPCheck)},
	}},
	{"filter-forward", nftables.ChainTypeFilter, nftables.ChainHookForward, prioDstNAT - 10, []rule{
		{ctNew{}, jumpTo(chainServiceEPCheck)},
		{ctNew{}, jumpTo(chainClusterIPsCheck)},
	}},
	{"filter-output", nftables.ChainTypeFilter, nftables.ChainHookOutput, prioDstNAT - 10, []rule{
		{ctNew{}, jumpTo(chainServiceEPCheck)},
	}},
	{"filter-output-post-dnat", nftables.ChainTypeFilter, nftables.ChainHookOutput, prioDstNAT + 10, []rule{
		{ctNew{}, jumpTo(chainClusterIPsCheck)},
	}},
	{"nat-prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, prioDstNAT, []rule{
		{jumpTo(chainServices)},
	}},
	{"nat-output", nftables.ChainTypeNAT, nftables.ChainHookOutput, prioDstNAT, []rule{
		{jumpTo(chainServices)},
	}},
	{"nat-postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, prioSrcNAT, []rule{
		{jumpTo(chainMasquerading)},
	}},
}

// A setSpec defines one of the fixed sets and maps.
type setSpec struct {
	name    string
	isMap   bool // a verdict map
	keyType nftables.SetDatatype
	comment string
}

func mustConcat(types ...nftables.SetDatatype) nftables.SetDatatype {
	t, err := nftables.ConcatSetType(types...)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	addrProtoPort = mustConcat(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	protoPort     = mustConcat(nftables.TypeInetProto, nftables.TypeInetService)
)

var fixedSets = []setSpec{
	{setClusterIPs, false, nftables.TypeIPAddr, "Active ClusterIPs"},
	{setNodePortIPs, false, nftables.TypeIPAddr, "IPs that accept NodePort traffic"},
	{mapServiceIPs, true, addrProtoPort, "ClusterIP, ExternalIP and LoadBalancer IP traffic"},
	{mapNodePorts, true, protoPort, "NodePort traffic"},
	{mapNoEPServices, true, addrProtoPort, "vmap to drop or reject packets to services with no endpoints"},
	{mapNoEPNodePort, true, protoPort, "vmap to drop or reject packets to service nodeports with no endpoints"},
}

// rulesConfig is what the rules depend on besides the services.
type rulesConfig struct {
	// nodePortIPs are the addresses NodePorts answer on; none means
	// every local address but 127.0.0.0/8.
	nodePortIPs []netip.Addr
	// clusterCIDR is the pod network.
	clusterCIDR netip.Prefix
	// serviceCIDRs are the ranges ClusterIPs come from, IPv4, masked and
	// sorted: new connections to their unallocated addresses are dropped.
	serviceCIDRs []netip.Prefix
}

// buildRuleset computes the table for the service ports, as kube-proxy's
// nftables mode would (its syncProxyRules): per service port, a chain for
// each traffic policy in use ("service-" for Cluster, "local-" for Local),
// an "external-" chain for NodePort, LoadBalancer and external IP traffic,
// and an "endpoint-" chain per endpoint that DNATs to it; the service-ips
// and service-nodeports maps send traffic to them, and the no-endpoint
// maps reject (no endpoints at all) or drop (none for a Local policy)
// what they cannot take.
func buildRuleset(cfg rulesConfig, ports []*servicePort) *ruleset {
	rs := newRuleset()
	writeFixedChains(rs, cfg)
	for _, ip := range cfg.nodePortIPs {
		rs.sets[setNodePortIPs][element{addr: ip}] = struct{}{}
	}
	for _, sp := range ports {
		writeServicePort(rs, cfg, sp)
	}
	return rs
}

// writeFixedChains writes the regular chains every table has.
func writeFixedChains(rs *ruleset, cfg rulesConfig) {
	rs.chains[chainMarkMasq] = []rule{{markMasq{}}}
	rs.chains[chainMasquerading] = []rule{
		{markUnset{}, verdictReturn},
		{markClear{}},
		{masquerade{}},
	}
	rs.chains[chainReject] = []rule{
		{l4proto(protoTCP), reject{tcpReset: true}},
		{reject{}},
	}
	rs.chains[chainServiceEPCheck] = []rule{{vmapAddrPort{mapNoEPServices}}}
	// Reached after DNAT (filter-forward, filter-output-post-dnat), by new
	// connections whose address no rule translated: an allocated ClusterIP
	// at a port its Service does not have is rejected, any other address
	// of the service range dropped, rather than routed out of the node
	// (kube-proxy's rules, with its comments; its drop matches an
	// anonymous set of the ranges, here one rule per range).
	clusterIPsCheck := []rule{{inSet{daddr: true, set: setClusterIPs}, goTo(chainReject),
		comment("Reject traffic to invalid ports of ClusterIPs")}}
	for _, p := range cfg.serviceCIDRs {
		clusterIPsCheck = append(clusterIPsCheck, rule{daddrIn(p), verdictDrop,
			comment("Drop traffic to unallocated ClusterIPs")})
	}
	rs.chains[chainClusterIPsCheck] = clusterIPsCheck
	services := []rule{{vmapAddrPort{mapServiceIPs}}}
	if len(cfg.nodePortIPs) > 0 {
		services = append(services, rule{inSet{daddr: true, set: setNodePortIPs}, vmapPort{mapNodePorts}})
		rs.chains[chainNodePortEPCheck] = []rule{{inSet{daddr: true, set: setNodePortIPs}, vmapPort{mapNoEPNodePort}}}
	} else {
		notLoopback := addrMatch{daddr: true, prefix: loopback, not: true}
		services = append(services, rule{fibLocal{daddr: true}, notLoopback, vmapPort{mapNodePorts}})
		// Only reached on the input hook: the address is local.
		rs.chains[chainNodePortEPCheck] = []rule{{notLoopback, vmapPort{mapNoEPNodePort}}}
	}
	rs.chains[chainServices] = services
}

// hashedName is a hash of name, then name: the service and endpoint
// chains and the affinity sets are named prefix + hashedName(...), as
// kube-proxy names them; the hash keeps names that differ only at the end
// apart at a glance. Chain and set names may be 256 bytes; these stay well
// under.
func hashedName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return base32.StdEncoding.EncodeToString(sum[:5]) + "-" + name
}

// endpointName is an endpoint's name within its service port, before the
// hash: "namespace/service/protocol/port__address/port".
func endpointName(sp *servicePort, ep endpoint) string {
	return sp.chainBase + "__" + ep.addr.String() + "/" + strconv.Itoa(int(ep.port))
}

func writeServicePort(rs *ruleset, cfg rulesConfig, sp *servicePort) {
	clusterEPs, localEPs, reachable, hasEndpoints := categorize(sp)
	base := hashedName(sp.chainBase)
	clusterChain, localChain, externalChain := prefixCluster+base, prefixLocal+base, prefixExternal+base
	epNames := map[netip.AddrPort]string{}
	epName := func(ep endpoint) string { // hashed, computed once
		ap := netip.AddrPortFrom(ep.addr, ep.port)
		n, ok := epNames[ap]
		if !ok {
			n = hashedName(endpointName(sp, ep))
			epNames[ap] = n
		}
		return n
	}
	key := func(a netip.Addr) element { return element{addr: a, proto: sp.proto, port: sp.port} }

	usesClusterChain := len(clusterEPs) > 0 && sp.usesClusterEndpoints()
	usesLocalChain := len(localEPs) > 0 && sp.usesLocalEndpoints()

	internalChain, hasInternal := clusterChain, hasEndpoints
	if sp.internalLocal {
		internalChain = localChain
		hasInternal = len(localEPs) > 0
	}
	externalPolicyChain, hasExternal := clusterChain, hasEndpoints
	if sp.externalLocal {
		externalPolicyChain = localChain
		hasExternal = len(localEPs) > 0
	}
	// The external chain is needed even without external endpoints: it
	// short-circuits the node's and the pods' own traffic.
	usesExternalChain := hasEndpoints && sp.externallyAccessible()

	// What traffic that has nowhere to go meets: a REJECT when the
	// service has no endpoints at all, a drop when only its Local
	// policy leaves it none.
	internalFilter, externalFilter := goTo(chainReject), goTo(chainReject)
	if hasEndpoints {
		internalFilter, externalFilter = verdictDrop, verdictDrop
	}

	// The ClusterIP.
	rs.sets[setClusterIPs][element{addr: sp.clusterIP}] = struct{}{}
	if hasInternal {
		rs.maps[mapServiceIPs][key(sp.clusterIP)] = mapValue{verdict: goTo(internalChain)}
	} else {
		rs.maps[mapNoEPServices][key(sp.clusterIP)] = mapValue{verdict: internalFilter, comment: sp.name}
	}
	// External IPs and LoadBalancer ingress IPs.
	for _, ip := range sp.externalAddrs() {
		if hasEndpoints {
			rs.maps[mapServiceIPs][key(ip)] = mapValue{verdict: goTo(externalChain)}
		}
		if !hasExternal {
			rs.maps[mapNoEPServices][key(ip)] = mapValue{verdict: externalFilter, comment: sp.name}
		}
	}
	// The NodePort.
	if sp.nodePort != 0 {
		np := element{proto: sp.proto, port: sp.nodePort}
		if hasEndpoints {
			rs.maps[mapNodePorts][np] = mapValue{verdict: goTo(externalChain)}
		}
		if !hasExternal {
			rs.maps[mapNoEPNodePort][np] = mapValue{verdict: externalFilter, comment: sp.name}
		}
	}

	// Internal traffic from outside the pod network (the node itself, or
	// a machine that routes the service range here) is masqueraded, so
	// that replies come back through this node to be un-DNATed.
	var internalRules []rule
	if hasInternal && cfg.clusterCIDR.IsValid() {
		internalRules = append(internalRules, rule{daddrIs(sp.clusterIP), dport{sp.proto, sp.port},
			saddrNotIn(cfg.clusterCIDR), jumpTo(chainMarkMasq)})
	}

	if usesExternalChain {
		var ext []rule
		if !sp.externalLocal {
			// Cluster policy: the endpoint may be on another node.
			ext = append(ext, rule{jumpTo(chainMarkMasq)})
		} else {
			// Local policy keeps the client's address, except for the
			// pods' own traffic (as if it went out to a load balancer and
			// back) and the node's (whose source would be a local
			// address), which may go to any endpoint.
			if cfg.clusterCIDR.IsValid() {
				ext = append(ext, rule{saddrIn(cfg.clusterCIDR), goTo(clusterChain)})
			}
			ext = append(ext,
				rule{fibLocal{}, jumpTo(chainMarkMasq)},
				rule{fibLocal{}, goTo(clusterChain)})
		}
		if hasExternal {
			ext = append(ext, rule{goTo(externalPolicyChain)})
		}
		rs.chains[externalChain] = ext
	}

	affinity := sp.affinity > 0
	if affinity {
		for _, ep := range reachable {
			rs.affinity[prefixAffinity+epName(ep)] = sp.affinity
		}
	}
	if usesClusterChain {
		var rules []rule
		if internalChain == clusterChain {
			rules = internalRules
		}
		rs.chains[clusterChain] = append(rules, endpointRules(sp, clusterEPs, epName)...)
	}
	if usesLocalChain {
		var rules []rule
		if internalChain == localChain {
			rules = internalRules
		}
		rs.chains[localChain] = append(rules, endpointRules(sp, localEPs, epName)...)
	}
	for _, ep := range reachable {
		name := epName(ep)
		rules := []rule{
			// Hairpin: a pod that reaches itself through the service is
			// masqueraded, or it would answer itself directly.
			{saddrIs(ep.addr), jumpTo(chainMarkMasq)},
		}
		if affinity {
			rules = append(rules, rule{updateSaddr{prefixAffinity + name}})
		}
		rules = append(rules, rule{l4proto(sp.proto), dnat{ep.addr, ep.port}})
		rs.chains[prefixEndpoint+name] = rules
	}
}

// endpointRules are a policy chain's rules after the masquerade: the
// clients that have an affinity go back to their endpoint, the others to
// a random one.
func endpointRules(sp *servicePort, eps []endpoint, epName func(endpoint) string) []rule {
	var rules []rule
	if sp.affinity > 0 {
		for _, ep := range eps {
			name := epName(ep)
			rules = append(rules, rule{inSet{set: prefixAffinity + name}, goTo(prefixEndpoint + name)})
		}
	}
	for i, ep := range eps {
		to := goTo(prefixEndpoint + epName(ep))
		if left := len(eps) - i; left > 1 {
			rules = append(rules, rule{numgenZero(left), to})
		} else {
			rules = append(rules, rule{to})
		}
	}
	return rules
}
