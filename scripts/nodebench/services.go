package main

// The services steps (-steps services) measure what issue 6 asks of
// Services and cluster DNS, from pods, on a node of their own:
//
//  1. launch to the first cluster name resolving in a pod: a static pod,
//     written into <data-dir>/agent/pod-manifests before the launch, runs
//     busybox nslookup kubernetes.default.svc.cluster.local in a loop
//     until it answers, then prints a line; the container's log (CRI
//     format) carries that line's time;
//  2. Service creation to the first answered request: with web pods
//     Ready, Services are created one after another, each with a fixed
//     ClusterIP that a client in a pod already requests again and again;
//     timed from the Create call's return to the first HTTP answer;
//  3. endpoint Ready to the first answered request: a Service whose only
//     pod is not Ready, then that pod made Ready (its readiness probe
//     finds a file nodebench writes); timed from the watch showing the
//     pod Ready, and from the watch showing its EndpointSlice's endpoint
//     ready, to the first HTTP answer through the ClusterIP;
//  4. DNS queries/s and latency from a pod to the cluster DNS address
//     (the kube-dns ClusterIP, which the proxy sends to the CoreDNS in the
//     server) for a Service's name, with 1 and with 8 clients; and the
//     same from the node straight to CoreDNS's address, to tell what the
//     pod's path costs.
//
// The requests of 2, 3 and 4 come from a pod: nodebench makes their
// sockets inside the client pod's network namespace (podNet), so that
// they take a pod's path (its veth, the bridge, the proxy's rules), and
// times them itself, to the millisecond and without a process per try.
// In 2 the client pod's own busybox wget loop is timed as well, from its
// log, as a check.
//
// A pod's request to a service address that no rule translates yet would
// leave the machine by its default route. nodebench's own nftables table
// (guardTable) rejects such packets on the node instead, so the tries
// before a rule exists fail at once and nothing leaves the machine.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

const (
	// serviceCIDR and clusterDNS are labctl server's defaults
	// (--service-cidr, --cluster-dns), which nodebench leaves as they are.
	serviceCIDR = "10.43.0.0/16"
	clusterDNS  = "10.43.0.10"
	// guardTable is nodebench's nftables table (family ip) that rejects
	// the pods' packets to service addresses no rule translated.
	guardTable = "labctl-nodebench"

	// dnsProbe is the static pod of step 1, whose mirror pod is
	// <dnsProbe>-<node>; it prints probeResolved once a name resolved.
	dnsProbe      = "nodebench-dns"
	probeStarted  = "started"
	probeResolved = "resolved"
	// firstName is the name it looks up.
	firstName = "kubernetes.default.svc.cluster.local"

	// webApp are the web pods of step 2, clientPod the pod whose network
	// namespace the requests come from, readyApp the pods of step 3.
	webApp    = "nodebench-web"
	clientPod = "nodebench-client"
	readyApp  = "nodebench-ready"

	// probeEvery is the pause between two failed requests of a prober.
	probeEvery = 5 * time.Millisecond
	// dnsWarmup is how long the DNS clients ask before their answers
	// count.
	dnsWarmup = 500 * time.Millisecond
)

// createIP and readyIP are the fixed ClusterIPs of step 2's and step 3's
// i-th Service (-services is at most 200).
func createIP(i int) string { return fmt.Sprintf("10.43.250.%d", 10+i) }
func readyIP(i int) string  { return fmt.Sprintf("10.43.251.%d", 10+i) }

