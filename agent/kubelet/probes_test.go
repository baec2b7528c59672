package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	grpchealth "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The kubelet's sync loop uses them through these interfaces.
var (
	_ podProbes      = (*probeManager)(nil)
	_ lifecycleHooks = (*actionRunner)(nil)
)

// waitUntil polls cond until it holds, or fails the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedPort is a local TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestExecProbe(t *testing.T) {
	var got execOptions
	var gotID string
	reply := func(stdout, stderr string, code int, err error) execFunc {
		return func(_ context.Context, id string, o execOptions) (int, error) {
			got, gotID = o, id
			io.WriteString(o.Stdout, stdout)
			io.WriteString(o.Stderr, stderr)
			return code, err
		}
	}
	c := &corev1.Container{Name: "main", Env: []corev1.EnvVar{{Name: "FILE", Value: "/tmp/healthy"}}}
	p := &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "$(FILE)", "$(NOPE)"}}}}
	ctx := context.Background()

	r := newActionRunner(reply("ok\n", "", 0, nil), nil, nil)
	st, out, err := r.probe(ctx, p, c, "abc", "10.0.0.1")
	if st != probeSuccess || out != "ok\n" || err != nil {
		t.Errorf("exit 0: %v %q %v", st, out, err)
	}
	if gotID != "abc" || !slices.Equal(got.Cmd, []string{"cat", "/tmp/healthy", "$(NOPE)"}) || got.Timeout != 2*time.Second {
		t.Errorf("exec of %s: %q timeout %v", gotID, got.Cmd, got.Timeout)
	}

	r = newActionRunner(reply("", "cat: can't open '/tmp/healthy': No such file or directory\n", 1, nil), nil, nil)
	if st, out, err := r.probe(ctx, p, c, "abc", ""); st != probeFailure || out != "cat: can't open '/tmp/healthy': No such file or directory\n" || err != nil {
		t.Errorf("exit 1: %v %q %v", st, out, err)
	}

	r = newActionRunner(reply("", "", -1, errExecTimeout), nil, nil)
	if st, out, err := r.probe(ctx, p, c, "abc", ""); st != probeFailure || out != `command "cat /tmp/healthy $(NOPE)" timed out` || err != nil {
		t.Errorf("timeout: %v %q %v", st, out, err)
	}

	boom := errors.New("exec: container abc is not running")
	r = newActionRunner(reply("", "", -1, boom), nil, nil)
	if st, _, err := r.probe(ctx, p, c, "abc", ""); st != probeUnknown || !errors.Is(err, boom) {
		t.Errorf("exec error: %v %v", st, err)
	}

	// The output is bounded to 10 KiB, stdout and stderr together.
	r = newActionRunner(reply(strings.Repeat("o", 8000), strings.Repeat("e", 8000), 0, nil), nil, nil)
	if _, out, _ := r.probe(ctx, p, c, "abc", ""); len(out) != maxProbeOutput {
		t.Errorf("output of %d bytes kept", len(out))
	}
}

