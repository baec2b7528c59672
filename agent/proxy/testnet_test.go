package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"labctl/networking"
)

// The integration tests build a node in private network namespaces, so
// that nothing of the machine's own network is touched:
//
//	ext (192.168.77.2) ── veth ── node (192.168.77.1, the node IP)
//	                                 └─ br0 10.244.0.1/24, bridge netfilter on
//	                                      ├─ veth ── pod a (10.244.0.x)
//	                                      └─ veth ── pod b ...
//
// "ext" is a machine outside the cluster (the node's default route points
// at it, so that the node's own traffic to ClusterIPs has a route). Pods
// run a small Go server inside their namespace; clients dial from a pod,
// from the node or from ext. The Proxier programs its table inside the
// node's namespace.

const (
	testClusterCIDR = "10.244.0.0/16"
	testGateway     = "10.244.0.1"
	testNodeIP      = "192.168.77.1"
	testExtIP       = "192.168.77.2"
	testNodeName    = "node-a"
)

func requiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and nftables")
	}
}

// requiresNft skips a test that reads the table with the nft command
// (the proxy itself does not need it).
func requiresNft(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command (Debian's nftables package) to read the table")
	}
}

// run runs a command (ip, to build the namespaces) and fails the test
// with its output when it fails.
func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type testNet struct {
	t      testing.TB
	id     string // prefix of the namespace names, unique per test
	node   string // the node's namespace
	nodeNS netns.NsHandle
	ext    string // the outside machine's namespace
}

type testPod struct {
	name string
	ns   string // namespace name, under /run/netns
	ip   netip.Addr
}

func nsPath(name string) string { return filepath.Join("/run/netns", name) }

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	requiresRoot(t)
	n := &testNet{t: t, id: fmt.Sprintf("lkp%05x", rand.IntN(1<<20))}
	n.node, n.ext = n.id+"-node", n.id+"-ext"
	n.addNS(n.node)
	n.addNS(n.ext)
	h, err := netns.GetFromName(n.node)
	if err != nil {
		t.Fatal(err)
	}
	n.nodeNS = h
	t.Cleanup(func() { h.Close() })
	node := []string{"ip", "-n", n.node}
	run(t, append(node, "link", "add", "br0", "type", "bridge")...)
	run(t, append(node, "addr", "add", testGateway+"/24", "dev", "br0")...)
	run(t, append(node, "link", "set", "br0", "up")...)
	err = networking.InNetNS(nsPath(n.node), func() error {
		return errors.Join(
			os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644),
			os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1\n"), 0o644))
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, append(node, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", n.ext)...)
	run(t, append(node, "addr", "add", testNodeIP+"/24", "dev", "ext0")...)
	run(t, append(node, "link", "set", "ext0", "up")...)
	run(t, "ip", "-n", n.ext, "addr", "add", testExtIP+"/24", "dev", "eth0")
	run(t, "ip", "-n", n.ext, "link", "set", "eth0", "up")
	run(t, "ip", "-n", n.ext, "route", "add", "default", "via", testNodeIP)
	run(t, append(node, "route", "add", "default", "via", testExtIP)...)
	return n
}

func (n *testNet) addNS(name string) {
	run(n.t, "ip", "netns", "add", name)
	n.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(n.t, "ip", "-n", name, "link", "set", "lo", "up")
}

// addPod makes a pod namespace on the bridge with address 10.244.0.<host>.
func (n *testNet) addPod(name string, host int) *testPod {
	n.t.Helper()
	p := &testPod{name: name, ns: n.id + "-" + name, ip: netip.AddrFrom4([4]byte{10, 244, 0, byte(host)})}
	n.addNS(p.ns)
	node := []string{"ip", "-n", n.node}
	veth := "v-" + name
	run(n.t, append(node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns)...)
	run(n.t, append(node, "link", "set", veth, "master", "br0", "up")...)
	// As the CNI bridge plugin's hairpinMode: a pod's traffic to itself
	// through a service goes back out of the port it came in by.
	run(n.t, append(node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")...)
	run(n.t, "ip", "-n", p.ns, "addr", "add", p.ip.String()+"/24", "dev", "eth0")
	run(n.t, "ip", "-n", p.ns, "link", "set", "eth0", "up")
	run(n.t, "ip", "-n", p.ns, "route", "add", "default", "via", testGateway)
	return p
}

// serve runs TCP and UDP servers on port in the pod's namespace; each
// answers "<pod> <client address>".
func (p *testPod) serve(t testing.TB, port int) {
	t.Helper()
	var l net.Listener
	var pc net.PacketConn
	err := networking.InNetNS(nsPath(p.ns), func() error {
		var err error
		if l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); pc.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", p.name, c.RemoteAddr())
			c.Close()
		}
	})
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %s", p.name, from), from)
		}
	})
}