// servicesReport is what the services steps measure; durations are in
// seconds.
type servicesReport struct {
	// LoadAverage is the machine's 1-minute load average when the
	// services steps start.
	LoadAverage       float64 `json:"load_average"`
	LaunchToReadyz    float64 `json:"launch_to_readyz_s"`
	LaunchToNodeReady float64 `json:"launch_to_node_ready_s"`

	// 1. From the launch: the static pod's first line, and its line once
	// the name resolved, by the uptime the pod read (to 10 ms), and by
	// the log's time of the latter; FailedLookups is how many tries failed
	// before.
	LaunchToProbeStarted float64 `json:"launch_to_dns_pod_started_s"`
	LaunchToFirstName    float64 `json:"launch_to_first_name_s"`
	LaunchToFirstNameLog float64 `json:"launch_to_first_name_log_s"`
	FailedLookups        int     `json:"failed_lookups"`

	// 2. Service Create call's return to the first answer: nodebench's
	// requests from the client pod's network namespace, and the client
	// pod's own wget loop (the time of its log line).
	CreateToAnswer     latency `json:"service_create_to_answer"`
	CreateToAnswerWget latency `json:"service_create_to_answer_wget"`
	CreateMachineBusy  float64 `json:"service_create_machine_busy_pct"`

	// 3. To the first answer through the ClusterIP, from the pod watch
	// showing the pod Ready, and from the EndpointSlice watch showing its
	// endpoint ready; FileToReady is from nodebench writing the file the
	// readiness probe looks for to the pod watch showing it Ready (the
	// probe's period, 1 s, is most of it).
	ReadyToAnswer    latency `json:"pod_ready_to_answer"`
	EndpointToAnswer latency `json:"endpoint_ready_to_answer"`
	FileToReady      latency `json:"file_to_pod_ready"`
	ReadyMachineBusy float64 `json:"ready_machine_busy_pct"`

	// 4. DNS from the client pod to the cluster DNS address, 1 client
	// then 8; and, for comparison, from the node itself straight to
	// CoreDNS's address (no pod network, no proxy).
	DNS     []dnsLoad `json:"dns_from_pod"`
	DNSNode []dnsLoad `json:"dns_from_node"`
}

// latency sums up a series of durations.
type latency struct {
	Count int       `json:"count"`
	Min   float64   `json:"min_s"`
	P50   float64   `json:"p50_s"`
	Max   float64   `json:"max_s"`
	All   []float64 `json:"all_s"`
}

func newLatency(ds []time.Duration) latency {
	l := latency{Count: len(ds), Min: pct(ds, 0), P50: pct(ds, 50), Max: pct(ds, 100)}
	for _, d := range ds {
		l.All = append(l.All, d.Seconds())
	}
	return l
}

func (l latency) String() string {
	return fmt.Sprintf("p50 %.3f s, max %.3f s (min %.3f s, %d)", l.P50, l.Max, l.Min, l.Count)
}

// dnsLoad is one run of step 4.
type dnsLoad struct {
	Clients int     `json:"clients"`
	Seconds float64 `json:"seconds"`
	Queries int     `json:"queries"`
	QPS     float64 `json:"queries_per_s"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	// Errors are queries unanswered within 1 s or answered wrong.
	Errors      int     `json:"errors"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

// runServiceSteps runs the services steps on a node of their own in dir.
func runServiceSteps(ctx context.Context, o options, labctl, dir, resolvConf string) (_ *servicesReport, err error) {
	sr := &servicesReport{LoadAverage: loadAverage()}
	removeGuard, err := addGuard()
	if err != nil {
		return nil, fmt.Errorf("nodebench's nftables table ip %s: %w", guardTable, err)
	}
	defer func() {
		if gerr := removeGuard(); gerr != nil {
			err = errors.Join(err, fmt.Errorf("removing nodebench's nftables table ip %s: %w", guardTable, gerr))
		}
	}()
	n, err := newNode(dir, resolvConf)
	if err != nil {
		return nil, err
	}
	if err := n.writeDNSProbe(); err != nil {
		return nil, err
	}
	launched, err := n.start(labctl)
	if err != nil {
		return nil, err
	}
	defer n.finish(o, stepsServices, &err)
	if sr.LaunchToReadyz, sr.LaunchToNodeReady, err = n.waitReady(ctx, launched); err != nil {
		return nil, err
	}

	// 1. Launch to the first cluster name in a pod.
	if err := n.firstName(ctx, launched, sr); err != nil {
		return nil, err
	}

	// 2. Service creation to the first answer.
	client, err := n.startWebAndClient(ctx, o.services)
	if err != nil {
		return nil, err
	}
	busy := machineBusy()
	if sr.CreateToAnswer, sr.CreateToAnswerWget, err = n.createToAnswer(ctx, client, o.services); err != nil {
		return nil, err
	}
	sr.CreateMachineBusy = busy()
	progress("Service creation to the first answer: %s; the client pod's wget: %s", sr.CreateToAnswer, sr.CreateToAnswerWget)

	// 3. Endpoint Ready to the first answer.
	busy = machineBusy()
	if sr.ReadyToAnswer, sr.EndpointToAnswer, sr.FileToReady, err = n.readyToAnswer(ctx, client, o.services); err != nil {
		return nil, err
	}
	sr.ReadyMachineBusy = busy()
	progress("pod Ready to the first answer: %s; endpoint ready to the first answer: %s", sr.ReadyToAnswer, sr.EndpointToAnswer)

	// 4. DNS from the pod, then from the node.
	nodeIP, err := n.nodeIP(ctx)
	if err != nil {
		return nil, err
	}
	d := time.Duration(o.dnsSeconds * float64(time.Second))
	for _, from := range []struct {
		what, server string
		dial         dialFunc
		out          *[]dnsLoad
	}{
		{"the pod, to the cluster DNS address", net.JoinHostPort(clusterDNS, "53"), client.dial, &sr.DNS},
		{"the node, to CoreDNS's address", net.JoinHostPort(nodeIP, "53"), (&net.Dialer{}).DialContext, &sr.DNSNode},
	} {
		for _, clients := range []int{1, 8} {
			progress("DNS from %s %s: %s, %d clients for %v", from.what, from.server, dnsName, clients, d)
			busy := machineBusy()
			l, err := dnsLoadFrom(ctx, from.dial, from.server, clients, d)
			if err != nil {
				return nil, err
			}
			l.MachineBusy = busy()
			progress("  %.0f queries/s, p50 %.3f ms, p99 %.3f ms, max %.1f ms, %d errors", l.QPS, l.P50, l.P99, l.Max, l.Errors)
			*from.out = append(*from.out, l)
		}
	}
	return sr, nil
}

// dnsName is the name step 4 asks for: step 2's first Service, whose
// address is createIP(0).
const dnsName = "nodebench-svc-0.default.svc.cluster.local."

// nodeIP is the node's InternalIP, where CoreDNS listens.
func (n *node) nodeIP(ctx context.Context) (string, error) {
	nd, err := n.cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, a := range nd.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address, nil
		}
	}
	return "", fmt.Errorf("node %s has no InternalIP", nodeName)
}

