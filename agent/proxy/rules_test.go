package proxy

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// The rule computation, without a kernel: Services and EndpointSlices in,
// the table's contents out, printed as nft would and compared.

var testRulesConfig = rulesConfig{
	nodePortIPs: []netip.Addr{netip.MustParseAddr(testNodeIP)},
	clusterCIDR: netip.MustParsePrefix(testClusterCIDR),
}

var chainHash = regexp.MustCompile(`\b(service|local|external|endpoint|affinity)-[A-Z2-7]{8}-`)

// tableFor computes the table and prints it block by block (each set,
// map and chain), sorted, with the hashes left out of the names.
func tableFor(cfg rulesConfig, svcs []*corev1.Service, slices ...*discoveryv1.EndpointSlice) map[string]string {
	dump := buildRuleset(cfg, servicePorts(svcs, slices, testNodeName)).dump()
	dump = chainHash.ReplaceAllString(dump, "$1-")
	blocks := map[string]string{}
	var cur []string
	for _, line := range strings.Split(dump, "\n") {
		if line == "" {
			continue
		}
		cur = append(cur, line)
		if strings.HasSuffix(line, "}") && !strings.HasPrefix(line, "\t") {
			head, _, _ := strings.Cut(cur[0], " {")
			blocks[head] = strings.Join(cur, "\n")
			cur = nil
		}
	}
	return blocks
}

func wantBlock(t *testing.T, blocks map[string]string, head, want string) {
	t.Helper()
	// want is indented as the code: its inner lines two tabs in (one in
	// the dump), its closing brace two tabs in (none in the dump).
	lines := strings.Split(strings.TrimSpace(want), "\n")
	for i := 1; i < len(lines); i++ {
		lines[i] = strings.TrimPrefix(lines[i], "\t\t")
		if lines[i] != "}" {
			lines[i] = "\t" + lines[i]
		}
	}
	want = strings.Join(lines, "\n")
	if got := blocks[head]; got != want {
		t.Errorf("%s:\n%s\nwant:\n%s", head, got, want)
	}
}

func noBlock(t *testing.T, blocks map[string]string, heads ...string) {
	t.Helper()
	for _, h := range heads {
		if b, ok := blocks[h]; ok {
			t.Errorf("unexpected %s", b)
		}
	}
}