// An answer is who answered a request, and whom it saw asking.
type answer struct {
	pod  string
	from netip.Addr
}

func parseAnswer(line string) (answer, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return answer{}, fmt.Errorf("unexpected answer %q", line)
	}
	ap, err := netip.ParseAddrPort(f[1])
	if err != nil {
		return answer{}, err
	}
	return answer{pod: f[0], from: ap.Addr()}, nil
}

// dialTCP connects from namespace ns to addr and reads the answer.
func dialTCP(ns, addr string, timeout time.Duration) (answer, error) {
	var line string
	err := networking.InNetNS(nsPath(ns), func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		return answer{}, err
	}
	return parseAnswer(strings.TrimSpace(line))
}

// askUDP sends a datagram from namespace ns, from local port lport (0:
// any), to addr and reads the answer.
func askUDP(ns, addr string, lport int, timeout time.Duration) (answer, error) {
	var line string
	err := networking.InNetNS(nsPath(ns), func() error {
		raddr, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		c, err := net.DialUDP("udp4", &net.UDPAddr{Port: lport}, raddr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("?")); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		line = string(buf[:n])
		return err
	})
	if err != nil {
		return answer{}, err
	}
	return parseAnswer(line)
}

// startProxier runs a Proxier for the node namespace until the test ends
// (or stop is called) and waits for its first sync.
func (n *testNet) startProxier(cs kubernetes.Interface, table string, tune func(*Config)) (p *Proxier, stop func()) {
	n.t.Helper()
	cfg := Config{Client: cs, NodeName: testNodeName, NodeIPs: []netip.Addr{netip.MustParseAddr(testNodeIP)},
		ClusterCIDR: netip.MustParsePrefix(testClusterCIDR), Table: table, MinSyncInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testLog{n.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if tune != nil {
		tune(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	p.ns = n.nodeNS
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				n.t.Errorf("Run: %v", err)
			}
		})
	}
	n.t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for p.syncs.Load() == 0 {
		if time.Now().After(deadline) {
			n.t.Fatal("the proxier did not sync within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p, stop
}

// testLog writes logs to the test's log.
type testLog struct{ t testing.TB }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// nft runs the nft command in the node's namespace, for failure reports.
func (n *testNet) nft(args ...string) string {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.node, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// uniqueTable names a table for one test.
func uniqueTable(t testing.TB) string {
	return fmt.Sprintf("lkp-test-%05x", rand.IntN(1<<20))
}

// Objects for the fake clientset.

type svcOpt func(*corev1.Service)

func newService(name, clusterIP string, port, targetPort int32, opts ...svcOpt) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []corev1.ServicePort{{Name: "p", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(targetPort)}},
		},
	}
	for _, o := range opts {
		o(svc)
	}
	return svc
}

func withUDP(svc *corev1.Service) { svc.Spec.Ports[0].Protocol = corev1.ProtocolUDP }

func withNodePort(np int32) svcOpt {
	return func(svc *corev1.Service) {
		svc.Spec.Type = corev1.ServiceTypeNodePort
		svc.Spec.Ports[0].NodePort = np
	}
}

func withLoadBalancer(np int32, ingress ...string) svcOpt {
	return func(svc *corev1.Service) {
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		svc.Spec.Ports[0].NodePort = np
		for _, ip := range ingress {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress,
				corev1.LoadBalancerIngress{IP: ip, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)})
		}
	}
}

func withAffinity(svc *corev1.Service) { svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }

func withExternalLocal(svc *corev1.Service) {
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

func withInternalLocal(svc *corev1.Service) {
	svc.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
}

// An ep is an endpoint for newSlice.
type ep struct {
	ip          string
	node        string
	notReady    bool
	terminating bool
}

func newSlice(svc *corev1.Service, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-abcde", Namespace: svc.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(svc.Spec.Ports[0].Name),
			Protocol: ptr.To(svc.Spec.Ports[0].Protocol), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		node := e.node
		if node == "" {
			node = testNodeName
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!e.notReady && !e.terminating),
				Serving: ptr.To(!e.notReady), Terminating: ptr.To(e.terminating)},
			NodeName: ptr.To(node),
		})
	}
	return s
}

func newClient(objs ...*corev1.Service) *fake.Clientset {
	cs := fake.NewClientset()
	for _, o := range objs {
		if _, err := cs.CoreV1().Services(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	return cs
}