// addGuard makes nodebench's nftables table: in the forward hook, after
// the proxy's DNAT, a packet still addressed to the service range reached
// no Service, and is rejected rather than routed off the machine. TCP
// gets a reset: the kernel sends the ICMP errors of a reject to each host
// at most once a second after a burst of six (net.ipv4.icmp_ratelimit),
// and a connect whose SYN is dropped without one waits a second for its
// retry, which would make every try last a second. Other packets (the
// pods' DNS queries) get ICMP port unreachable. The function it returns
// removes the table.
func addGuard() (func() error, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	_, cidr, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: guardTable}
	// A table left by a run that was killed goes first.
	c.DelTable(t)
	c.Flush()
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	// Before the proxy's filter chains (-110), which drop packets to
	// unallocated service addresses: a drop would make each try wait out
	// its timeout. Still after DNAT (prerouting), so translated packets
	// no longer match.
	guardPriority := nftables.ChainPriority(-120)
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &guardPriority, Policy: &accept})
	toServices := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}, // ip daddr
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: cidr.Mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: cidr.IP.To4()},
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(toServices, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	})})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(toServices, []expr.Any{
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}, // port unreachable
	})})
	if err := c.Flush(); err != nil {
		return nil, err
	}
	progress("nftables table ip %s: the pods' packets to %s that no Service rule translated are rejected", guardTable, serviceCIDR)
	return func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		c.DelTable(t)
		return c.Flush()
	}, nil
}

// writeDNSProbe writes step 1's static pod into the node's manifest
// folder, before the launch.
func (n *node) writeDNSProbe() error {
	dir := filepath.Join(n.dataDir, "agent", "pod-manifests")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// busybox's nslookup needs the full name (it does not search), and
	// fails at once while nothing answers (the guard's rejection, or the
	// proxy's for a Service without endpoints), or, its query dropped when
	// ICMP errors are rate-limited, after timeout's second. Each line carries the
	// machine's uptime as the pod reads it (/proc/uptime: CLOCK_BOOTTIME,
	// to 10 ms; busybox's date has no fractions): the log's own time is
	// when the node read the line, which at a container's start may be a
	// little later.
	script := fmt.Sprintf(`echo "%s, uptime $(cat /proc/uptime)"; n=0; until timeout 1 nslookup %s >/dev/null 2>&1; do n=$((n+1)); sleep 0.01; done; `+
		`echo "%s after $n failed lookups, uptime $(cat /proc/uptime)"; exec sleep 3600`, probeStarted, firstName, probeResolved)
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: dnsProbe, Namespace: metav1.NamespaceDefault, Labels: map[string]string{"app": dnsProbe}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "lookup", Image: "busybox:bench", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", script}}},
		},
	}
	data, err := json.Marshal(pod)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, dnsProbe+".json"), data, 0o644)
}

