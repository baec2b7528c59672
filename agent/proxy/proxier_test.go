package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labctl/networking"
)

var bg = context.Background()

func putSlice(t *testing.T, cs kubernetes.Interface, s *discoveryv1.EndpointSlice) {
	t.Helper()
	_, err := cs.DiscoveryV1().EndpointSlices(s.Namespace).Update(bg, s, metav1.UpdateOptions{})
	if err != nil {
		_, err = cs.DiscoveryV1().EndpointSlices(s.Namespace).Create(bg, s, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls fn until it returns nil or 10 s pass.
func eventually(t *testing.T, n *testNet, what string, fn func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v\n%s", what, err, n.nft("list", "ruleset"))
}

// answers makes count TCP requests from ns to addr and counts the pods
// that answer; it fails on any error.
func answers(ns, addr string, count int) (map[string]int, []answer, error) {
	seen := map[string]int{}
	var all []answer
	for range count {
		a, err := dialTCP(ns, addr, 2*time.Second)
		if err != nil {
			return seen, all, err
		}
		seen[a.pod]++
		all = append(all, a)
	}
	return seen, all, nil
}

// wantPods waits until requests from ns to addr are answered by exactly
// the pods in want (each of them at least once in 40 requests).
func wantPods(t *testing.T, n *testNet, ns, addr string, want ...string) []answer {
	t.Helper()
	var all []answer
	eventually(t, n, fmt.Sprintf("%s from %s answered by %v", addr, ns, want), func() error {
		seen, a, err := answers(ns, addr, 40)
		if err != nil {
			return err
		}
		all = a
		if len(seen) != len(want) {
			return fmt.Errorf("answered by %v", seen)
		}
		for _, p := range want {
			if seen[p] == 0 {
				return fmt.Errorf("answered by %v", seen)
			}
		}
		return nil
	})
	return all
}

// refused checks that a TCP connection from ns to addr is refused at once.
func refused(ns, addr string) error {
	start := time.Now()
	a, err := dialTCP(ns, addr, 2*time.Second)
	if err == nil {
		return fmt.Errorf("answered by %s", a.pod)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("not refused: %w", err)
	}
	if d := time.Since(start); d > time.Second {
		return fmt.Errorf("refused only after %s", d)
	}
	return nil
}

func TestProxyClusterIP(t *testing.T) {
	n := newTestNet(t)
	a, b, c := n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12)
	a.serve(t, 8080)
	b.serve(t, 8080)
	svc := newService("web", "10.96.0.10", 80, 8080)
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String()}))
	n.startProxier(cs, uniqueTable(t), nil)

	// From a pod: both endpoints, the pod's own address kept.
	for _, ans := range wantPods(t, n, c.ns, "10.96.0.10:80", "a", "b") {
		if ans.from != c.ip {
			t.Errorf("the endpoint saw %s, want the pod's %s", ans.from, c.ip)
		}
	}
	// From the node and from outside: masqueraded to the bridge address,
	// so that the answers come back through the node.
	for _, ns := range []string{n.node, n.ext} {
		for _, ans := range wantPods(t, n, ns, "10.96.0.10:80", "a", "b") {
			if ans.from != netip.MustParseAddr(testGateway) {
				t.Errorf("from %s: the endpoint saw %s, want %s", ns, ans.from, testGateway)
			}
		}
	}
	// A port the service does not have is refused.
	if err := refused(c.ns, "10.96.0.10:81"); err != nil {
		t.Error("port 81:", err)
	}
}

// dropped checks that a TCP connection from ns to addr is neither
// answered nor refused: its SYN goes nowhere (the node's own connect
// may also be told EPERM).
func dropped(ns, addr string) error {
	a, err := dialTCP(ns, addr, 700*time.Millisecond)
	if err == nil {
		return fmt.Errorf("answered by %s", a.pod)
	}
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, syscall.EPERM) {
		return nil
	}
	return fmt.Errorf("not dropped: %w", err)
}

// udpDropped checks that a datagram from ns to addr gets no answer, not
// even an ICMP error.
func udpDropped(ns, addr string) error {
	a, err := askUDP(ns, addr, 0, 700*time.Millisecond)
	if err == nil {
		return fmt.Errorf("answered by %s", a.pod)
	}
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, syscall.EPERM) {
		return nil
	}
	return fmt.Errorf("not dropped: %w", err)
}

