package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestProbesOnContainerd probes real containers at the pod's IP: an exec
// liveness probe that starts failing when the container removes the file
// it reads, an httpGet startup probe and a tcpSocket readiness probe
// against busybox's httpd; then lifecycle hooks in the same containers.
func TestProbesOnContainerd(t *testing.T) {
	env := startRuntime(t)
	rt := env.rt
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	probe := func(h corev1.ProbeHandler, failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: failures}
	}
	pod := testPod("probed",
		corev1.Container{Name: "live",
			Command:       []string{"sh", "-c", "echo ok > /tmp/healthy; sleep 3; busybox rm /tmp/healthy; sleep 600"},
			LivenessProbe: probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}}, 2)},
		corev1.Container{Name: "web",
			Command:        []string{"sh", "-c", "sleep 3; busybox mkdir -p /tmp/www; echo hello > /tmp/www/index.html; exec busybox httpd -f -p 8080 -h /tmp/www"},
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			StartupProbe:   probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromString("http")}}, 30),
			ReadinessProbe: probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, 3)},
	)
	sb, err := rt.RunSandbox(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		id, err := rt.StartContainer(ctx, pod, c, sb, startOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids[c.Name] = id
		waitState(t, rt, id, func(s containerState) bool { return s.Running != nil })
	}

	var mu sync.Mutex
	var events []string
	changed := 0
	m := newProbeManager(probeConfig{
		Exec: rt.Exec,
		Event: func(_ *corev1.Pod, typ, reason, msg string) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, typ+" "+reason+" "+msg)
		},
		Changed: func(uid types.UID) {
			mu.Lock()
			defer mu.Unlock()
			if uid == pod.UID {
				changed++
			}
		},
	})
	defer m.Stop()
	m.Sync(pod, sb.IP, ids)
	hasEvent := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if strings.Contains(e, s) {
				return true
			}
		}
		return false
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				mu.Lock()
				t.Fatalf("timed out waiting for %s; events:\n%s", what, strings.Join(events, "\n"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// web: not started while httpd is not up (its probes fail at the
	// pod's IP), then started and ready.
	if m.Started(pod.UID, "web", ids["web"]) || m.Ready(pod.UID, "web", ids["web"]) {
		t.Error("web started before its startup probe passed")
	}
	if !m.Ready(pod.UID, "live", ids["live"]) {
		t.Error("live, with no readiness probe, is not ready")
	}
	refused := fmt.Sprintf(`Warning Unhealthy Startup probe failed: Get "http://%s:8080/index.html": dial tcp %s:8080: connect: connection refused`, sb.IP, sb.IP)
	wait("the startup probe to fail at the pod's IP", func() bool { return hasEvent(refused) })
	wait("web to start and be ready", func() bool { return m.Ready(pod.UID, "web", ids["web"]) })

	// live: its liveness fails once /tmp/healthy is gone.
	wait("the liveness failure", func() bool { _, failed := m.Failed(pod.UID, "live", ids["live"]); return failed })
	msg, _ := m.Failed(pod.UID, "live", ids["live"])
	r := m.Result(pod.UID, "live", ids["live"])
	const catErr = "cat: can't open '/tmp/healthy': No such file or directory\n"
	if msg != "Container live failed liveness probe" || r.Message != catErr {
		t.Errorf("liveness failure: %q, last output %q", msg, r.Message)
	}
	if !hasEvent("Warning Unhealthy Liveness probe failed: " + catErr) {
		t.Errorf("no liveness failure event: %q", events)
	}
	if _, failed := m.Failed(pod.UID, "web", ids["web"]); failed {
		t.Error("web failed")
	}
	mu.Lock()
	if changed < 2 {
		t.Errorf("Changed called %d times", changed)
	}
	mu.Unlock()

	// An exec probe past its timeout, in a real container.
	runner := newActionRunner(rt.Exec, nil, nil)
	slow := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}}
	start := time.Now()
	if st, out, err := runner.probe(ctx, slow, &pod.Spec.Containers[1], ids["web"], sb.IP); st != probeFailure || out != `command "sleep 5" timed out` || err != nil {
		t.Errorf("slow exec probe: %v %q %v", st, out, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the 1 s exec probe took %v", d)
	}

	// Hooks: exec and httpGet in the web container.
	web := pod.Spec.Containers[1].DeepCopy()
	web.Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo started > /tmp/poststart"}}},
		PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromString("http")}},
	}
	if msg, err := runner.PostStart(ctx, pod, web, ids["web"], sb.IP); msg != "" || err != nil {
		t.Errorf("postStart: %q %v", msg, err)
	}
	var out bytes.Buffer
	if code, err := rt.Exec(ctx, ids["web"], execOptions{Cmd: []string{"cat", "/tmp/poststart"}, Stdout: &out}); code != 0 || err != nil || out.String() != "started\n" {
		t.Errorf("the postStart hook's file: %d %v %q", code, err, out.String())
	}
	if msg, err := runner.PreStop(ctx, pod, web, ids["web"], sb.IP, 5*time.Second); msg != "" || err != nil {
		t.Errorf("preStop: %q %v", msg, err)
	}
	web.Lifecycle.PostStart.Exec.Command = []string{"sh", "-c", "echo partial; echo bad >&2; exit 2"}
	msg, err = runner.PostStart(ctx, pod, web, ids["web"], sb.IP)
	want := fmt.Sprintf(`Exec lifecycle hook ([sh -c echo partial; echo bad >&2; exit 2]) for Container "web" in Pod "probed_default(%s)" failed - error: command 'sh -c echo partial; echo bad >&2; exit 2' exited with 2: bad
, message: "partial\nbad\n"`, pod.UID)
	if msg != want || err == nil {
		t.Errorf("failing postStart:\n%s\nwant\n%s", msg, want)
	}

	m.Remove(pod.UID)
	if m.Ready(pod.UID, "web", ids["web"]) {
		t.Error("a removed pod is ready")
	}
}