// firstName waits for the static pod's line that its lookup answered,
// and then removes the pod's manifest (so that it stops).
func (n *node) firstName(ctx context.Context, launched time.Time, sr *servicesReport) error {
	mirror := dnsProbe + "-" + nodeName
	progress("launch to the first cluster name in a pod: waiting for pod %s to resolve %s", mirror, firstName)
	resolved, err := n.waitLogLine(ctx, mirror, 90*time.Second, func(s string) bool { return strings.HasPrefix(s, probeResolved+" ") })
	if err != nil {
		return err
	}
	lines, err := n.logLines(ctx, mirror)
	if err != nil {
		return err
	}
	launchedUp, err := uptimeAt(launched)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if up, ok := lineUptime(l.text); ok && strings.HasPrefix(l.text, probeStarted+",") {
			sr.LaunchToProbeStarted = up - launchedUp
			break
		}
	}
	up, ok := lineUptime(resolved.text)
	if !ok {
		return fmt.Errorf("pod %s: no uptime in its line %q", mirror, resolved.text)
	}
	sr.LaunchToFirstName, sr.LaunchToFirstNameLog = up-launchedUp, resolved.at.Sub(launched).Seconds()
	fmt.Sscanf(resolved.text, probeResolved+" after %d", &sr.FailedLookups)
	progress("launch to the first cluster name in a pod: %.2f s (the log's time: %.3f s; the pod's first line at %.2f s, %d failed lookups before)",
		sr.LaunchToFirstName, sr.LaunchToFirstNameLog, sr.LaunchToProbeStarted, sr.FailedLookups)
	return os.Remove(filepath.Join(n.dataDir, "agent", "pod-manifests", dnsProbe+".json"))
}

// uptimeAt is the machine's uptime (CLOCK_BOOTTIME, what /proc/uptime
// shows) at t, in seconds.
func uptimeAt(t time.Time) (float64, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	return float64(ts.Nano())/1e9 - now.Sub(t).Seconds(), nil
}

// lineUptime reads the uptime a probe line ends with: "..., uptime
// <seconds> <idle seconds>".
func lineUptime(line string) (float64, bool) {
	_, after, ok := strings.Cut(line, ", uptime ")
	if !ok {
		return 0, false
	}
	f := strings.Fields(after)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}

// logLine is one line of a container's log, with the time the node
// wrote it (the CRI log's timestamp).
type logLine struct {
	at   time.Time
	text string
}

// logLines reads the log of the pod's (first) container in namespace
// default through the API, with the timestamps.
func (n *node) logLines(ctx context.Context, pod string) ([]logLine, error) {
	raw, err := n.cs.CoreV1().Pods(metav1.NamespaceDefault).GetLogs(pod, &corev1.PodLogOptions{Timestamps: true}).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var out []logLine
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		ts, text, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		out = append(out, logLine{at: at, text: text})
	}
	return out, nil
}

// waitLogLine polls the pod's log every 100 ms until a line matches.
func (n *node) waitLogLine(ctx context.Context, pod string, limit time.Duration, match func(string) bool) (logLine, error) {
	deadline := time.Now().Add(limit)
	var lastErr error
	for {
		lines, err := n.logLines(ctx, pod)
		for _, l := range lines {
			if match(l.text) {
				return l, nil
			}
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			var tail []string
			for _, l := range lines[max(0, len(lines)-5):] {
				tail = append(tail, l.text)
			}
			return logLine{}, fmt.Errorf("pod %s: no such line in its log after %v (%v): %s; its last lines: %q",
				pod, limit, lastErr, n.describePod(ctx, pod), tail)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return logLine{}, err
		}
	}
}