func TestHTTPProbe(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "secret details", 500) })
	mux.HandleFunc("/local", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/healthz", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 20000)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/healthz", port), http.StatusFound)
	})
	last := func() *http.Request {
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	requests := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}

	c := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	r := newActionRunner(nil, nil, nil)
	probe := func(path string, mod func(*corev1.HTTPGetAction)) (probeStatus, string, error) {
		a := &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}
		if mod != nil {
			mod(a)
		}
		return r.probe(context.Background(), &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: a}}, c, "id", "127.0.0.1")
	}

	st, out, err := probe("/healthz", nil)
	if st != probeSuccess || out != "ok" || err != nil {
		t.Errorf("200: %v %q %v", st, out, err)
	}
	if req := last(); req.UserAgent() != "kube-probe/1.37" || req.Header.Get("Accept") != "*/*" || req.Host != u.Host {
		t.Errorf("request: User-Agent %q Accept %q Host %q", req.UserAgent(), req.Header.Get("Accept"), req.Host)
	}
	st, _, _ = probe("/healthz", func(a *corev1.HTTPGetAction) {
		a.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}, {Name: "Host", Value: "example.com"},
			{Name: "Accept", Value: ""}, {Name: "User-Agent", Value: "mine"}}
	})
	if req := last(); st != probeSuccess || req.Header.Get("X-Probe") != "1" || req.Host != "example.com" ||
		req.Header.Values("Accept") != nil || req.UserAgent() != "mine" {
		t.Errorf("headers: %v %v Host %q", st, req.Header, req.Host)
	}

	if st, out, err := probe("/fail", nil); st != probeFailure || out != "HTTP probe failed with statuscode: 500" || err != nil {
		t.Errorf("500: %v %q %v", st, out, err)
	}
	// A redirect on the same host is followed; one elsewhere is not, and
	// is a success with a warning.
	if st, out, _ := probe("/local", nil); st != probeSuccess || out != "ok" || last().URL.Path != "/healthz" {
		t.Errorf("local redirect: %v %q", st, out)
	}
	n := requests()
	if st, out, _ := probe("/away", nil); st != probeWarning || !strings.HasPrefix(out, "Probe terminated redirects, Response body: ") || requests() != n+1 {
		t.Errorf("redirect to another host: %v %q (%d requests)", st, out, requests()-n)
	}
	if st, out, _ := probe("/big", nil); st != probeSuccess || len(out) != maxProbeOutput {
		t.Errorf("big body: %v, %d bytes", st, len(out))
	}
	start := time.Now()
	if st, out, _ := probe("/slow", nil); st != probeFailure || !strings.Contains(out, "Client.Timeout exceeded") || time.Since(start) > 2500*time.Millisecond {
		t.Errorf("slow: %v %q after %v", st, out, time.Since(start))
	}
	closed := closedPort(t)
	want := fmt.Sprintf(`Get "http://127.0.0.1:%d/healthz": dial tcp 127.0.0.1:%d: connect: connection refused`, closed, closed)
	if st, out, _ := probe("/healthz", func(a *corev1.HTTPGetAction) { a.Port = intstr.FromInt32(int32(closed)) }); st != probeFailure || out != want {
		t.Errorf("refused: %v %q, want %q", st, out, want)
	}
	if st, _, err := probe("/healthz", func(a *corev1.HTTPGetAction) { a.Port = intstr.FromString("nope") }); st != probeUnknown ||
		err == nil || err.Error() != `strconv.Atoi: parsing "nope": invalid syntax` {
		t.Errorf("unknown port name: %v %v", st, err)
	}
	if st, _, _ := probe("/healthz", func(a *corev1.HTTPGetAction) { a.Port = intstr.FromString(strconv.Itoa(port)) }); st != probeSuccess {
		t.Errorf("port number as a string: %v", st)
	}

	// HTTPS, with a certificate nobody verifies; the host field.
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	tu, _ := url.Parse(tlsSrv.URL)
	tport, _ := strconv.Atoi(tu.Port())
	if st, out, err := probe("/healthz", func(a *corev1.HTTPGetAction) {
		a.Scheme, a.Port, a.Host = corev1.URISchemeHTTPS, intstr.FromInt32(int32(tport)), "127.0.0.1"
	}); st != probeSuccess || out != "ok" || err != nil {
		t.Errorf("https: %v %q %v", st, out, err)
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	c := &corev1.Container{Name: "db", Ports: []corev1.ContainerPort{{Name: "sql", ContainerPort: int32(port)}}}
	r := newActionRunner(nil, nil, nil)
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("sql")}}}
	if st, out, err := r.probe(context.Background(), p, c, "id", "127.0.0.1"); st != probeSuccess || out != "" || err != nil {
		t.Errorf("listening: %v %q %v", st, out, err)
	}
	closed := closedPort(t)
	p.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closed)), Host: "127.0.0.1"}
	want := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", closed)
	if st, out, err := r.probe(context.Background(), p, c, "id", "10.255.255.1"); st != probeFailure || out != want || err != nil {
		t.Errorf("refused: %v %q %v, want %q", st, out, err, want)
	}
}