// serveUDPAt answers datagrams to addr in namespace ns as serve does.
func serveUDPAt(t *testing.T, ns, name, addr string) {
	t.Helper()
	var pc net.PacketConn
	err := networking.InNetNS(nsPath(ns), func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %s", name, from), from)
		}
	}()
}

// Addresses of the service range that no Service holds are dropped, not
// routed out; a ClusterIP's other ports are rejected; a deleted
// Service's address joins the unallocated ones.
func TestProxyUnallocatedClusterIPs(t *testing.T) {
	n := newTestNet(t)
	a, c := n.addPod("a", 10), n.addPod("c", 12)
	a.serve(t, 8080)
	// Beyond the node's default route, ext answers for 10.96.0.0/15, as
	// a router that took the packets would: an answer from "ext" means
	// the node routed the packet out.
	run(t, "ip", "-n", n.ext, "route", "add", "local", "10.96.0.0/15", "dev", "lo")
	(&testPod{name: "ext", ns: n.ext}).serve(t, 80)
	// A UDP answer must come from the address asked, which a socket on
	// the wildcard address does not do.
	serveUDPAt(t, n.ext, "ext", "10.96.0.99:81")

	svc := newService("web", "10.96.0.10", 80, 8080)
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}))
	table := uniqueTable(t)
	const unallocated, unallocatedUDP, outside = "10.96.0.99:80", "10.96.0.99:81", "10.97.0.5:80"

	// Without the service range, as before: the unallocated address
	// leaves by the default route.
	_, stop := n.startProxier(cs, table, nil)
	wantPods(t, n, c.ns, unallocated, "ext")
	if ans, err := askUDP(c.ns, unallocatedUDP, 0, 2*time.Second); err != nil || ans.pod != "ext" {
		t.Errorf("UDP %s without the service range: %v %v, want ext's answer", unallocatedUDP, ans, err)
	}
	stop()

	// With it (a new proxier takes the table over).
	withCIDR := func(cfg *Config) { cfg.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")} }
	n.startProxier(cs, table, withCIDR)
	for _, ns := range []string{c.ns, n.node} {
		if err := dropped(ns, unallocated); err != nil {
			t.Errorf("%s from %s: %v", unallocated, ns, err)
		}
		if err := udpDropped(ns, unallocatedUDP); err != nil {
			t.Errorf("UDP %s from %s: %v", unallocatedUDP, ns, err)
		}
		// The allocated ClusterIP at its port, and at another.
		wantPods(t, n, ns, "10.96.0.10:80", "a")
		if err := refused(ns, "10.96.0.10:81"); err != nil {
			t.Errorf("10.96.0.10:81 from %s: %v", ns, err)
		}
		// Outside the range: routed as before.
		wantPods(t, n, ns, outside, "ext")
	}
	// UDP to a port the ClusterIP lacks: ICMP port unreachable. (The
	// node's own datagram fails with EPERM, the reject's drop, before the
	// ICMP error comes back: only a pod's tells a reject from a drop.)
	if ans, err := askUDP(c.ns, "10.96.0.10:80", 0, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("UDP 10.96.0.10:80 (a TCP service): %v %v, want ECONNREFUSED", ans, err)
	}
	// The Service goes: its address is unallocated, every port dropped.
	if err := cs.CoreV1().Services("default").Delete(bg, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.DiscoveryV1().EndpointSlices("default").Delete(bg, "web-abcde", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, n, "the deleted Service's address dropped", func() error {
		for _, addr := range []string{"10.96.0.10:80", "10.96.0.10:81"} {
			if err := dropped(c.ns, addr); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
		}
		return nil
	})
	if err := dropped(n.node, "10.96.0.10:80"); err != nil {
		t.Errorf("10.96.0.10:80 from the node: %v", err)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("no nft command: the table's convergence is not checked")
		return
	}
	if s := n.nft("list", "set", "ip", table, setClusterIPs); strings.Contains(s, "10.96.0.10") || !strings.Contains(s, "set "+setClusterIPs) {
		t.Errorf("cluster-ips after the Service's deletion:\n%s", s)
	}
	n.sameAsFresh(t, cs, table, withCIDR)
}

func TestProxyNodePortAndLoadBalancer(t *testing.T) {
	n := newTestNet(t)
	a, c := n.addPod("a", 10), n.addPod("c", 12)
	a.serve(t, 8080)
	np := newService("np", "10.96.0.20", 80, 8080, withNodePort(30080))
	lb := newService("lb", "10.96.0.21", 8081, 8080, withLoadBalancer(30081, testNodeIP))
	cs := newClient(np, lb)
	putSlice(t, cs, newSlice(np, 8080, ep{ip: a.ip.String()}))
	putSlice(t, cs, newSlice(lb, 8080, ep{ip: a.ip.String()}))
	n.startProxier(cs, uniqueTable(t), nil)

	nodePort := testNodeIP + ":30080"
	// From outside, masqueraded (Cluster policy: the endpoint might be on
	// another node).
	for _, ans := range wantPods(t, n, n.ext, nodePort, "a") {
		if ans.from != netip.MustParseAddr(testGateway) {
			t.Errorf("the endpoint saw %s, want %s", ans.from, testGateway)
		}
	}
	// From the node itself and from a pod.
	wantPods(t, n, n.node, nodePort, "a")
	wantPods(t, n, c.ns, nodePort, "a")
	// Not on localhost, as kube-proxy's nftables mode.
	if ans, err := dialTCP(n.node, "127.0.0.1:30080", time.Second); err == nil {
		t.Errorf("127.0.0.1:30080 answered by %s", ans.pod)
	}
	// The LoadBalancer: its ingress IP (the node's) at the service port,
	// its node port and its ClusterIP.
	wantPods(t, n, n.ext, testNodeIP+":8081", "a")
	wantPods(t, n, n.ext, testNodeIP+":30081", "a")
	wantPods(t, n, c.ns, "10.96.0.21:8081", "a")
}

func TestProxyNoEndpointsReject(t *testing.T) {
	n := newTestNet(t)
	a, c := n.addPod("a", 10), n.addPod("c", 12)
	a.serve(t, 8080)
	svc := newService("empty", "10.96.0.30", 80, 8080, withNodePort(30030))
	udp := newService("emptyudp", "10.96.0.31", 53, 8080, withUDP)
	cs := newClient(svc, udp)
	putSlice(t, cs, newSlice(svc, 8080)) // a slice without endpoints
	n.startProxier(cs, uniqueTable(t), nil)

	for _, ns := range []string{c.ns, n.node} {
		if err := refused(ns, "10.96.0.30:80"); err != nil {
			t.Errorf("ClusterIP from %s: %v", ns, err)
		}
	}
	if err := refused(n.ext, testNodeIP+":30030"); err != nil {
		t.Errorf("NodePort from outside: %v", err)
	}
	// UDP: ICMP port unreachable, which a connected socket reads as
	// ECONNREFUSED.
	if ans, err := askUDP(c.ns, "10.96.0.31:53", 0, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("UDP to a service without endpoints: %v %v, want ECONNREFUSED", ans, err)
	}
	// An endpoint comes: answered; it goes: refused again.
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}))
	wantPods(t, n, c.ns, "10.96.0.30:80", "a")
	wantPods(t, n, n.ext, testNodeIP+":30030", "a")
	putSlice(t, cs, newSlice(svc, 8080))
	eventually(t, n, "refused again", func() error { return refused(c.ns, "10.96.0.30:80") })
}