// startWebAndClient starts step 2's web pods (a Deployment of two busybox
// httpd) and the client pod, and returns the client's network namespace
// once all of them are Ready. The client's wget loop requests each of
// step 2's ClusterIPs in turn until it is answered.
func (n *node) startWebAndClient(ctx context.Context, services int) (podNet, error) {
	labels := map[string]string{"app": webApp}
	web := podSpec()
	web.Containers[0].Command = []string{"sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"}
	d := deploymentOf(webApp, 2, labels, web)
	if _, err := n.cs.AppsV1().Deployments(metav1.NamespaceDefault).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create the Deployment %s: %w", webApp, err)
	}
	var ips []string
	for i := 0; i < services; i++ {
		ips = append(ips, createIP(i))
	}
	client := podSpec()
	client.Containers[0].Command = []string{"sh", "-c", fmt.Sprintf(
		// (busybox 1.35's wget -T crashes on a refused connection: timeout instead.)
		`for ip in %s; do until timeout 1 wget -q -O /dev/null http://$ip/; do sleep 0.01; done; echo "answered $ip"; done; exec sleep 3600`,
		strings.Join(ips, " "))}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: clientPod, Labels: map[string]string{"app": clientPod}}, Spec: client}
	progress("starting %d web pods and the client pod", 2)
	if _, err := n.cs.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create pod %s: %w", clientPod, err)
	}
	if err := n.waitReadyPods(ctx, "app in ("+webApp+","+clientPod+")", 3, 90*time.Second); err != nil {
		return "", err
	}
	got, err := n.cs.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, clientPod, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return n.podNetNS(got.UID)
}

// waitReadyPods waits until count pods of namespace default match the
// label selector and are Ready.
func (n *node) waitReadyPods(ctx context.Context, selector string, count int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		l, err := n.cs.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: selector})
		ready := 0
		if err == nil {
			for i := range l.Items {
				if isPodReady(&l.Items[i]) {
					ready++
				}
			}
			if ready == count {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pods %s Ready after %v (%v)", ready, count, selector, limit, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// podNetNS is the network namespace the node made for the pod, from its
// sandbox.json (agent/kubelet/sandbox.go).
func (n *node) podNetNS(uid types.UID) (podNet, error) {
	data, err := os.ReadFile(filepath.Join(n.dataDir, "agent", "pods", string(uid), "sandbox.json"))
	if err != nil {
		return "", fmt.Errorf("the pod's sandbox: %w", err)
	}
	var sb struct {
		NetNS string `json:"netns"`
	}
	if err := json.Unmarshal(data, &sb); err != nil {
		return "", fmt.Errorf("the pod's sandbox.json: %w", err)
	}
	if sb.NetNS == "" {
		return "", errors.New("the pod's sandbox.json names no network namespace")
	}
	return podNet(sb.NetNS), nil
}

// createToAnswer is step 2: count Services, one after another, each timed
// from its Create call's return to the first answer.
func (n *node) createToAnswer(ctx context.Context, client podNet, count int) (probed, wget latency, err error) {
	progress("Service creation to the first answer: %d Services, one after another", count)
	var ds, dws []time.Duration
	for i := 0; i < count; i++ {
		ip := createIP(i)
		pr, err := client.probe(ctx, ip)
		if err != nil {
			return probed, wget, err
		}
		svc := serviceOf(fmt.Sprintf("nodebench-svc-%d", i), ip, map[string]string{"app": webApp})
		_, err = n.cs.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, svc, metav1.CreateOptions{})
		created := time.Now()
		if err != nil {
			pr.stop()
			return probed, wget, fmt.Errorf("create the Service %s: %w", svc.Name, err)
		}
		at, err := pr.wait(ctx, 10*time.Second)
		if err != nil {
			return probed, wget, fmt.Errorf("Service %s (%s): %w", svc.Name, ip, err)
		}
		line, err := n.waitLogLine(ctx, clientPod, 10*time.Second, func(s string) bool { return s == "answered "+ip })
		if err != nil {
			return probed, wget, err
		}
		d, dw := at.Sub(created), line.at.Sub(created)
		ds, dws = append(ds, d), append(dws, dw)
		progress("  Service %s (%s): answered %.3f s after Create (%d failed requests before); the client pod's wget after %.3f s",
			svc.Name, ip, d.Seconds(), pr.failures.Load(), dw.Seconds())
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return probed, wget, err
		}
	}
	return newLatency(ds), newLatency(dws), nil
}

// readyToAnswer is step 3: count Services, each with one pod that is made
// Ready only once the Service and the pod exist, timed to the first
// answer through the ClusterIP from the pod watch's Ready and from the
// EndpointSlice watch's ready endpoint.
func (n *node) readyToAnswer(ctx context.Context, client podNet, count int) (fromReady, fromEndpoint, fileToReady latency, err error) {
	w, err := n.podWatch(ctx, readyApp)
	if err != nil {
		return
	}
	defer w.Stop()
	progress("endpoint Ready to the first answer: %d Services, one after another", count)
	var dr, de, df []time.Duration
	for i := 0; i < count; i++ {
		r, e, f, err := n.readyOne(ctx, client, w, i)
		if err != nil {
			return fromReady, fromEndpoint, fileToReady, err
		}
		dr, de, df = append(dr, r), append(de, e), append(df, f)
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return fromReady, fromEndpoint, fileToReady, err
		}
	}
	return newLatency(dr), newLatency(de), newLatency(df), nil
}