func TestGRPCProbe(t *testing.T) {
	serve := func(withHealth bool) (int, func() string) {
		var ua string
		var mu sync.Mutex
		srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if md, ok := metadata.FromIncomingContext(ctx); ok && len(md["user-agent"]) > 0 {
				mu.Lock()
				ua = md["user-agent"][0]
				mu.Unlock()
			}
			return h(ctx, req)
		}))
		if withHealth {
			hs := health.NewServer()
			hs.SetServingStatus("", grpchealth.HealthCheckResponse_SERVING)
			hs.SetServingStatus("down", grpchealth.HealthCheckResponse_NOT_SERVING)
			grpchealth.RegisterHealthServer(srv, hs)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		t.Cleanup(srv.Stop)
		return l.Addr().(*net.TCPAddr).Port, func() string {
			mu.Lock()
			defer mu.Unlock()
			return ua
		}
	}
	port, ua := serve(true)
	r := newActionRunner(nil, nil, nil)
	probe := func(port int, service string) (probeStatus, string) {
		p := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port)}}}
		if service != "" {
			p.GRPC.Service = &service
		}
		st, out, err := r.probe(context.Background(), p, &corev1.Container{Name: "g"}, "id", "127.0.0.1")
		if err != nil {
			t.Errorf("grpc probe error: %v", err)
		}
		return st, out
	}
	if st, out := probe(port, ""); st != probeSuccess || out != "service healthy" {
		t.Errorf("serving: %v %q", st, out)
	}
	if !strings.HasPrefix(ua(), "kube-probe/1.37") {
		t.Errorf("User-Agent %q", ua())
	}
	if st, out := probe(port, "down"); st != probeFailure || out != `service unhealthy (responded with "NOT_SERVING")` {
		t.Errorf("not serving: %v %q", st, out)
	}
	bare, _ := serve(false)
	if st, out := probe(bare, ""); st != probeFailure ||
		out != "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health" {
		t.Errorf("no health service: %v %q", st, out)
	}
	closed := closedPort(t)
	if st, out := probe(closed, ""); st != probeFailure ||
		out != fmt.Sprintf(`timeout: failed to connect service "127.0.0.1:%d" within 1s: context deadline exceeded`, closed) {
		t.Errorf("refused: %v %q", st, out)
	}
}

// probeHarness is a probeManager over a fake exec whose outcomes each
// test scripts, per command: "ok", "fail", "error" or "hang".
type probeHarness struct {
	m       *probeManager
	mu      sync.Mutex
	scripts map[string][]string // by command; the last entry repeats
	calls   map[string]int
	events  []string
	changes []map[string]int // the calls made when Changed was called
}

func newProbeHarness(t *testing.T) *probeHarness {
	h := &probeHarness{scripts: map[string][]string{}, calls: map[string]int{}}
	h.m = newProbeManager(probeConfig{
		Exec: h.exec,
		Event: func(pod *corev1.Pod, typ, reason, msg string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, typ+" "+reason+" "+msg)
		},
		Changed: func(uid types.UID) {
			h.mu.Lock()
			defer h.mu.Unlock()
			snap := map[string]int{}
			for k, v := range h.calls {
				snap[k] = v
			}
			h.changes = append(h.changes, snap)
		},
		second: 10 * time.Millisecond,
	})
	t.Cleanup(h.m.Stop)
	return h
}

func (h *probeHarness) script(cmd string, outcomes ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scripts[cmd] = outcomes
	h.calls[cmd] = 0
}

func (h *probeHarness) exec(ctx context.Context, id string, o execOptions) (int, error) {
	cmd := strings.Join(o.Cmd, " ")
	h.mu.Lock()
	s := h.scripts[cmd]
	n := h.calls[cmd]
	h.calls[cmd]++
	h.mu.Unlock()
	outcome := "ok"
	if len(s) > 0 {
		outcome = s[min(n, len(s)-1)]
	}
	switch outcome {
	case "fail":
		fmt.Fprintf(o.Stdout, "%s failed on %s", cmd, id)
		return 1, nil
	case "error":
		return -1, errors.New("boom")
	case "hang":
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return 0, nil
}

func (h *probeHarness) count(cmd string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[cmd]
}

// changedAt is the number of calls of cmd each time a verdict changed:
// the times Changed was called but the first, the first Sync's.
func (h *probeHarness) changedAt(cmd string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int
	for i, c := range h.changes {
		if i > 0 {
			out = append(out, c[cmd])
		}
	}
	return out
}

// changed is how often Changed was called.
func (h *probeHarness) changed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.changes)
}

func (h *probeHarness) eventsWith(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if strings.Contains(e, s) {
			n++
		}
	}
	return n
}

func execProbeSpec(cmd string, success, failure int32) *corev1.Probe {
	return &corev1.Probe{PeriodSeconds: 1, SuccessThreshold: success, FailureThreshold: failure, TimeoutSeconds: 1,
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}}}
}