func TestProxyReadiness(t *testing.T) {
	n := newTestNet(t)
	a, b, c := n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12)
	a.serve(t, 8080)
	b.serve(t, 8080)
	svc := newService("web", "10.96.0.40", 80, 8080)
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String()}))
	n.startProxier(cs, uniqueTable(t), nil)
	addr := "10.96.0.40:80"
	wantPods(t, n, c.ns, addr, "a", "b")

	// b fails its readiness probe: out of the rotation, then back.
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String(), notReady: true}))
	wantPods(t, n, c.ns, addr, "a")
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String()}))
	wantPods(t, n, c.ns, addr, "a", "b")

	// Both terminating: the ones still serving take the traffic rather
	// than none (kube-proxy's fallback); none serving: refused.
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String(), terminating: true},
		ep{ip: b.ip.String(), terminating: true, notReady: true}))
	wantPods(t, n, c.ns, addr, "a")
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String(), terminating: true, notReady: true}))
	eventually(t, n, "refused", func() error { return refused(c.ns, addr) })
}

func TestProxySessionAffinity(t *testing.T) {
	n := newTestNet(t)
	a, b, c, d := n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12), n.addPod("d", 13)
	a.serve(t, 8080)
	b.serve(t, 8080)
	svc := newService("sticky", "10.96.0.50", 80, 8080, withAffinity)
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String()}))
	n.startProxier(cs, uniqueTable(t), nil)

	// Every client sticks to one endpoint; over several clients both are
	// used (the first choice is random: retry with new clients until
	// both show up, which fails with probability 2^-k).
	used := map[string]bool{}
	for _, client := range []string{c.ns, d.ns, n.node, n.ext} {
		seen, _, err := answers(client, "10.96.0.50:80", 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 {
			t.Errorf("client %s was answered by %v, want one endpoint", client, seen)
		}
		for p := range seen {
			used[p] = true
		}
	}
	t.Logf("endpoints used: %v", used)

	// Without affinity, one client reaches both.
	svc.Spec.SessionAffinity = "None"
	if _, err := cs.CoreV1().Services("default").Update(bg, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wantPods(t, n, c.ns, "10.96.0.50:80", "a", "b")
}

func TestProxyLocalTrafficPolicies(t *testing.T) {
	n := newTestNet(t)
	a, b, c := n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12)
	a.serve(t, 8080)
	b.serve(t, 8080)
	// b stands for an endpoint on another node.
	ext := newService("extlocal", "10.96.0.60", 80, 8080, withNodePort(30060), withExternalLocal)
	in := newService("intlocal", "10.96.0.61", 80, 8080, withInternalLocal)
	cs := newClient(ext, in)
	putSlice(t, cs, newSlice(ext, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String(), node: "node-b"}))
	putSlice(t, cs, newSlice(in, 8080, ep{ip: a.ip.String()}, ep{ip: b.ip.String(), node: "node-b"}))
	n.startProxier(cs, uniqueTable(t), nil)

	// externalTrafficPolicy Local: outside traffic only to the local
	// endpoint, with the client's address kept.
	for _, ans := range wantPods(t, n, n.ext, testNodeIP+":30060", "a") {
		if ans.from != netip.MustParseAddr(testExtIP) {
			t.Errorf("the endpoint saw %s, want the client's %s", ans.from, testExtIP)
		}
	}
	// Internal traffic and the pods' own traffic to the node port use
	// every endpoint.
	wantPods(t, n, c.ns, "10.96.0.60:80", "a", "b")
	wantPods(t, n, c.ns, testNodeIP+":30060", "a", "b")
	// internalTrafficPolicy Local: only the local endpoint.
	wantPods(t, n, c.ns, "10.96.0.61:80", "a")

	// No local endpoint left: outside traffic to the node port and pods'
	// traffic to the internal-Local ClusterIP are dropped (not rejected),
	// the pods still reach the node port.
	putSlice(t, cs, newSlice(ext, 8080, ep{ip: b.ip.String(), node: "node-b"}))
	putSlice(t, cs, newSlice(in, 8080, ep{ip: b.ip.String(), node: "node-b"}))
	wantPods(t, n, c.ns, testNodeIP+":30060", "b")
	eventually(t, n, "dropped", func() error {
		for _, probe := range []struct{ ns, addr string }{{n.ext, testNodeIP + ":30060"}, {c.ns, "10.96.0.61:80"}} {
			ans, err := dialTCP(probe.ns, probe.addr, 500*time.Millisecond)
			if err == nil {
				return fmt.Errorf("%s answered by %s", probe.addr, ans.pod)
			}
			if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
				return fmt.Errorf("%s: %w, want a timeout", probe.addr, err)
			}
		}
		return nil
	})
}