// readyOne is one Service of step 3.
func (n *node) readyOne(ctx context.Context, client podNet, w watch.Interface, i int) (fromReady, fromEndpoint, fileToReady time.Duration, err error) {
	name, ip := fmt.Sprintf("%s-%d", readyApp, i), readyIP(i)
	labels := map[string]string{"app": readyApp, "index": strconv.Itoa(i)}
	if _, err := n.cs.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, serviceOf(name, ip, labels), metav1.CreateOptions{}); err != nil {
		return 0, 0, 0, fmt.Errorf("create the Service %s: %w", name, err)
	}
	// The readiness probe asks httpd for r/ok, which is in a directory of
	// the node's that nodebench writes the file into.
	dir := filepath.Join(n.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, 0, err
	}
	spec := podSpec()
	c := &spec.Containers[0]
	c.Command = []string{"sh", "-c", "hostname > /www/index.html && exec httpd -f -p 8080 -h /www"}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "r", MountPath: "/www/r"}}
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 1,
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/r/ok", Port: intstr.FromInt32(8080)}}}
	spec.Volumes = []corev1.Volume{{Name: "r", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: ptr.To(corev1.HostPathDirectory)}}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: spec}
	if _, err := n.cs.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return 0, 0, 0, fmt.Errorf("create pod %s: %w", name, err)
	}
	if err := waitPodEvent(ctx, w, name, 60*time.Second, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }); err != nil {
		return 0, 0, 0, fmt.Errorf("pod %s not Running: %w: %s", name, err, n.describePod(ctx, name))
	}
	sw, err := n.cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Watch(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return 0, 0, 0, err
	}
	defer sw.Stop()
	pr, err := client.probe(ctx, ip)
	if err != nil {
		return 0, 0, 0, err
	}
	defer pr.stop()

	if err := os.WriteFile(filepath.Join(dir, "ok"), []byte("ok\n"), 0o644); err != nil {
		return 0, 0, 0, err
	}
	written := time.Now()
	var ready, endpoint, answered time.Time
	timeout := time.After(20 * time.Second)
	for ready.IsZero() || endpoint.IsZero() || answered.IsZero() {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return 0, 0, 0, errors.New("the pod watch ended")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && p.Name == name && ready.IsZero() && isPodReady(p) {
				ready = time.Now()
			}
		case ev, ok := <-sw.ResultChan():
			if !ok {
				return 0, 0, 0, errors.New("the EndpointSlice watch ended")
			}
			if s, isSlice := ev.Object.(*discoveryv1.EndpointSlice); isSlice && endpoint.IsZero() && hasReadyEndpoint(s) {
				endpoint = time.Now()
			}
		case at := <-pr.answered:
			answered = at
		case <-timeout:
			return 0, 0, 0, fmt.Errorf("Service %s (%s), 20 s after its pod's readiness file: pod Ready %v, endpoint ready %v, answered %v",
				name, ip, !ready.IsZero(), !endpoint.IsZero(), !answered.IsZero())
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
	}
	fromReady, fromEndpoint, fileToReady = answered.Sub(ready), answered.Sub(endpoint), ready.Sub(written)
	progress("  Service %s (%s): answered %.3f s after the pod watch showed the pod Ready, %.3f s after the endpoint watch showed it ready (Ready %.3f s after the file)",
		name, ip, fromReady.Seconds(), fromEndpoint.Seconds(), fileToReady.Seconds())
	return fromReady, fromEndpoint, fileToReady, nil
}