func probePod(c corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{c}, RestartPolicy: corev1.RestartPolicyAlways}}
}

func TestProbeReadiness(t *testing.T) {
	h := newProbeHarness(t)
	h.script("ready", "fail", "ok", "fail", "ok", "ok", "fail", "ok", "fail", "fail", "ok")
	pod := probePod(corev1.Container{Name: "web", ReadinessProbe: execProbeSpec("ready", 2, 2)})
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id1"})
	if r := h.m.Result(pod.UID, "web", "id1"); r.Ready || !r.Started {
		t.Errorf("before any probe: %+v", r)
	}
	// Ready after 2 successes in a row (the 5th probe), unready after 2
	// failures (the 9th), ready again (the 11th); probing goes on.
	waitUntil(t, "three readiness changes", func() bool { return len(h.changedAt("ready")) == 3 })
	if got := h.changedAt("ready"); !slices.Equal(got, []int{5, 9, 11}) {
		t.Errorf("readiness changed at probes %v, want [5 9 11]", got)
	}
	if !h.m.Ready(pod.UID, "web", "id1") || h.m.Ready(pod.UID, "web", "id2") {
		t.Error("ready for the wrong run")
	}
	n := h.count("ready")
	waitUntil(t, "more probes", func() bool { return h.count("ready") > n+3 })
	if got := h.eventsWith("Warning Unhealthy Readiness probe failed: ready failed on id1"); got != 5 {
		t.Errorf("%d readiness failure events, want 5:\n%s", got, h.events)
	}
	if msg, failed := h.m.Failed(pod.UID, "web", "id1"); failed {
		t.Errorf("readiness failures fail the container: %s", msg)
	}
}

func TestProbeLiveness(t *testing.T) {
	h := newProbeHarness(t)
	h.script("live", "ok", "fail", "fail", "ok", "fail", "fail", "fail")
	pod := probePod(corev1.Container{Name: "web", LivenessProbe: execProbeSpec("live", 1, 3)})
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id1"})
	if r := h.m.Result(pod.UID, "web", "id1"); !r.Ready || !r.Started || r.LivenessFailed {
		t.Errorf("before any probe: %+v", r)
	}
	waitUntil(t, "the liveness failure", func() bool { _, failed := h.m.Failed(pod.UID, "web", "id1"); return failed })
	if got := h.changedAt("live"); !slices.Equal(got, []int{7}) {
		t.Errorf("liveness changed at probes %v, want [7]", got)
	}
	r := h.m.Result(pod.UID, "web", "id1")
	if !r.LivenessFailed || r.Message != "live failed on id1" {
		t.Errorf("result: %+v", r)
	}
	if msg, _ := h.m.Failed(pod.UID, "web", "id1"); msg != "Container web failed liveness probe, will be restarted" {
		t.Errorf("Failed: %q", msg)
	}
	if got := h.eventsWith("Warning Unhealthy Liveness probe failed: live failed on id1"); got != 5 {
		t.Errorf("%d liveness failure events, want 5", got)
	}
	// The worker waits for the container to be replaced.
	time.Sleep(200 * time.Millisecond)
	if n := h.count("live"); n != 7 {
		t.Errorf("%d probes after the failure, want 7", n)
	}
	h.script("live", "ok")
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id2"})
	waitUntil(t, "probes of the new container", func() bool { return h.count("live") >= 3 })
	if _, failed := h.m.Failed(pod.UID, "web", "id2"); failed {
		t.Error("the new container failed")
	}
	if _, failed := h.m.Failed(pod.UID, "web", "id1"); failed {
		t.Error("the old container's verdict is kept")
	}

	// Under restartPolicy Never the container is killed, not restarted.
	h2 := newProbeHarness(t)
	h2.script("live", "fail")
	never := probePod(corev1.Container{Name: "web", LivenessProbe: execProbeSpec("live", 1, 1)})
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	h2.m.Sync(never, "", map[string]string{"web": "id1"})
	waitUntil(t, "the liveness failure", func() bool { _, failed := h2.m.Failed(never.UID, "web", "id1"); return failed })
	if msg, _ := h2.m.Failed(never.UID, "web", "id1"); msg != "Container web failed liveness probe" {
		t.Errorf("Failed under Never: %q", msg)
	}
}

