// Package proxy is the node's Service data plane (the course's
// kube-proxy): it watches Services and EndpointSlices and programs the
// kernel's packet filter so that ClusterIPs, NodePorts and LoadBalancer
// addresses reach the Services' endpoints. It works as kube-proxy's
// nftables mode does (pkg/proxy/nftables): one nftables table, family ip,
// written through netlink with github.com/google/nftables (no nft or
// iptables process), one transaction per sync.
//
// # Use
//
//	cidrs, err := proxy.DiscoverServiceCIDRs(ctx, cs) // or --service-cidr
//	p, err := proxy.New(proxy.Config{Client: cs, NodeName: "node-a",
//		NodeIPs: []netip.Addr{nodeIP}, ClusterCIDR: clusterCIDR,
//		ServiceCIDRs: cidrs, Logger: log.With("component", "proxy")})
//	err = p.Run(ctx)                     // until ctx ends; the rules stay
//	err = proxy.Cleanup(proxy.DefaultTable) // labctl killall
//
// # What it does
//
//   - ClusterIP: new connections go to a random Ready endpoint (or, when
//     none is Ready, to those that still serve while terminating, as
//     upstream's fallback); traffic to the ClusterIP from outside the pod
//     network (the node itself, say) is masqueraded so that the answers
//     come back through the node.
//   - NodePort: answered on Config.NodeIPs (not on 127.0.0.1, as upstream's
//     nftables mode), masqueraded.
//   - LoadBalancer: traffic to status.loadBalancer.ingress IPs (ipMode VIP)
//     at the service port is handled as NodePort traffic; labctl's
//     service-lb controller (server/controllers/servicelb.go) puts the
//     nodes' InternalIPs there. spec.externalIPs likewise.
//   - ExternalName and headless Services get no rules.
//   - sessionAffinity ClientIP: a timed set per endpoint remembers its
//     clients (timeoutSeconds, default 3 h).
//   - externalTrafficPolicy Local: outside traffic only to this node's
//     endpoints, not masqueraded (the client's address is kept), dropped
//     when there is none; the pods' and the node's own traffic may use any
//     endpoint. internalTrafficPolicy Local: ClusterIP traffic only to this
//     node's endpoints, dropped when there is none.
//   - Hairpin: a pod that reaches itself through its Service is
//     masqueraded.
//   - No endpoints: connections are rejected (TCP reset, ICMP port
//     unreachable otherwise), at once rather than after a timeout; so are
//     ClusterIP ports the Service does not have.
//   - Unallocated ClusterIPs: new connections to an address of the service
//     range (Config.ServiceCIDRs; the agent asks the API server for it
//     with DiscoverServiceCIDRs) that no Service holds are dropped, rather
//     than routed out of the node by its default route. When a Service is
//     deleted, its address leaves the cluster-ips set and is dropped too.
//   - Stale UDP conntrack entries to a Service whose serving endpoints
//     changed are deleted (see conntrack.go).
//
// Traffic from the pods crosses the cni0 bridge with bridge netfilter on
// (networking.SetupHost) and meets the prerouting hook; the node's own
// traffic meets the output hook: both jump to the services chain.
//
// # The table
//
// `nft list table ip labctl-proxy` shows it; the names are kube-proxy's:
//
//	nat-prerouting, nat-output  (dstnat)  jump services
//	nat-postrouting             (srcnat)  jump masquerading
//	filter-input/-forward/-output (dstnat-10): new connections to a
//	    service without endpoints, through the no-endpoint maps
//	filter-output-post-dnat (dstnat+10), filter-forward: new connections,
//	    after DNAT, through cluster-ips-check
//
//	cluster-ips-check   what no rule translated: a ClusterIP's other ports
//	                    rejected, the rest of the service range dropped
//	    ip daddr @cluster-ips goto reject-chain comment "Reject traffic to invalid ports of ClusterIPs"
//	    ip daddr 10.43.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
//	cluster-ips   the Services' ClusterIPs, kept element by element
//	services
//	    ip daddr . meta l4proto . th dport vmap @service-ips
//	    ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
//	service-ips   10.43.0.10 . udp . 53 : goto service-HASH-kube-system/kube-dns/udp/dns
//	              192.168.1.10 . tcp . 80 : goto external-HASH-default/web/tcp/http
//	service-HASH-default/web/tcp/http  (Cluster policy)
//	    ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
//	    numgen random mod 2 0 goto endpoint-HASH-default/web/tcp/http__10.42.0.5/8080
//	    goto endpoint-HASH-default/web/tcp/http__10.42.0.6/8080
//	local-...      the same over this node's endpoints (Local policies)
//	external-...   NodePort and LoadBalancer traffic: masquerade, then the
//	               policy's chain
//	endpoint-...__10.42.0.5/8080
//	    ip saddr 10.42.0.5 jump mark-for-masquerade      (hairpin)
//	    meta l4proto tcp dnat to 10.42.0.5:8080
//	masquerading   masquerade what mark-for-masquerade marked (0x4000)
//	no-endpoint-services, no-endpoint-nodeports: goto reject-chain, or drop
//
// One thing differs from upstream: it picks an endpoint with a run of
// `numgen random mod n 0` rules (as iptables mode's statistic matches do)
// rather than one numgen lookup in an anonymous map, which the kernel
// handles in time quadratic in the size of the transaction. (Likewise,
// cluster-ips-check has a drop rule per service range where upstream
// matches `ip daddr { 10.43.0.0/16, ... }`, an anonymous set.)
//
// # Syncs
//
// Every sync computes the whole table from the Services and slices in
// the informers' caches (about 25 ms for 1,000 Services with 5,000
// endpoints) and compares it with what it applied last: only the chains
// whose rules changed are rewritten, only the map and set elements that
// changed are added or deleted, all in one transaction. Chains no longer
// used are flushed, then deleted a second later (older kernels refuse to
// delete a chain in the transaction that drops the last map element
// naming it). Changes that come in a burst are gathered, syncing at most
// every Config.MinSyncInterval; every Config.SyncPeriod the whole table is
// rewritten, and so is it after a failed sync. A new Proxier on a table
// left by an earlier one (labctl restarted) reads which chains and sets
// it holds, rewrites it whole, and deletes what is left over; the
// affinity sets, and the clients in them, are kept. Figures are in
// bench_test.go and BENCHMARKS.md.
//
// # Caveats
//
// IPv4 only. Not done, though upstream has them: loadBalancerSourceRanges,
// topology hints (trafficDistribution), health check node ports. The
// kernel checks a table whole on every transaction that adds a
// rule, so even a one-endpoint change costs a few tens of milliseconds
// with thousands of chains.
package proxy