// waitPodEvent waits for the watch to show the pod named name in a state
// for which ok holds.
func waitPodEvent(ctx context.Context, w watch.Interface, name string, limit time.Duration, ok func(*corev1.Pod) bool) error {
	timeout := time.After(limit)
	for {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				return errors.New("the pod watch ended")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && p.Name == name && ok(p) {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("not after %v", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func hasReadyEndpoint(s *discoveryv1.EndpointSlice) bool {
	for _, e := range s.Endpoints {
		if e.Conditions.Ready != nil && *e.Conditions.Ready {
			return true
		}
	}
	return false
}

// serviceOf is a ClusterIP Service at ip, port 80 to the pods' 8080.
func serviceOf(name, ip string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: ip, Selector: selector,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
}

// podNet is the path of a pod's network namespace: nodebench makes
// sockets in it, which then send and receive as the pod's own do.
type podNet string

// dial connects from inside the pod's network namespace. Only making the
// socket needs the namespace (a socket stays in the one it was made in),
// so one locked thread enters it for the call and comes back.
func (p podNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		host, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("this thread's network namespace: %w", err)}
			return
		}
		defer host.Close()
		pod, err := netns.GetFromPath(string(p))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("the pod's network namespace: %w", err)}
			return
		}
		defer pod.Close()
		if err := netns.Set(pod); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("enter the pod's network namespace: %w", err)}
			return
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if serr := netns.Set(host); serr != nil {
			// The thread stays locked: the runtime ends it with this
			// goroutine, rather than run others in the pod's namespace.
			if conn != nil {
				conn.Close()
			}
			done <- result{err: fmt.Errorf("back to the host's network namespace: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// prober requests http://<ip>/ from a pod, each time on a new connection
// (so a new connection-tracking entry, which the proxy's DNAT decides
// afresh), every probeEvery after a failure, until one is answered.
type prober struct {
	tried    chan struct{}  // closed after the first failed request
	answered chan time.Time // the first answer's time
	failures atomic.Int64
	stop     context.CancelFunc
}

// probe starts a prober and waits for its first request to fail: a
// service address that answers before its Service exists would make the
// measurement meaningless.
func (p podNet) probe(ctx context.Context, ip string) (*prober, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr := &prober{tried: make(chan struct{}), answered: make(chan time.Time, 1), stop: cancel}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: p.dial, DisableKeepAlives: true}}
	url := "http://" + ip + "/"
	go func() {
		for ctx.Err() == nil {
			if err := get(ctx, client, url); err == nil {
				pr.answered <- time.Now()
				return
			}
			if pr.failures.Add(1) == 1 {
				close(pr.tried)
			}
			sleep(ctx, probeEvery)
		}
	}()
	select {
	case <-pr.tried:
		return pr, nil
	case <-pr.answered:
		cancel()
		return nil, fmt.Errorf("%s answers before its Service exists", ip)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, fmt.Errorf("a request to %s from the pod neither failed nor was answered within 10 s", ip)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// wait returns the time of the first answer.
func (pr *prober) wait(ctx context.Context, limit time.Duration) (time.Time, error) {
	defer pr.stop()
	select {
	case at := <-pr.answered:
		return at, nil
	case <-time.After(limit):
		return time.Time{}, fmt.Errorf("no answer within %v (%d failed requests)", limit, pr.failures.Load())
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// get requests url and reads the answer, which must be 200 OK.
func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// dialFunc makes a connection (net.Dialer's DialContext, podNet's dial).
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dnsLoadFrom asks server for dnsName over UDP with clients sockets made
// by dial, each waiting for its answer before the next query, for d after
// dnsWarmup; every answer must be one A record, createIP(0).
func dnsLoadFrom(ctx context.Context, dial dialFunc, server string, clients int, d time.Duration) (dnsLoad, error) {
	qname, want := dnsName, createIP(0)
	type result struct {
		lat    []time.Duration
		errors int
		err    error
	}
	results := make(chan result, clients)
	start := time.Now()
	measureFrom, end := start.Add(dnsWarmup), start.Add(dnsWarmup+d)
	for c := 0; c < clients; c++ {
		go func() {
			var r result
			conn, err := dial(ctx, "udp4", server)
			if err != nil {
				r.err = err
				results <- r
				return
			}
			defer conn.Close()
			dc := &dns.Conn{Conn: conn}
			m := new(dns.Msg)
			m.SetQuestion(qname, dns.TypeA)
			for ctx.Err() == nil {
				m.Id = dns.Id()
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				dc.SetDeadline(t0.Add(time.Second))
				err := dc.WriteMsg(m)
				var a *dns.Msg
				if err == nil {
					a, err = dc.ReadMsg()
				}
				took := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil || !isAnswer(a, m.Id, want) {
					r.errors++
					continue
				}
				r.lat = append(r.lat, took)
			}
			results <- r
		}()
	}
	var all []time.Duration
	l := dnsLoad{Clients: clients, Seconds: d.Seconds()}
	var errs []error
	for c := 0; c < clients; c++ {
		r := <-results
		all = append(all, r.lat...)
		l.Errors += r.errors
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return l, err
	}
	if len(all) == 0 {
		return l, fmt.Errorf("no query of %s to %s answered (%d errors)", qname, server, l.Errors)
	}
	ms := func(p int) float64 { return pct(all, p) * 1000 }
	l.Queries, l.QPS = len(all), float64(len(all))/d.Seconds()
	l.P50, l.P99, l.Max = ms(50), ms(99), ms(100)
	return l, nil
}

// isAnswer tells whether a answers query id with one A record, want.
func isAnswer(a *dns.Msg, id uint16, want string) bool {
	if a == nil || a.Id != id || a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
		return false
	}
	rr, ok := a.Answer[0].(*dns.A)
	return ok && rr.A.String() == want
}

// The figure for upstream (kube-proxy in iptables mode and
// CoreDNS on the same machines) and its goals.
const (
	upstreamFirstName  = 21.0 // s, launch to cluster DNS answering
	goalFirstName      = 3.0  // s
	goalServiceAnswers = 1.0  // s, a new service answering after its endpoints are ready
)

// print writes the services steps' table.
func (sr *servicesReport) print(out io.Writer) {
	fmt.Fprintf(out, "\nServices and DNS, measured from pods (load average %.1f at the start of these steps)\n", sr.LoadAverage)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(w, strings.Join(cols, "\t")) }
	within := func(l latency) string {
		return fmt.Sprintf("within %.0f s: %s", goalServiceAnswers, verdict(l.Max < goalServiceAnswers))
	}
	row("what", "labctl", "upstream", "goal")
	row("launch to /readyz / node Ready", fmt.Sprintf("%.2f / %.2f s", sr.LaunchToReadyz, sr.LaunchToNodeReady), "", "")
	row("launch to the first cluster name resolving in a pod", fmt.Sprintf("%.2f s", sr.LaunchToFirstName),
		fmt.Sprintf("%.0f s", upstreamFirstName), fmt.Sprintf("under %.0f s: %s", goalFirstName, verdict(sr.LaunchToFirstName < goalFirstName)))
	row("  the same by the log's time of the pod's line", fmt.Sprintf("%.3f s", sr.LaunchToFirstNameLog), "", "")
	row("  of which launch to the pod's first line", fmt.Sprintf("%.2f s (then %d failed lookups)", sr.LaunchToProbeStarted, sr.FailedLookups), "", "")
	row(fmt.Sprintf("Service created (Create returned) to the first answer, %d Services", sr.CreateToAnswer.Count),
		sr.CreateToAnswer.String(), "", within(sr.CreateToAnswer))
	row("  the same, the client pod's own wget loop (its log's time)", sr.CreateToAnswerWget.String(), "", "")
	row("  the machine's cores busy meanwhile", fmt.Sprintf("%.0f%%", sr.CreateMachineBusy), "", "")
	row(fmt.Sprintf("pod Ready (pod watch) to the first answer, %d Services", sr.ReadyToAnswer.Count), sr.ReadyToAnswer.String(), "", within(sr.ReadyToAnswer))
	row("endpoint ready (EndpointSlice watch) to the first answer", sr.EndpointToAnswer.String(), "", within(sr.EndpointToAnswer))
	row("  readiness file written to pod Ready (probe period 1 s)", sr.FileToReady.String(), "", "")
	row("  the machine's cores busy meanwhile", fmt.Sprintf("%.0f%%", sr.ReadyMachineBusy), "", "")
	dnsRows := func(from string, ls []dnsLoad) {
		for _, l := range ls {
			row(fmt.Sprintf("DNS %s, a service name, %d client(s), %.0f s", from, l.Clients, l.Seconds),
				fmt.Sprintf("%.0f queries/s, p50 %.3f ms, p99 %.3f ms, max %.1f ms, %d errors", l.QPS, l.P50, l.P99, l.Max, l.Errors), "", "")
			row("  the machine's cores busy meanwhile", fmt.Sprintf("%.0f%%", l.MachineBusy), "", "")
		}
	}
	dnsRows("from a pod to the cluster DNS address", sr.DNS)
	dnsRows("from the node to CoreDNS's address (no pod network, no proxy)", sr.DNSNode)
	w.Flush()
}

// deploymentOf is a Deployment of replicas pods with the labels and spec.
func deploymentOf(name string, replicas int, labels map[string]string, spec corev1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}