func TestProbeStartup(t *testing.T) {
	h := newProbeHarness(t)
	h.script("start", "fail")
	pod := probePod(corev1.Container{Name: "web", StartupProbe: execProbeSpec("start", 1, 50),
		LivenessProbe: execProbeSpec("live", 1, 1), ReadinessProbe: execProbeSpec("ready", 1, 1)})
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id1"})
	waitUntil(t, "startup probes", func() bool { return h.count("start") >= 5 })
	// Liveness and readiness wait for the startup probe.
	if r := h.m.Result(pod.UID, "web", "id1"); r.Started || r.Ready || r.StartupFailed || h.count("live")+h.count("ready") != 0 {
		t.Errorf("before startup: %+v, %d liveness and %d readiness probes", r, h.count("live"), h.count("ready"))
	}
	h.script("start", "ok")
	waitUntil(t, "started", func() bool { return h.m.Started(pod.UID, "web", "id1") })
	waitUntil(t, "ready", func() bool { return h.m.Ready(pod.UID, "web", "id1") })
	waitUntil(t, "liveness probes", func() bool { return h.count("live") > 3 })
	if n := h.count("start"); n != 1 {
		t.Errorf("%d startup probes after it passed, want 1", n)
	}

	// failureThreshold failures: the container failed, and is not probed again.
	h.script("start", "fail")
	pod = pod.DeepCopy()
	pod.Spec.Containers[0].StartupProbe = execProbeSpec("start", 1, 3)
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id2"})
	waitUntil(t, "the startup failure", func() bool { _, failed := h.m.Failed(pod.UID, "web", "id2"); return failed })
	r := h.m.Result(pod.UID, "web", "id2")
	if msg, _ := h.m.Failed(pod.UID, "web", "id2"); msg != "Container web failed startup probe, will be restarted" ||
		r.Started || !r.StartupFailed || r.Message != "start failed on id2" {
		t.Errorf("startup failure: %q %+v", msg, r)
	}
	time.Sleep(100 * time.Millisecond)
	if n := h.count("start"); n != 3 {
		t.Errorf("%d startup probes, want 3", n)
	}
	if h.eventsWith("Warning Unhealthy Startup probe failed: start failed on id2") != 3 {
		t.Errorf("events: %s", h.events)
	}
}

func TestProbeDelaysAndErrors(t *testing.T) {
	h := newProbeHarness(t)
	live := execProbeSpec("live", 1, 1)
	live.InitialDelaySeconds = 30 // 300 ms here
	pod := probePod(corev1.Container{Name: "web", LivenessProbe: live, ReadinessProbe: execProbeSpec("ready", 1, 1)})
	h.script("ready", "error")
	start := time.Now()
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id1"})
	time.Sleep(150 * time.Millisecond)
	if n := h.count("live"); n != 0 {
		t.Errorf("%d probes during the initial delay", n)
	}
	waitUntil(t, "the first liveness probe", func() bool { return h.count("live") > 0 })
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("first probe after %v, before the initial delay", d)
	}
	// A probe that cannot run is tried 3 times, recorded, and does not count.
	waitUntil(t, "errored readiness probes", func() bool {
		return h.eventsWith("Warning Unhealthy Readiness probe errored and resulted in unknown state: boom") >= 3
	})
	if n := h.count("ready"); n < 9 {
		t.Errorf("%d tries for 3 errored probes, want 3 each", n)
	}
	if got := h.changedAt("ready"); len(got) != 0 {
		t.Errorf("errors changed the verdict: %v", got)
	}

	// A pod being deleted is not restarted for its liveness.
	h.script("live2", "fail")
	now := metav1.Now()
	deleting := probePod(corev1.Container{Name: "web", LivenessProbe: execProbeSpec("live2", 1, 1)})
	deleting.UID, deleting.DeletionTimestamp = "uid-2", &now
	h.m.Sync(deleting, "10.0.0.1", map[string]string{"web": "id9"})
	time.Sleep(100 * time.Millisecond)
	if _, failed := h.m.Failed(deleting.UID, "web", "id9"); failed || h.count("live2") != 0 {
		t.Errorf("deleting pod: failed %v, %d probes", failed, h.count("live2"))
	}
}