func TestProxyHairpin(t *testing.T) {
	n := newTestNet(t)
	a := n.addPod("a", 10)
	a.serve(t, 8080)
	svc := newService("self", "10.96.0.70", 80, 8080)
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}))
	n.startProxier(cs, uniqueTable(t), nil)
	// The pod reaches itself through its service; it sees the bridge's
	// address, or it would answer itself directly and the connection
	// would never form.
	for _, ans := range wantPods(t, n, a.ns, "10.96.0.70:80", "a") {
		if ans.from != netip.MustParseAddr(testGateway) {
			t.Errorf("the pod saw %s, want %s", ans.from, testGateway)
		}
	}
}

func TestProxyUDPConntrackCleared(t *testing.T) {
	n := newTestNet(t)
	a, b, c := n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12)
	a.serve(t, 5353)
	b.serve(t, 5353)
	svc := newService("dns", "10.96.0.53", 53, 5353, withUDP)
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 5353, ep{ip: a.ip.String()}))
	n.startProxier(cs, uniqueTable(t), nil)

	// A client that always uses the same port, as a resolver may: its
	// flow stays in conntrack as long as it keeps asking.
	const lport = 40053
	ask := func() (string, error) {
		ans, err := askUDP(c.ns, "10.96.0.53:53", lport, time.Second)
		return ans.pod, err
	}
	if pod, err := ask(); err != nil || pod != "a" {
		t.Fatalf("answered by %q, %v; want a", pod, err)
	}
	// a leaves the service (its server still runs): the flow must move to b.
	putSlice(t, cs, newSlice(svc, 5353, ep{ip: b.ip.String()}))
	eventually(t, n, "the flow moved to b", func() error {
		pod, err := ask()
		if err != nil {
			return err
		}
		if pod != "b" {
			return fmt.Errorf("still answered by %s", pod)
		}
		return nil
	})
}