// serviceBlocks lists the per-service chains and sets.
func serviceBlocks(blocks map[string]string) []string {
	var out []string
	for h := range blocks {
		if strings.Contains(h, "default/") {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

func TestRulesFixedChains(t *testing.T) {
	b := tableFor(testRulesConfig, nil)
	wantBlock(t, b, "chain services", `chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
		}`)
	wantBlock(t, b, "chain masquerading", `chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
		}`)
	wantBlock(t, b, "chain reject-chain", `chain reject-chain {
		meta l4proto tcp reject with tcp reset
		reject
		}`)
	wantBlock(t, b, "set nodeport-ips", `set nodeport-ips { 192.168.77.1 }`)
	// Without node addresses: every local one but localhost's.
	b = tableFor(rulesConfig{clusterCIDR: testRulesConfig.clusterCIDR}, nil)
	wantBlock(t, b, "chain services", `chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
		}`)
	wantBlock(t, b, "chain nodeport-endpoints-check", `chain nodeport-endpoints-check {
		ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
		}`)
}

func TestRulesClusterIPsCheck(t *testing.T) {
	svc := newService("web", "10.96.0.10", 80, 8080)
	slice := newSlice(svc, 8080, ep{ip: "10.244.0.10"})
	// Without a service range: only the ClusterIPs' other ports.
	b := tableFor(testRulesConfig, []*corev1.Service{svc}, slice)
	wantBlock(t, b, "chain cluster-ips-check", `chain cluster-ips-check {
		ip daddr @cluster-ips goto reject-chain comment "Reject traffic to invalid ports of ClusterIPs"
		}`)
	// With the ranges (in order, whatever the Config's): the rest of them
	// dropped.
	p, err := New(Config{Client: newClient(), NodeName: testNodeName, ClusterCIDR: netip.MustParsePrefix(testClusterCIDR),
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.97.0.0/16"), netip.MustParsePrefix("10.96.0.7/16"),
			netip.MustParsePrefix("fd00:96::/112"), netip.MustParsePrefix("10.97.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testRulesConfig
	cfg.serviceCIDRs = p.rules.serviceCIDRs
	b = tableFor(cfg, []*corev1.Service{svc}, slice)
	wantBlock(t, b, "chain cluster-ips-check", `chain cluster-ips-check {
		ip daddr @cluster-ips goto reject-chain comment "Reject traffic to invalid ports of ClusterIPs"
		ip daddr 10.96.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
		ip daddr 10.97.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
		}`)
	wantBlock(t, b, "set cluster-ips", `set cluster-ips { 10.96.0.10 }`)
	// The Service goes: its address leaves the set, the chain stays.
	b2 := tableFor(cfg, nil)
	wantBlock(t, b2, "set cluster-ips", `set cluster-ips { }`)
	if b2["chain cluster-ips-check"] != b["chain cluster-ips-check"] {
		t.Errorf("cluster-ips-check changed with the Services:\n%s", b2["chain cluster-ips-check"])
	}
	// A range that takes in the pods' addresses is refused.
	_, err = New(Config{Client: newClient(), NodeName: testNodeName, ClusterCIDR: netip.MustParsePrefix(testClusterCIDR),
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err == nil || !strings.Contains(err.Error(), "overlaps the cluster CIDR") {
		t.Errorf("a service CIDR over the cluster CIDR: %v", err)
	}
}

func TestRulesClusterIPAndNodePort(t *testing.T) {
	svc := newService("web", "10.96.0.10", 80, 8080, withNodePort(30080))
	b := tableFor(testRulesConfig, []*corev1.Service{svc},
		newSlice(svc, 8080, ep{ip: "10.244.0.10"}, ep{ip: "10.244.0.11", node: "node-b"}, ep{ip: "10.244.0.12"},
			ep{ip: "10.244.0.13", notReady: true}))
	wantBlock(t, b, "set cluster-ips", `set cluster-ips { 10.96.0.10 }`)
	wantBlock(t, b, "map service-ips", `map service-ips {
		10.96.0.10 . tcp . 80 : goto service-default/web/tcp/p
		}`)
	wantBlock(t, b, "map service-nodeports", `map service-nodeports {
		tcp . 30080 : goto external-default/web/tcp/p
		}`)
	wantBlock(t, b, "map no-endpoint-services", "map no-endpoint-services {\n}")
	// Random among the ready endpoints: 1/3, then 1/2 of the rest, then
	// the last; traffic from outside the pod network masqueraded.
	wantBlock(t, b, "chain service-default/web/tcp/p", `chain service-default/web/tcp/p {
		ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		numgen random mod 3 0 goto endpoint-default/web/tcp/p__10.244.0.10/8080
		numgen random mod 2 0 goto endpoint-default/web/tcp/p__10.244.0.11/8080
		goto endpoint-default/web/tcp/p__10.244.0.12/8080
		}`)
	wantBlock(t, b, "chain endpoint-default/web/tcp/p__10.244.0.11/8080", `chain endpoint-default/web/tcp/p__10.244.0.11/8080 {
		ip saddr 10.244.0.11 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.244.0.11:8080
		}`)
	// NodePort traffic (Cluster policy) is masqueraded.
	wantBlock(t, b, "chain external-default/web/tcp/p", `chain external-default/web/tcp/p {
		jump mark-for-masquerade
		goto service-default/web/tcp/p
		}`)
	want := []string{
		"chain endpoint-default/web/tcp/p__10.244.0.10/8080",
		"chain endpoint-default/web/tcp/p__10.244.0.11/8080",
		"chain endpoint-default/web/tcp/p__10.244.0.12/8080",
		"chain external-default/web/tcp/p",
		"chain service-default/web/tcp/p",
	}
	if got := serviceBlocks(b); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the service's chains: %q, want %q", got, want)
	}
}

func TestRulesNoTrafficServices(t *testing.T) {
	headless := newService("headless", "None", 80, 8080)
	extName := newService("ext", "", 80, 8080)
	extName.Spec.Type, extName.Spec.ClusterIP, extName.Spec.ClusterIPs, extName.Spec.ExternalName = corev1.ServiceTypeExternalName, "", nil, "example.com"
	v6 := newService("v6", "fd00::10", 80, 8080)
	svcs := []*corev1.Service{headless, extName, v6}
	b := tableFor(testRulesConfig, svcs, newSlice(headless, 8080, ep{ip: "10.244.0.10"}))
	if s := serviceBlocks(b); len(s) > 0 {
		t.Errorf("rules for services that carry no traffic: %v", s)
	}
	wantBlock(t, b, "set cluster-ips", "set cluster-ips { }")
	wantBlock(t, b, "map service-ips", "map service-ips {\n}")
}

func TestRulesNoEndpoints(t *testing.T) {
	svc := newService("lb", "10.96.0.30", 80, 8080, withLoadBalancer(30030, testNodeIP))
	svc.Spec.ExternalIPs = []string{"192.0.2.7"}
	for _, slices := range [][]*discoveryv1.EndpointSlice{
		nil,                   // no slice yet
		{newSlice(svc, 8080)}, // an empty one
		{newSlice(svc, 8080, ep{ip: "10.244.0.10", notReady: true})}, // none ready
	} {
		b := tableFor(testRulesConfig, []*corev1.Service{svc}, slices...)
		if s := serviceBlocks(b); len(s) > 0 {
			t.Errorf("chains for a service without endpoints: %v", s)
		}
		wantBlock(t, b, "map no-endpoint-services", `map no-endpoint-services {
		10.96.0.30 . tcp . 80 : goto reject-chain
		192.0.2.7 . tcp . 80 : goto reject-chain
		192.168.77.1 . tcp . 80 : goto reject-chain
		}`)
		wantBlock(t, b, "map no-endpoint-nodeports", `map no-endpoint-nodeports {
		tcp . 30030 : goto reject-chain
		}`)
		wantBlock(t, b, "map service-ips", "map service-ips {\n}")
		wantBlock(t, b, "set cluster-ips", "set cluster-ips { 10.96.0.30 }")
	}
}

func TestRulesTerminatingFallback(t *testing.T) {
	svc := newService("web", "10.96.0.40", 80, 8080)
	svcs := []*corev1.Service{svc}
	chain := "chain service-default/web/tcp/p"
	// A ready endpoint wins over serving terminating ones.
	b := tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.10", terminating: true}, ep{ip: "10.244.0.11"}))
	wantBlock(t, b, chain, `chain service-default/web/tcp/p {
		ip daddr 10.96.0.40 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		goto endpoint-default/web/tcp/p__10.244.0.11/8080
		}`)
	// None ready: the terminating ones that still serve.
	b = tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.10", terminating: true},
		ep{ip: "10.244.0.11", terminating: true, notReady: true}))
	wantBlock(t, b, chain, `chain service-default/web/tcp/p {
		ip daddr 10.96.0.40 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		goto endpoint-default/web/tcp/p__10.244.0.10/8080
		}`)
	// None serving: rejected.
	b = tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.10", terminating: true, notReady: true}))
	noBlock(t, b, chain)
	wantBlock(t, b, "map no-endpoint-services", `map no-endpoint-services {
		10.96.0.40 . tcp . 80 : goto reject-chain
		}`)
}

func TestRulesExternalTrafficPolicyLocal(t *testing.T) {
	svc := newService("web", "10.96.0.60", 80, 8080, withLoadBalancer(30060, testNodeIP), withExternalLocal)
	svcs := []*corev1.Service{svc}
	b := tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.10"}, ep{ip: "10.244.0.11", node: "node-b"}))
	// Pods' and the node's own traffic may go anywhere (the node's
	// masqueraded), the rest only to the local endpoint, unmasqueraded.
	wantBlock(t, b, "chain external-default/web/tcp/p", `chain external-default/web/tcp/p {
		ip saddr 10.244.0.0/16 goto service-default/web/tcp/p
		fib saddr type local jump mark-for-masquerade
		fib saddr type local goto service-default/web/tcp/p
		goto local-default/web/tcp/p
		}`)
	wantBlock(t, b, "chain local-default/web/tcp/p", `chain local-default/web/tcp/p {
		goto endpoint-default/web/tcp/p__10.244.0.10/8080
		}`)
	wantBlock(t, b, "chain service-default/web/tcp/p", `chain service-default/web/tcp/p {
		ip daddr 10.96.0.60 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		numgen random mod 2 0 goto endpoint-default/web/tcp/p__10.244.0.10/8080
		goto endpoint-default/web/tcp/p__10.244.0.11/8080
		}`)
	wantBlock(t, b, "map service-ips", `map service-ips {
		10.96.0.60 . tcp . 80 : goto service-default/web/tcp/p
		192.168.77.1 . tcp . 80 : goto external-default/web/tcp/p
		}`)
	wantBlock(t, b, "map no-endpoint-nodeports", "map no-endpoint-nodeports {\n}")

	// No local endpoint: outside traffic is dropped; the rest still goes.
	b = tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.11", node: "node-b"}))
	wantBlock(t, b, "chain external-default/web/tcp/p", `chain external-default/web/tcp/p {
		ip saddr 10.244.0.0/16 goto service-default/web/tcp/p
		fib saddr type local jump mark-for-masquerade
		fib saddr type local goto service-default/web/tcp/p
		}`)
	noBlock(t, b, "chain local-default/web/tcp/p")
	wantBlock(t, b, "map no-endpoint-nodeports", `map no-endpoint-nodeports {
		tcp . 30060 : drop
		}`)
	wantBlock(t, b, "map no-endpoint-services", `map no-endpoint-services {
		192.168.77.1 . tcp . 80 : drop
		}`)
	wantBlock(t, b, "map service-nodeports", `map service-nodeports {
		tcp . 30060 : goto external-default/web/tcp/p
		}`)

	// Local on a ClusterIP service means nothing: it takes no external
	// traffic.
	plain := newService("plain", "10.96.0.62", 80, 8080, withExternalLocal)
	b = tableFor(testRulesConfig, []*corev1.Service{plain}, newSlice(plain, 8080, ep{ip: "10.244.0.11", node: "node-b"}))
	noBlock(t, b, "chain local-default/plain/tcp/p", "chain external-default/plain/tcp/p")
	wantBlock(t, b, "map service-ips", `map service-ips {
		10.96.0.62 . tcp . 80 : goto service-default/plain/tcp/p
		}`)
}

func TestRulesInternalTrafficPolicyLocal(t *testing.T) {
	svc := newService("web", "10.96.0.61", 80, 8080, withInternalLocal)
	svcs := []*corev1.Service{svc}
	b := tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.10"}, ep{ip: "10.244.0.11", node: "node-b"}))
	wantBlock(t, b, "map service-ips", `map service-ips {
		10.96.0.61 . tcp . 80 : goto local-default/web/tcp/p
		}`)
	wantBlock(t, b, "chain local-default/web/tcp/p", `chain local-default/web/tcp/p {
		ip daddr 10.96.0.61 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		goto endpoint-default/web/tcp/p__10.244.0.10/8080
		}`)
	noBlock(t, b, "chain service-default/web/tcp/p", "chain endpoint-default/web/tcp/p__10.244.0.11/8080")
	// Endpoints elsewhere only: dropped, not rejected.
	b = tableFor(testRulesConfig, svcs, newSlice(svc, 8080, ep{ip: "10.244.0.11", node: "node-b"}))
	wantBlock(t, b, "map no-endpoint-services", `map no-endpoint-services {
		10.96.0.61 . tcp . 80 : drop
		}`)
	if s := serviceBlocks(b); len(s) > 0 {
		t.Errorf("chains without a local endpoint: %v", s)
	}
}

func TestRulesSessionAffinity(t *testing.T) {
	svc := newService("sticky", "10.96.0.50", 80, 8080, withAffinity)
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	b := tableFor(testRulesConfig, []*corev1.Service{svc}, newSlice(svc, 8080, ep{ip: "10.244.0.10"}, ep{ip: "10.244.0.11"}))
	wantBlock(t, b, "set affinity-default/sticky/tcp/p__10.244.0.10/8080", "set affinity-default/sticky/tcp/p__10.244.0.10/8080 { timeout 1m0s }")
	wantBlock(t, b, "chain service-default/sticky/tcp/p", `chain service-default/sticky/tcp/p {
		ip daddr 10.96.0.50 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		ip saddr @affinity-default/sticky/tcp/p__10.244.0.10/8080 goto endpoint-default/sticky/tcp/p__10.244.0.10/8080
		ip saddr @affinity-default/sticky/tcp/p__10.244.0.11/8080 goto endpoint-default/sticky/tcp/p__10.244.0.11/8080
		numgen random mod 2 0 goto endpoint-default/sticky/tcp/p__10.244.0.10/8080
		goto endpoint-default/sticky/tcp/p__10.244.0.11/8080
		}`)
	wantBlock(t, b, "chain endpoint-default/sticky/tcp/p__10.244.0.11/8080", `chain endpoint-default/sticky/tcp/p__10.244.0.11/8080 {
		ip saddr 10.244.0.11 jump mark-for-masquerade
		update @affinity-default/sticky/tcp/p__10.244.0.11/8080 { ip saddr }
		meta l4proto tcp dnat to 10.244.0.11:8080
		}`)
	// The default timeout is three hours.
	svc.Spec.SessionAffinityConfig = nil
	b = tableFor(testRulesConfig, []*corev1.Service{svc}, newSlice(svc, 8080, ep{ip: "10.244.0.10"}))
	wantBlock(t, b, "set affinity-default/sticky/tcp/p__10.244.0.10/8080", "set affinity-default/sticky/tcp/p__10.244.0.10/8080 { timeout 3h0m0s }")
}

func TestRulesLoadBalancerIngress(t *testing.T) {
	proxied := newService("proxied", "10.96.0.21", 80, 8080, withLoadBalancer(30021, "192.0.2.1", "192.0.2.2"))
	proxied.Status.LoadBalancer.Ingress[1].IPMode = ptr.To(corev1.LoadBalancerIPModeProxy)
	// A status left from when the service was a LoadBalancer.
	former := newService("former", "10.96.0.22", 80, 8080, withLoadBalancer(0, "192.0.2.3"))
	former.Spec.Type = corev1.ServiceTypeClusterIP
	udp := newService("udp", "10.96.0.23", 53, 5353, withUDP, withLoadBalancer(30023, "192.0.2.4"))
	b := tableFor(testRulesConfig, []*corev1.Service{proxied, former, udp},
		newSlice(proxied, 8080, ep{ip: "10.244.0.10"}), newSlice(former, 8080, ep{ip: "10.244.0.10"}),
		newSlice(udp, 5353, ep{ip: "10.244.0.10"}))
	wantBlock(t, b, "map service-ips", `map service-ips {
		10.96.0.21 . tcp . 80 : goto service-default/proxied/tcp/p
		10.96.0.22 . tcp . 80 : goto service-default/former/tcp/p
		10.96.0.23 . udp . 53 : goto service-default/udp/udp/p
		192.0.2.1 . tcp . 80 : goto external-default/proxied/tcp/p
		192.0.2.4 . udp . 53 : goto external-default/udp/udp/p
		}`)
	wantBlock(t, b, "map service-nodeports", `map service-nodeports {
		tcp . 30021 : goto external-default/proxied/tcp/p
		udp . 30023 : goto external-default/udp/udp/p
		}`)
	wantBlock(t, b, "chain endpoint-default/udp/udp/p__10.244.0.10/5353", `chain endpoint-default/udp/udp/p__10.244.0.10/5353 {
		ip saddr 10.244.0.10 jump mark-for-masquerade
		meta l4proto udp dnat to 10.244.0.10:5353
		}`)
}

func TestServicePortsFromSlices(t *testing.T) {
	svc := newService("multi", "10.96.0.70", 80, 8080)
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53})
	s1 := newSlice(svc, 8080, ep{ip: "10.244.0.10"}, ep{ip: "10.244.0.11", notReady: true})
	s1.Ports = append(s1.Ports, discoveryv1.EndpointPort{Name: ptr.To("dns"), Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To[int32](5353)})
	// A second slice lists 10.244.0.11 again, ready, and another.
	s2 := newSlice(svc, 8080, ep{ip: "10.244.0.11"}, ep{ip: "10.244.0.12", node: "node-b"})
	s2.Name = "multi-fghij"
	// Slices of another address type, or of another service, do not count.
	s3 := newSlice(svc, 8080, ep{ip: "fd00::1"})
	s3.Name, s3.AddressType = "multi-v6", discoveryv1.AddressTypeIPv6
	other := newSlice(newService("other", "10.96.0.71", 80, 8080), 8080, ep{ip: "10.244.0.99"})
	ports := servicePorts([]*corev1.Service{svc}, []*discoveryv1.EndpointSlice{s1, s2, s3, other}, testNodeName)
	if len(ports) != 2 {
		t.Fatalf("%d service ports, want 2", len(ports))
	}
	byName := map[string]*servicePort{}
	for _, p := range ports {
		byName[p.name] = p
	}
	tcp, dns := byName["default/multi:p"], byName["default/multi:dns"]
	if tcp == nil || dns == nil {
		t.Fatalf("service ports %v", byName)
	}
	var got []string
	for _, e := range tcp.endpoints {
		got = append(got, netip.AddrPortFrom(e.addr, e.port).String()+map[bool]string{true: " ready", false: ""}[e.ready]+
			map[bool]string{true: " local", false: ""}[e.local])
	}
	want := "10.244.0.10:8080 ready local,10.244.0.11:8080 ready local,10.244.0.12:8080 ready"
	if strings.Join(got, ",") != want {
		t.Errorf("TCP endpoints %q, want %q", strings.Join(got, ","), want)
	}
	// Only the first slice names the UDP port.
	if len(dns.endpoints) != 2 || dns.endpoints[0].port != 5353 || dns.proto != protoUDP {
		t.Errorf("UDP endpoints %+v", dns.endpoints)
	}
}