func TestProbeManagerLifecycle(t *testing.T) {
	h := newProbeHarness(t)
	// Without probes: ready and started; unknown pods and containers: neither.
	plain := probePod(corev1.Container{Name: "web"})
	h.m.Sync(plain, "10.0.0.1", map[string]string{"web": "id1"})
	if !h.m.Ready(plain.UID, "web", "id1") || !h.m.Started(plain.UID, "web", "id1") {
		t.Error("a container without probes is not ready")
	}
	// Before its first Sync, the pod was not ready: Changed says it may be now.
	waitUntil(t, "Changed after the first Sync", func() bool { return h.changed() == 1 })
	h.m.Sync(plain, "10.0.0.1", map[string]string{"web": "id1"})
	time.Sleep(50 * time.Millisecond)
	if n := h.changed(); n != 1 {
		t.Errorf("Changed called %d times for a pod without probes", n)
	}
	if h.m.Ready("other", "web", "id1") || h.m.Ready(plain.UID, "nope", "id1") {
		t.Error("unknown pods or containers are ready")
	}

	// A sidecar's probes run too.
	always := corev1.ContainerRestartPolicyAlways
	pod := probePod(corev1.Container{Name: "web", ReadinessProbe: execProbeSpec("web", 1, 1)})
	pod.UID = "uid-2"
	pod.Spec.InitContainers = []corev1.Container{{Name: "side", RestartPolicy: &always, ReadinessProbe: execProbeSpec("side", 1, 1)}}
	h.m.Sync(pod, "10.0.0.1", map[string]string{"web": "id1", "side": "id2"})
	waitUntil(t, "ready", func() bool { return h.m.Ready(pod.UID, "web", "id1") && h.m.Ready(pod.UID, "side", "id2") })

	// A container no longer running loses its worker.
	h.m.Sync(pod, "10.0.0.1", map[string]string{"side": "id2"})
	if h.m.Ready(pod.UID, "web", "id1") {
		t.Error("a stopped container is ready")
	}
	n := h.count("web")
	time.Sleep(100 * time.Millisecond)
	if h.count("web") != n {
		t.Error("a stopped container is probed")
	}
	h.m.Remove(pod.UID)
	if h.m.Ready(pod.UID, "side", "id2") {
		t.Error("a removed pod is ready")
	}

	// Stop ends the workers, even in the middle of a probe.
	h.script("hang", "hang")
	hung := probePod(corev1.Container{Name: "web", LivenessProbe: execProbeSpec("hang", 1, 1)})
	hung.UID = "uid-3"
	h.m.Sync(hung, "10.0.0.1", map[string]string{"web": "id3"})
	waitUntil(t, "a hanging probe", func() bool { return h.count("hang") > 0 })
	done := make(chan struct{})
	go func() { h.m.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waits for a hanging probe")
	}
	if h.eventsWith("Liveness") != 0 {
		t.Errorf("a stopped probe recorded events: %s", h.events)
	}
	h.m.Sync(hung, "10.0.0.1", map[string]string{"web": "id4"})
	if h.m.Started(hung.UID, "web", "id4") {
		t.Error("Sync after Stop")
	}
}