// normalizedTable is the table as `nft -j list table` shows it, without
// what may differ between two tables with the same rules (names, handles,
// order of chains and elements, the clients in affinity sets), one line
// per chain, rule list, set or map, sorted.
func (n *testNet) normalizedTable(table string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", n.node, "nft", "-j", "list", "table", "ip", table).Output()
	if err != nil {
		return "", fmt.Errorf("nft -j list table ip %s: %w", table, err)
	}
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return "", err
	}
	rules := map[string][]string{}
	var lines []string
	for _, item := range doc.Nftables {
		for kind, obj := range item {
			delete(obj, "handle")
			delete(obj, "table")
			switch kind {
			case "chain":
				b, _ := json.Marshal(obj)
				lines = append(lines, "chain "+string(b))
			case "rule":
				b, _ := json.Marshal(obj["expr"])
				chain := obj["chain"].(string)
				rules[chain] = append(rules[chain], string(b))
			case "set", "map":
				name, _ := obj["name"].(string)
				var elems []string
				if el, ok := obj["elem"].([]any); ok && !strings.HasPrefix(name, prefixAffinity) {
					for _, e := range el {
						b, _ := json.Marshal(e)
						elems = append(elems, string(b))
					}
				}
				sort.Strings(elems)
				delete(obj, "elem")
				b, _ := json.Marshal(obj)
				lines = append(lines, kind+" "+string(b)+" "+strings.Join(elems, ","))
			}
		}
	}
	for chain, rs := range rules {
		lines = append(lines, "rules of "+chain+": "+strings.Join(rs, " ; "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// sameAsFresh waits until table holds what a new proxier (configured by
// tune, if not nil) would write from scratch for the same objects.
func (n *testNet) sameAsFresh(t *testing.T, cs kubernetes.Interface, table string, tune func(*Config)) {
	t.Helper()
	fresh := uniqueTable(t)
	_, stop := n.startProxier(cs, fresh, tune)
	stop()
	want, err := n.normalizedTable(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := cleanupIn(fresh, n.nodeNS); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got, err = n.normalizedTable(table); err == nil && got == want {
			return
		}
	}
	t.Fatalf("the table did not converge to a fresh one's (err %v)\n%s", err, lineDiff(got, want))
}

func lineDiff(got, want string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	for l := range g {
		if !w[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	for l := range w {
		if !g[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	return b.String()
}

func TestProxyRestartConverges(t *testing.T) {
	requiresNft(t)
	n := newTestNet(t)
	a, b, c, d := n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12), n.addPod("d", 13)
	for _, p := range []*testPod{a, b, c} {
		p.serve(t, 8080)
	}
	keep := newService("keep", "10.96.0.80", 80, 8080)
	gone := newService("gone", "10.96.0.81", 80, 8080, withAffinity, withNodePort(30081))
	cs := newClient(keep, gone)
	putSlice(t, cs, newSlice(keep, 8080, ep{ip: a.ip.String()}))
	putSlice(t, cs, newSlice(gone, 8080, ep{ip: b.ip.String()}))
	table := uniqueTable(t)
	_, stop := n.startProxier(cs, table, nil)
	wantPods(t, n, d.ns, "10.96.0.80:80", "a")
	wantPods(t, n, d.ns, "10.96.0.81:80", "b")
	stop()

	// The rules outlive the proxier: Services keep working meanwhile.
	wantPods(t, n, d.ns, "10.96.0.80:80", "a")

	// Changes while no proxier runs.
	if err := cs.CoreV1().Services("default").Delete(bg, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.DiscoveryV1().EndpointSlices("default").Delete(bg, "gone-abcde", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	putSlice(t, cs, newSlice(keep, 8080, ep{ip: b.ip.String()}, ep{ip: c.ip.String()}))
	added := newService("new", "10.96.0.82", 80, 8080)
	if _, err := cs.CoreV1().Services("default").Create(bg, added, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	putSlice(t, cs, newSlice(added, 8080, ep{ip: a.ip.String()}))

	// A new proxier on the same table takes it over.
	n.startProxier(cs, table, nil)
	wantPods(t, n, d.ns, "10.96.0.80:80", "b", "c")
	wantPods(t, n, d.ns, "10.96.0.82:80", "a")
	n.sameAsFresh(t, cs, table, nil)
	if s := n.nft("list", "table", "ip", table); strings.Contains(s, "default/gone") {
		t.Errorf("the deleted service's rules are left:\n%s", s)
	}
}

func TestProxyChurnConverges(t *testing.T) {
	requiresNft(t)
	n := newTestNet(t)
	pods := []*testPod{n.addPod("a", 10), n.addPod("b", 11), n.addPod("c", 12), n.addPod("d", 13)}
	client := n.addPod("e", 14)
	for _, p := range pods {
		p.serve(t, 8080)
	}
	s1 := newService("s1", "10.96.0.90", 80, 8080, withAffinity)
	s2 := newService("s2", "10.96.0.91", 80, 8080, withNodePort(30091), withExternalLocal)
	s3 := newService("s3", "10.96.0.92", 53, 8080, withUDP)
	cs := newClient(s1, s2, s3)
	table := uniqueTable(t)
	n.startProxier(cs, table, nil)

	rnd := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		for _, svc := range []*corev1.Service{s1, s2, s3} {
			var eps []ep
			for _, p := range pods {
				if rnd.IntN(2) == 0 {
					continue
				}
				e := ep{ip: p.ip.String(), notReady: rnd.IntN(4) == 0, terminating: rnd.IntN(6) == 0}
				if rnd.IntN(3) == 0 {
					e.node = "node-b"
				}
				eps = append(eps, e)
			}
			putSlice(t, cs, newSlice(svc, 8080, eps...))
		}
		time.Sleep(time.Duration(rnd.IntN(30)) * time.Millisecond)
	}
	putSlice(t, cs, newSlice(s1, 8080, ep{ip: pods[0].ip.String()}, ep{ip: pods[2].ip.String()}))
	putSlice(t, cs, newSlice(s2, 8080, ep{ip: pods[1].ip.String()}, ep{ip: pods[3].ip.String(), node: "node-b"}))
	putSlice(t, cs, newSlice(s3, 8080, ep{ip: pods[3].ip.String()}))

	wantPods(t, n, client.ns, "10.96.0.91:80", "b", "d")
	wantPods(t, n, n.ext, testNodeIP+":30091", "b")
	eventually(t, n, "s1 answered by a or c only", func() error {
		seen, _, err := answers(client.ns, "10.96.0.90:80", 10)
		if err != nil {
			return err
		}
		if len(seen) != 1 || (seen["a"] == 0 && seen["c"] == 0) {
			return fmt.Errorf("answered by %v", seen)
		}
		return nil
	})
	eventually(t, n, "s3 answered by d", func() error {
		ans, err := askUDP(client.ns, "10.96.0.92:53", 0, time.Second)
		if err == nil && ans.pod != "d" {
			err = fmt.Errorf("answered by %s", ans.pod)
		}
		return err
	})
	n.sameAsFresh(t, cs, table, nil)
}

func TestProxyCleanup(t *testing.T) {
	requiresNft(t)
	n := newTestNet(t)
	a := n.addPod("a", 10)
	svc := newService("web", "10.96.0.100", 80, 8080, withAffinity, withNodePort(30100))
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 8080, ep{ip: a.ip.String()}))
	table := uniqueTable(t)
	_, stop := n.startProxier(cs, table, nil)
	stop()
	if s := n.nft("list", "tables"); !strings.Contains(s, "table ip "+table) {
		t.Fatalf("no table to clean up: %q", s)
	}
	for range 2 { // a second time finds nothing to do
		if err := cleanupIn(table, n.nodeNS); err != nil {
			t.Fatal(err)
		}
		if s := n.nft("list", "tables"); s != "" {
			t.Fatalf("left after Cleanup: %q", s)
		}
	}
	// In the machine's own namespace, a table that is not there.
	if err := Cleanup(uniqueTable(t)); err != nil {
		t.Fatal(err)
	}
}
