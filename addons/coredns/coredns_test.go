package coredns_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"labctl/addons/coredns"
	"labctl/internal/apitest"
)

// env is an API server, a fake upstream resolver and the configuration
// of a CoreDNS on loopback that forwards to it.
type env struct {
	cs  kubernetes.Interface
	cfg coredns.Config
	dns string // where CoreDNS answers
	up  *upstream
}

// endpointIP is what the kube-dns endpoints name in the tests.
const endpointIP = "192.0.2.53"

func newEnv(tb testing.TB, logLevel slog.Level) *env {
	tb.Helper()
	rc := apitest.Start(tb)
	cs := kubernetes.NewForConfigOrDie(rc)
	dir := tb.TempDir()
	kubeconfig := filepath.Join(dir, "addons.kubeconfig")
	writeFile(tb, kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q}}]
users: [{name: test, user: {}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
`, rc.Host))
	up := startUpstream(tb)
	resolvConf := filepath.Join(dir, "resolv.conf")
	writeFile(tb, resolvConf, "# the test's upstream\nnameserver "+up.ip.String()+"\noptions ndots:5\n")
	port := freeDNSPort(tb)
	cfg := coredns.Config{
		Kubeconfig: kubeconfig, Client: cs,
		ListenIP: netip.MustParseAddr("127.0.0.1"), ClusterDNS: netip.MustParseAddr("10.43.0.10"),
		ResolvConf: resolvConf, Logger: testLogger(tb, logLevel),
	}
	cfg = coredns.WithPorts(cfg, port, 0, 0, freeTCPPort(tb))
	// Never systemd's real list: the test's resolv.conf names no stub, and
	// a test that wants one gives its own.
	cfg = coredns.WithResolvedConf(cfg, filepath.Join(dir, "no-resolved.conf"))
	// A documentation address (RFC 5737): only written to the API, never
	// sent anything.
	cfg = coredns.WithEndpointIP(cfg, netip.MustParseAddr(endpointIP))
	return &env{cs: cs, cfg: cfg, dns: fmt.Sprintf("127.0.0.1:%d", port), up: up}
}

// start runs CoreDNS until the test ends and waits until it answers.
func (e *env) start(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- coredns.Run(ctx, e.cfg) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			tb.Error("Run did not return within 20s of its context ending")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			tb.Fatalf("Run returned before serving: %v", err)
		default:
		}
		if _, err := exchange(e.dns, "cluster.local.", dns.TypeSOA, 100*time.Millisecond); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("CoreDNS did not answer within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exchange(addr, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: timeout}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// await asks until ok holds for the answer, for up to 10 s.
func (e *env) await(tb testing.TB, name string, qtype uint16, what string, ok func(*dns.Msg) bool) *dns.Msg {
	tb.Helper()
	var last *dns.Msg
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		last, lastErr = exchange(e.dns, name, qtype, time.Second)
		if lastErr == nil && ok(last) {
			return last
		}
	}
	tb.Fatalf("%s %s: want %s; last answer %v, error %v", name, dns.TypeToString[qtype], what, last, lastErr)
	return nil
}

func addrsOf(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

func hasAddrs(want ...string) func(*dns.Msg) bool {
	slices.Sort(want)
	return func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && slices.Equal(addrsOf(m), want) }
}

func rcode(code int) func(*dns.Msg) bool {
	return func(m *dns.Msg) bool { return m.Rcode == code }
}

// upstream is a DNS server on 127.x.y.z:53 (resolv.conf has no ports)
// that knows a few names and counts what it is asked.
type upstream struct {
	ip      netip.Addr
	mu      sync.Mutex
	queries map[string]int
}

var upstreamNames = map[string]string{
	"example.org.":            "192.0.2.7",
	"ext-target.example.org.": "192.0.2.8",
	"registry.lab.example.":   "192.0.2.50",
}

func startUpstream(tb testing.TB) *upstream {
	tb.Helper()
	u := &upstream{queries: map[string]int{}}
	var pc net.PacketConn
	for i := 0; ; i++ {
		u.ip = netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(1 + rand.IntN(250))})
		var err error
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(u.ip, 53).String())
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			tb.Skip("the fake upstream resolver needs port 53 (resolv.conf has no ports): run as root")
		}
		if i == 10 {
			tb.Fatal(err)
		}
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		u.mu.Lock()
		u.queries[q.Name]++
		u.mu.Unlock()
		if ip, ok := upstreamNames[q.Name]; ok {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
			}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return u
}

func (u *upstream) asked(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queries[dns.Fqdn(name)]
}

func freeTCPPort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeDNSPort returns a port free for both TCP and UDP on 127.0.0.1.
func freeDNSPort(tb testing.TB) int {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	tb.Fatal("no port free for both TCP and UDP")
	return 0
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// testLogger logs into the test's output until the test ends.
func testLogger(tb testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(func() { // registered first, so it runs last
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func create[T any](tb testing.TB, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) T {
	tb.Helper()
	out, err := fn(context.Background(), obj, metav1.CreateOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestClusterRecords(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	e.start(t)
	create(t, e.cs.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lab"}})
	web := create(t, e.cs.CoreV1().Services("lab").Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	})
	create(t, e.cs.CoreV1().Services("lab").Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}},
	})
	ready := func(ip, hostname string, ok bool) discoveryv1.Endpoint {
		ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ok)}}
		if hostname != "" {
			ep.Hostname = ptr.To(hostname)
		}
		return ep
	}
	create(t, e.cs.DiscoveryV1().EndpointSlices("lab").Create, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-x7k2p", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			ready("10.42.0.5", "db-0", true), ready("10.42.0.6", "db-1", true), ready("10.42.0.7", "db-2", false),
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)}},
	})
	create(t, e.cs.CoreV1().Services("lab").Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "ext-target.example.org"},
	})

	t.Run("service A", func(t *testing.T) {
		m := e.await(t, "web.lab.svc.cluster.local", dns.TypeA, web.Spec.ClusterIP, hasAddrs(web.Spec.ClusterIP))
		if ttl := m.Answer[0].Header().Ttl; ttl != 30 {
			t.Errorf("TTL %d, want the Corefile's 30", ttl)
		}
	})
	t.Run("service SRV", func(t *testing.T) {
		m := e.await(t, "_http._tcp.web.lab.svc.cluster.local", dns.TypeSRV, "one SRV", func(m *dns.Msg) bool { return len(m.Answer) == 1 })
		srv, ok := m.Answer[0].(*dns.SRV)
		if !ok || srv.Port != 80 || srv.Target != "web.lab.svc.cluster.local." {
			t.Errorf("SRV %v, want port 80 at web.lab.svc.cluster.local.", m.Answer[0])
		}
	})
	t.Run("reverse", func(t *testing.T) {
		rev, _ := dns.ReverseAddr(web.Spec.ClusterIP)
		m := e.await(t, rev, dns.TypePTR, "a PTR", func(m *dns.Msg) bool { return len(m.Answer) == 1 })
		if ptr, ok := m.Answer[0].(*dns.PTR); !ok || ptr.Ptr != "web.lab.svc.cluster.local." {
			t.Errorf("PTR %v, want web.lab.svc.cluster.local.", m.Answer[0])
		}
	})
	t.Run("headless: one A per ready endpoint", func(t *testing.T) {
		e.await(t, "db.lab.svc.cluster.local", dns.TypeA, "10.42.0.5 and 10.42.0.6", hasAddrs("10.42.0.5", "10.42.0.6"))
	})
	t.Run("headless: pod hostnames", func(t *testing.T) {
		e.await(t, "db-0.db.lab.svc.cluster.local", dns.TypeA, "10.42.0.5", hasAddrs("10.42.0.5"))
		e.await(t, "db-1.db.lab.svc.cluster.local", dns.TypeA, "10.42.0.6", hasAddrs("10.42.0.6"))
		e.await(t, "db-2.db.lab.svc.cluster.local", dns.TypeA, "NXDOMAIN for the endpoint not ready", rcode(dns.RcodeNameError))
	})
	t.Run("headless SRV", func(t *testing.T) {
		m := e.await(t, "_pg._tcp.db.lab.svc.cluster.local", dns.TypeSRV, "two SRV", func(m *dns.Msg) bool { return len(m.Answer) == 2 })
		var targets []string
		for _, rr := range m.Answer {
			srv := rr.(*dns.SRV)
			if srv.Port != 5432 {
				t.Errorf("SRV %v: want port 5432", srv)
			}
			targets = append(targets, srv.Target)
		}
		slices.Sort(targets)
		if want := []string{"db-0.db.lab.svc.cluster.local.", "db-1.db.lab.svc.cluster.local."}; !slices.Equal(targets, want) {
			t.Errorf("SRV targets %v, want %v", targets, want)
		}
	})
	t.Run("ExternalName", func(t *testing.T) {
		m := e.await(t, "ext.lab.svc.cluster.local", dns.TypeA, "a CNAME", func(m *dns.Msg) bool { return len(m.Answer) > 0 })
		cname, ok := m.Answer[0].(*dns.CNAME)
		if !ok || cname.Target != "ext-target.example.org." {
			t.Fatalf("answer %v, want a CNAME to ext-target.example.org.", m.Answer)
		}
		// The target, resolved upstream, follows.
		if got := addrsOf(m); !slices.Equal(got, []string{"192.0.2.8"}) {
			t.Errorf("addresses %v, want the upstream's 192.0.2.8", got)
		}
	})
	t.Run("pod A", func(t *testing.T) {
		e.await(t, "10-42-0-9.lab.pod.cluster.local", dns.TypeA, "10.42.0.9", hasAddrs("10.42.0.9"))
	})
	t.Run("NXDOMAIN", func(t *testing.T) {
		for _, name := range []string{"nope.lab.svc.cluster.local", "web.nons.svc.cluster.local", "a.b.c.d.cluster.local"} {
			e.await(t, name, dns.TypeA, "NXDOMAIN", rcode(dns.RcodeNameError))
		}
		if n := e.up.asked("nope.lab.svc.cluster.local"); n != 0 {
			t.Errorf("the cluster zone went upstream %d times", n)
		}
	})
	t.Run("forwarded", func(t *testing.T) {
		e.await(t, "example.org", dns.TypeA, "the upstream's 192.0.2.7", hasAddrs("192.0.2.7"))
		if n := e.up.asked("example.org"); n != 1 {
			t.Errorf("upstream asked %d times for example.org, want 1", n)
		}
		// Cached: asked again, the upstream is not.
		e.await(t, "example.org", dns.TypeA, "192.0.2.7", hasAddrs("192.0.2.7"))
		if n := e.up.asked("example.org"); n != 1 {
			t.Errorf("upstream asked %d times for example.org after a second query, want 1 (cache 30)", n)
		}
		e.await(t, "nope.example.org", dns.TypeA, "the upstream's NXDOMAIN", rcode(dns.RcodeNameError))
	})
	t.Run("TCP", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("web.lab.svc.cluster.local.", dns.TypeA)
		r, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, e.dns)
		if err != nil || !slices.Equal(addrsOf(r), []string{web.Spec.ClusterIP}) {
			t.Errorf("over TCP: %v, %v", r, err)
		}
	})
}

func TestKubeDNSService(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	e.start(t)
	ctx := context.Background()
	e.await(t, "kube-dns.kube-system.svc.cluster.local", dns.TypeA, "10.43.0.10", hasAddrs("10.43.0.10"))
	// The Service comes first, then the Endpoints and the slice.
	awaitCond(t, "kube-dns endpoints and slice", func() bool {
		_, err1 := e.cs.CoreV1().Endpoints("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		_, err2 := e.cs.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		return err1 == nil && err2 == nil
	})

	svc, err := e.cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.43.0.10" || svc.Spec.Selector != nil || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("service spec %+v: want cluster IP 10.43.0.10, no selector", svc.Spec)
	}
	for k, v := range map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"} {
		if svc.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, svc.Labels[k], v)
		}
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s/%d/%s", p.Name, p.Port, p.Protocol))
	}
	if want := []string{"dns/53/UDP", "dns-tcp/53/TCP", "metrics/9153/TCP"}; !slices.Equal(ports, want) {
		t.Errorf("ports %v, want %v", ports, want)
	}
	dnsPort := int32(mustPort(t, e.dns))
	eps, err := e.cs.CoreV1().Endpoints("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps.Subsets) != 1 || len(eps.Subsets[0].Addresses) != 1 || eps.Subsets[0].Addresses[0].IP != endpointIP ||
		eps.Subsets[0].Ports[0].Port != dnsPort {
		t.Errorf("endpoints %+v: want %s port %d", eps.Subsets, endpointIP, dnsPort)
	}
	slice, err := e.cs.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slice.Labels[discoveryv1.LabelServiceName] != "kube-dns" || slice.Labels[discoveryv1.LabelManagedBy] != "labctl" {
		t.Errorf("slice labels %v", slice.Labels)
	}
	if len(slice.Endpoints) != 1 || !slices.Equal(slice.Endpoints[0].Addresses, []string{endpointIP}) ||
		!ptr.Deref(slice.Endpoints[0].Conditions.Ready, false) || len(slice.Ports) != 3 || *slice.Ports[0].Port != dnsPort {
		t.Errorf("slice %+v %+v: want %s ready, port %d", slice.Endpoints, slice.Ports, endpointIP, dnsPort)
	}

	// Nothing more is written once they are right.
	time.Sleep(300 * time.Millisecond)
	rv := resourceVersions(t, e.cs)
	time.Sleep(700 * time.Millisecond)
	if again := resourceVersions(t, e.cs); !slices.Equal(rv, again) {
		t.Errorf("the objects keep changing: resource versions %v, then %v", rv, again)
	}

	// Deleted or changed, they come back.
	if err := e.cs.CoreV1().Services("kube-system").Delete(ctx, "kube-dns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eps.Subsets[0].Addresses[0].IP = "10.9.9.9"
	if _, err := e.cs.CoreV1().Endpoints("kube-system").Update(ctx, eps, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.cs.DiscoveryV1().EndpointSlices("kube-system").Delete(ctx, "kube-dns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, "kube-dns service, endpoints and slice restored", func() bool {
		s, err1 := e.cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		ep, err2 := e.cs.CoreV1().Endpoints("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		_, err3 := e.cs.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		return err1 == nil && err2 == nil && err3 == nil && s.Spec.ClusterIP == "10.43.0.10" &&
			ep.Subsets[0].Addresses[0].IP == endpointIP
	})
}

func TestRemove(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- coredns.Run(ctx, e.cfg) }()
	awaitCond(t, "the kube-dns slice", func() bool {
		_, err := e.cs.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if err := coredns.Remove(bg, e.cs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Services("kube-system").Get(bg, "kube-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("service after Remove: %v", err)
	}
	if _, err := e.cs.CoreV1().Endpoints("kube-system").Get(bg, "kube-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("endpoints after Remove: %v", err)
	}
	if _, err := e.cs.DiscoveryV1().EndpointSlices("kube-system").Get(bg, "kube-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("slice after Remove: %v", err)
	}

	// Another CoreDNS's kube-dns (upstream's manifest) stays.
	create(t, e.cs.CoreV1().Services("kube-system").Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.10", Selector: map[string]string{"k8s-app": "kube-dns"},
			Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
	})
	if err := coredns.Remove(bg, e.cs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Services("kube-system").Get(bg, "kube-dns", metav1.GetOptions{}); err != nil {
		t.Errorf("Remove deleted a kube-dns service it did not make: %v", err)
	}
}

func resourceVersions(t *testing.T, cs kubernetes.Interface) []string {
	t.Helper()
	ctx := context.Background()
	s, err1 := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	ep, err2 := cs.CoreV1().Endpoints("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	sl, err3 := cs.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	return []string{s.ResourceVersion, ep.ResourceVersion, sl.ResourceVersion}
}

func mustPort(t *testing.T, addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return int(ap.Port())
}

func awaitCond(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("no %s within 10s", what)
}

// userCorefile is a Corefile as a user writes it for a CoreDNS pod:
// no bind, no kubeconfig, forward to /etc/resolv.conf.
func userCorefile(port int, extra string) string {
	return fmt.Sprintf(`.:%d {
    errors
    hosts {
        192.0.2.99 registry.lab.example
        fallthrough
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
%s}
`, port, extra)
}

func TestConfigMapOverride(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	e.start(t)
	ctx := context.Background()
	port := mustPort(t, e.dns)
	e.await(t, "kube-dns.kube-system.svc.cluster.local", dns.TypeA, "10.43.0.10 with TTL 30", func(m *dns.Msg) bool {
		return len(m.Answer) == 1 && m.Answer[0].Header().Ttl == 30
	})
	e.await(t, "registry.lab.example", dns.TypeA, "the upstream's 192.0.2.50", hasAddrs("192.0.2.50"))

	cm := create(t, e.cs.CoreV1().ConfigMaps("kube-system").Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns"},
		Data:       map[string]string{"Corefile": userCorefile(port, "")},
	})
	// The hosts block answers (no cache in front of it in the old
	// Corefile's place: the restart starts an empty cache), and the
	// kubernetes block's ttl is 5.
	e.await(t, "registry.lab.example", dns.TypeA, "the hosts block's 192.0.2.99", hasAddrs("192.0.2.99"))
	e.await(t, "kube-dns.kube-system.svc.cluster.local", dns.TypeA, "TTL 5", func(m *dns.Msg) bool {
		return len(m.Answer) == 1 && m.Answer[0].Header().Ttl == 5
	})
	awaitEvent(t, e.cs, "Normal", "CorefileLoaded", "resourceVersion "+cm.ResourceVersion)

	// A Corefile that does not parse: the running one stays.
	cm.Data["Corefile"] = userCorefile(port, "    nosuchplugin\n")
	cm, err := e.cs.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, e.cs, "Warning", "CorefileRejected", "nosuchplugin")
	e.await(t, "registry.lab.example", dns.TypeA, "still 192.0.2.99", hasAddrs("192.0.2.99"))

	// One that parses but cannot start (health on a port in use): the
	// restart fails and rolls back.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cm.Data["Corefile"] = userCorefile(port, "    health "+busy.Addr().String()+"\n")
	if cm, err = e.cs.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, e.cs, "Warning", "CorefileRejected", busy.Addr().String())
	e.await(t, "registry.lab.example", dns.TypeA, "still 192.0.2.99", hasAddrs("192.0.2.99"))
	e.await(t, "kube-dns.kube-system.svc.cluster.local", dns.TypeA, "still TTL 5", func(m *dns.Msg) bool {
		return len(m.Answer) == 1 && m.Answer[0].Header().Ttl == 5
	})

	// Deleted: the default Corefile again.
	if err := e.cs.CoreV1().ConfigMaps("kube-system").Delete(ctx, "coredns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.await(t, "registry.lab.example", dns.TypeA, "the upstream's 192.0.2.50 again", hasAddrs("192.0.2.50"))
	e.await(t, "kube-dns.kube-system.svc.cluster.local", dns.TypeA, "TTL 30 again", func(m *dns.Msg) bool {
		return len(m.Answer) == 1 && m.Answer[0].Header().Ttl == 30
	})
}

func TestConfigMapAtStart(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	port := mustPort(t, e.dns)
	create(t, e.cs.CoreV1().ConfigMaps("kube-system").Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns"},
		Data:       map[string]string{"Corefile": userCorefile(port, "")},
	})
	e.start(t)
	e.await(t, "registry.lab.example", dns.TypeA, "the hosts block's 192.0.2.99", hasAddrs("192.0.2.99"))
}

func TestBadConfigMapAtStart(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	port := mustPort(t, e.dns)
	create(t, e.cs.CoreV1().ConfigMaps("kube-system").Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns"},
		Data:       map[string]string{"Corefile": userCorefile(port, "    forward . 10.43.0.10\n")},
	})
	e.start(t)
	// The default Corefile runs, and the event says why not the ConfigMap's.
	e.await(t, "registry.lab.example", dns.TypeA, "the upstream's 192.0.2.50", hasAddrs("192.0.2.50"))
	awaitEvent(t, e.cs, "Warning", "CorefileRejected", "forward to 10.43.0.10 sends queries back to this CoreDNS")
}

func TestSystemdResolvedStub(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	dir := t.TempDir()
	stub, resolved := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "resolved.conf")
	writeFile(t, stub, "nameserver 127.0.0.53\noptions edns0 trust-ad\n")
	writeFile(t, resolved, "nameserver "+e.up.ip.String()+"\n")
	e.cfg.ResolvConf = stub
	e.cfg = coredns.WithResolvedConf(e.cfg, resolved)
	e.start(t)
	e.await(t, "example.org", dns.TypeA, "192.0.2.7 from systemd-resolved's upstream", hasAddrs("192.0.2.7"))
	if e.up.asked("example.org") == 0 {
		t.Error("the upstream named in systemd-resolved's file was not asked")
	}
}

func TestRunChecks(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	bad := e.cfg
	bad.ListenIP = netip.Addr{}
	bad.Kubeconfig = ""
	err := coredns.Run(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "no kubeconfig") || !strings.Contains(err.Error(), "give the node IP") {
		t.Errorf("Run with no kubeconfig and no listen address: %v", err)
	}
	e.start(t)
	if err := coredns.Run(context.Background(), e.cfg); !errors.Is(err, coredns.ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

func awaitEvent(t *testing.T, cs kubernetes.Interface, typ, reason, msgPart string) {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		evs, err := cs.CoreV1().Events("kube-system").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "ConfigMap" && ev.InvolvedObject.Name == "coredns" {
				seen = append(seen, ev.Type+" "+ev.Reason+": "+ev.Message)
				if ev.Type == typ && ev.Reason == reason && strings.Contains(ev.Message, msgPart) {
					return
				}
			}
		}
	}
	t.Fatalf("no %s event %s mentioning %q on ConfigMap kube-system/coredns; saw %q", typ, reason, msgPart, seen)
}

// TestSideListeners: health, readiness and metrics answer on their ports,
// from a second Run in the process too, and each Run leaves its ports
// free when it returns.
func TestSideListeners(t *testing.T) {
	e := newEnv(t, slog.LevelInfo)
	health, ready, metrics := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	e.cfg = coredns.WithPorts(e.cfg, mustPort(t, e.dns), health, ready, metrics)
	get := func(port int, path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for run := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- coredns.Run(ctx, e.cfg) }()
		awaitCond(t, fmt.Sprintf("run %d: /ready answering 200 OK", run), func() bool {
			code, body := get(ready, "/ready")
			return code == http.StatusOK && body == "OK"
		})
		if code, body := get(health, "/health"); code != http.StatusOK || body != "OK" {
			t.Errorf("run %d: /health: %d %q", run, code, body)
		}
		if code, body := get(metrics, "/metrics"); code != http.StatusOK || !strings.Contains(body, "coredns_build_info") {
			t.Errorf("run %d: /metrics: %d %.200q", run, code, body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for name, port := range map[string]int{"dns": mustPort(t, e.dns), "health": health, "ready": ready, "metrics": metrics} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Errorf("run %d: %s port %d still taken after Run returned: %v", run, name, port, err)
				continue
			}
			l.Close()
		}
	}
}