func TestLifecycleHooks(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"}}
	var events []string
	var execs [][]string
	r := newActionRunner(func(ctx context.Context, id string, o execOptions) (int, error) {
		execs = append(execs, o.Cmd)
		switch o.Cmd[0] {
		case "fail":
			io.WriteString(o.Stdout, "out\n")
			io.WriteString(o.Stderr, "oops\n")
			return 3, nil
		case "hang":
			<-ctx.Done()
			return -1, ctx.Err()
		}
		return 0, nil
	}, func(_ *corev1.Pod, typ, reason, msg string) { events = append(events, typ+" "+reason+" "+msg) }, nil)
	ctx := context.Background()
	withHooks := func(post, pre *corev1.LifecycleHandler) *corev1.Container {
		return &corev1.Container{Name: "main", Lifecycle: &corev1.Lifecycle{PostStart: post, PreStop: pre}}
	}

	if msg, err := r.PostStart(ctx, pod, &corev1.Container{Name: "main"}, "id", ""); msg != "" || err != nil || len(execs) != 0 {
		t.Errorf("no hook: %q %v", msg, err)
	}
	c := withHooks(&corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"ok", "$(X)"}}}, nil)
	if msg, err := r.PostStart(ctx, pod, c, "id", ""); msg != "" || err != nil || !slices.Equal(execs[0], []string{"ok", "$(X)"}) {
		t.Errorf("exec hook: %q %v %q", msg, err, execs)
	}
	c = withHooks(&corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"fail", "now"}}}, nil)
	msg, err := r.PostStart(ctx, pod, c, "id", "")
	want := `Exec lifecycle hook ([fail now]) for Container "main" in Pod "web_default(u1)" failed - error: command 'fail now' exited with 3: oops
, message: "out\noops\n"`
	if msg != want || err == nil {
		t.Errorf("failing exec hook:\n%s\nwant\n%s", msg, want)
	}

	// HTTP: reaching the server is enough, whatever the status.
	var mu sync.Mutex
	var reqs []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		reqs = append(reqs, req)
		mu.Unlock()
		w.WriteHeader(500)
	}))
	requests := func() []*http.Request {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reqs)
	}
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	hook := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/start", Port: intstr.FromInt32(int32(port))}}
	msg, err = r.PostStart(ctx, pod, withHooks(hook, nil), "id", "127.0.0.1")
	if got := requests(); msg != "" || err != nil || len(got) != 1 || got[0].URL.Path != "/start" || got[0].UserAgent() != "kube-lifecycle/1.37" {
		t.Errorf("http hook: %q %v %d requests", msg, err, len(got))
	}
	// An HTTPS hook answered in HTTP is retried in HTTP.
	hook.HTTPGet.Scheme = corev1.URISchemeHTTPS
	msg, err = r.PostStart(ctx, pod, withHooks(hook, nil), "id", "127.0.0.1")
	if got := requests(); msg != "" || err != nil || len(got) != 2 || len(events) != 1 || !strings.HasPrefix(events[0], "Warning LifecycleHTTPFallback request to HTTPS lifecycle hook 127.0.0.1:") {
		t.Errorf("https hook on http: %q %v %d requests, events %q", msg, err, len(got), events)
	}
	closed := closedPort(t)
	hook = &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/start", Port: intstr.FromInt32(int32(closed))}}
	msg, err = r.PostStart(ctx, pod, withHooks(hook, nil), "id", "127.0.0.1")
	want = fmt.Sprintf(`HTTP lifecycle hook (/start) for Container "main" in Pod "web_default(u1)" failed - error: Get "http://127.0.0.1:%d/start": dial tcp 127.0.0.1:%d: connect: connection refused`, closed, closed)
	if msg != want || err == nil {
		t.Errorf("refused http hook:\n%s\nwant\n%s", msg, want)
	}
	if msg, err := r.PostStart(ctx, pod, withHooks(hook, nil), "id", ""); err == nil || !strings.Contains(msg, "failed to find networking container") {
		t.Errorf("http hook without a pod IP: %q %v", msg, err)
	}

	// PreStop: within grace; a hook that outlasts it ends with it, quietly.
	for _, h := range []*corev1.LifecycleHandler{
		{Sleep: &corev1.SleepAction{Seconds: 30}},
		{Exec: &corev1.ExecAction{Command: []string{"hang"}}},
	} {
		start := time.Now()
		msg, err := r.PreStop(ctx, pod, withHooks(nil, h), "id", "", 200*time.Millisecond)
		if d := time.Since(start); msg != "" || err != nil || d < 200*time.Millisecond || d > 2*time.Second {
			t.Errorf("preStop past grace: %q %v after %v", msg, err, d)
		}
	}
	start := time.Now()
	if msg, err := r.PreStop(ctx, pod, withHooks(nil, &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}), "id", "", 10*time.Second); msg != "" || err != nil || time.Since(start) < time.Second {
		t.Errorf("sleep hook: %q %v after %v", msg, err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	msg, err = r.PreStop(cctx, pod, withHooks(nil, &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 30}}), "id", "", 10*time.Second)
	if msg != `Sleep lifecycle hook (30) for Container "main" in Pod "web_default(u1)" failed - error: container terminated before sleep hook finished` || err == nil {
		t.Errorf("sleep hook cut short: %q %v", msg, err)
	}
	msg, err = r.PreStop(ctx, pod, withHooks(nil, &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}), "id", "", time.Second)
	if !strings.HasPrefix(msg, "Cannot run handler: invalid handler: ") || err == nil {
		t.Errorf("tcpSocket hook: %q %v", msg, err)
	}
}
