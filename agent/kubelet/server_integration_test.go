package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"labctl/internal/syncbuf"
)

// TestServerWithContainers drives the kubelet's API, as the API server
// and client-go do, against a pod of real containers: logs (tail,
// follow), exec and attach over SPDY and WebSocket, port-forward over
// SPDY and tunnelled through a WebSocket, the stats summary.
func TestServerWithContainers(t *testing.T) {
	env := startRuntime(t)
	rt := env.rt
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pod := testPod("srv",
		corev1.Container{Name: "app", Command: []string{"sh", "-c",
			"for i in 1 2 3 4 5; do echo line$i; done; while [ ! -e /tmp/more ]; do sleep 0.1; done; echo more; sleep 0.5; echo last"}},
		corev1.Container{Name: "web", Command: []string{"sh", "-c", "echo hello-pf > /tmp/index.html; exec busybox httpd -f -p 8080 -h /tmp"}},
		corev1.Container{Name: "reader", Stdin: true, StdinOnce: true, Command: []string{"sh", "-c", "read x; echo got $x"}},
		corev1.Container{Name: "echo", Stdin: true, Command: []string{"sh", "-c", "while read x; do echo got2 $x; done"}},
		corev1.Container{Name: "term", Stdin: true, StdinOnce: true, TTY: true, Command: []string{"sh"}},
		corev1.Container{Name: "spin", Command: []string{"sh", "-c", "while true; do :; done"},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
	)
	sb, err := rt.RunSandbox(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakePods{pods: []*corev1.Pod{pod}}
	// The pod's status as the kubelet would report it, from the runtime.
	fp.status = func(p *corev1.Pod) corev1.PodStatus {
		var st corev1.PodStatus
		for _, c := range p.Spec.Containers {
			runs, _ := fp.ContainerRuns(ctx, p.UID, c.Name)
			var cs containerState
			if len(runs) > 0 {
				cs, _ = rt.ContainerState(ctx, runs[len(runs)-1])
			}
			st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(c, cs, false))
		}
		return st
	}
	ids := map[string]string{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		id, err := rt.StartContainer(ctx, pod, c, sb, startOptions{})
		if err != nil {
			t.Fatalf("start %s: %v", c.Name, err)
		}
		ids[c.Name] = id
		fp.addRun(pod.UID, c.Name, id)
	}
	ts := startTestServer(t, fp, rt)
	certPEM, keyPEM := ts.ca.clientPEM(t, apiServerKubeletClient)
	cfg := &rest.Config{Host: ts.srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ts.caPEM, CertData: certPEM, KeyData: keyPEM}}
	client := ts.dialer(ptrTo(ts.ca.client(t, apiServerKubeletClient)))
	base := ts.srv.URL

	t.Run("logs", func(t *testing.T) {
		waitLog(t, containerLogPath(rt.cfg.LogDir, "default", "srv", pod.UID, "app", 0), "stdout", "line5")
		if code, body := get(t, client, base+"/containerLogs/default/srv/app?tailLines=2"); code != 200 || body != "line4\nline5\n" {
			t.Errorf("tail 2: %d %q", code, body)
		}
		if code, body := get(t, client, base+"/containerLogs/default/srv/app?limitBytes=8"); code != 200 || body != "line1\nli" {
			t.Errorf("limitBytes 8: %d %q", code, body)
		}
		if code, body := get(t, client, base+"/containerLogs/default/srv/app?previous=true"); code != 400 || body != `previous terminated container "app" in pod "srv" not found` {
			t.Errorf("previous: %d %q", code, body)
		}
		// Follow: the lines there, then those to come, until the
		// container exits.
		resp, err := client.Get(base + "/containerLogs/default/srv/app?follow=true&timestamps=true")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		next := func() string {
			if !sc.Scan() {
				t.Fatalf("the follow ended after %q: %v", lines, sc.Err())
			}
			lines = append(lines, sc.Text())
			_, text, _ := strings.Cut(sc.Text(), " ")
			return text
		}
		for i := 1; i <= 5; i++ {
			if l := next(); l != fmt.Sprintf("line%d", i) {
				t.Fatalf("line %d: %q", i, l)
			}
		}
		if _, err := time.Parse(rfc3339NanoFixed, strings.Fields(lines[0])[0]); err != nil {
			t.Errorf("timestamp: %q", lines[0])
		}
		if code, err := rt.Exec(ctx, ids["app"], execOptions{Cmd: []string{"sh", "-c", "echo > /tmp/more"}}); code != 0 || err != nil {
			t.Fatalf("exec: %d %v", code, err)
		}
		if l := next(); l != "more" {
			t.Errorf("after the exec: %q", l)
		}
		if l := next(); l != "last" {
			t.Errorf("the last line: %q", l)
		}
		done := make(chan bool, 1)
		go func() { done <- sc.Scan() }()
		select {
		case more := <-done:
			if more {
				t.Errorf("more after the last line: %q", sc.Text())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the follow did not end when the container exited")
		}
		// Exited: still readable, by its terminated status.
		if code, body := get(t, client, base+"/containerLogs/default/srv/app?tailLines=1"); code != 200 || body != "last\n" {
			t.Errorf("the log of the exited container: %d %q", code, body)
		}
	})

	execURL := func(container string, q url.Values) *url.URL {
		u, _ := url.Parse(base + "/exec/default/srv/" + container + "?" + q.Encode())
		return u
	}
	t.Run("exec over SPDY", func(t *testing.T) {
		ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", execURL("web", url.Values{
			"command": {"sh", "-c", "cat; echo err >&2; exit 3"}, "input": {"1"}, "output": {"1"}, "error": {"1"}}))
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("from stdin\n"), Stdout: &out, Stderr: &errb})
		var ce exec.CodeExitError
		if !errors.As(err, &ce) || ce.Code != 3 || out.String() != "from stdin\n" || errb.String() != "err\n" {
			t.Errorf("exec: %v stdout %q stderr %q", err, out.String(), errb.String())
		}
		// With a terminal.
		ex, err = remotecommand.NewSPDYExecutor(cfg, "POST", execURL("web", url.Values{
			"command": {"sh", "-c", "[ -t 1 ] && echo is-a-tty"}, "output": {"1"}, "tty": {"1"}}))
		if err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Tty: true}); err != nil || !strings.Contains(out.String(), "is-a-tty") {
			t.Errorf("exec with a tty: %v %q", err, out.String())
		}
	})
	t.Run("exec over WebSocket", func(t *testing.T) {
		ex, err := remotecommand.NewWebSocketExecutor(cfg, "GET", execURL("web", url.Values{
			"command": {"cat"}, "input": {"1"}, "output": {"1"}, "error": {"1"}}).String())
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		// cat ends when its stdin does: the v5 protocol's close signal.
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("over a websocket\n"), Stdout: &out, Stderr: io.Discard})
		if err != nil || out.String() != "over a websocket\n" {
			t.Errorf("exec: %v %q", err, out.String())
		}
		ex, _ = remotecommand.NewWebSocketExecutor(cfg, "GET", execURL("web", url.Values{
			"command": {"sh", "-c", "exit 4"}, "output": {"1"}}).String())
		var ce exec.CodeExitError
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); !errors.As(err, &ce) || ce.Code != 4 {
			t.Errorf("exit code over WebSocket: %v", err)
		}
	})

	attachURL := func(container string) *url.URL {
		u, _ := url.Parse(base + "/attach/default/srv/" + container + "?input=1&output=1&error=1")
		return u
	}
	t.Run("attach over SPDY, stdinOnce", func(t *testing.T) {
		ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", attachURL("reader"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		// The container reads a line and exits; the attach ends with it.
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: io.Discard})
		if err != nil || out.String() != "got hello\n" {
			t.Errorf("attach: %v %q", err, out.String())
		}
		st := waitState(t, rt, ids["reader"], func(s containerState) bool { return s.Terminated != nil })
		if st.Terminated.ExitCode != 0 {
			t.Errorf("reader: %+v", st.Terminated)
		}
		waitLog(t, containerLogPath(rt.cfg.LogDir, "default", "srv", pod.UID, "reader", 0), "stdout", "got hello")
	})
	t.Run("attach over WebSocket", func(t *testing.T) {
		// Without stdinOnce the container's stdin outlives each attach.
		for _, word := range []string{"one", "two"} {
			ex, err := remotecommand.NewWebSocketExecutor(cfg, "GET", attachURL("echo").String())
			if err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			var out syncbuf.Buffer
			done := make(chan error, 1)
			go func() {
				done <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: pr, Stdout: &out, Stderr: io.Discard})
			}()
			want := "got2 " + word + "\n"
			deadline := time.Now().Add(20 * time.Second)
			for out.String() != want && time.Now().Before(deadline) {
				// Written until the attach is in place and the answer comes.
				select {
				case err := <-done:
					t.Fatalf("attach %s ended: %v %q", word, err, out.String())
				default:
				}
				go pw.Write([]byte(word + "\n"))
				time.Sleep(300 * time.Millisecond)
			}
			if s := out.String(); !strings.HasPrefix(s, want) {
				t.Fatalf("attach %s: %q", word, s)
			}
			pw.Close() // detach
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("detach %s: %v", word, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("attach %s did not end with its stdin", word)
			}
		}
		if st, err := rt.ContainerState(ctx, ids["echo"]); err != nil || st.Running == nil {
			t.Errorf("the echo container after two attaches: %+v %v", st.Terminated, err)
		}
	})

	t.Run("attach with a terminal", func(t *testing.T) {
		u, _ := url.Parse(base + "/attach/default/srv/term?input=1&output=1&tty=1")
		ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sizes := &fixedSize{size: remotecommand.TerminalSize{Width: 100, Height: 40}}
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("echo tty-$((40+2)); sleep 0.3; busybox stty size\nexit 5\n"),
			Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		if err != nil || !strings.Contains(out.String(), "tty-42\r\n40 100\r\n") {
			t.Errorf("attach with a tty: %v %q", err, out.String())
		}
		st := waitState(t, rt, ids["term"], func(s containerState) bool { return s.Terminated != nil })
		if st.Terminated.ExitCode != 5 {
			t.Errorf("the shell's exit: %+v", st.Terminated)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		pfURL, _ := url.Parse(base + "/portForward/default/srv")
		transport, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tunnel, err := portforward.NewSPDYOverWebsocketDialer(pfURL, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for name, dialer := range map[string]httpstream.Dialer{
			"SPDY":                spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", pfURL),
			"SPDY over WebSocket": tunnel,
		} {
			stop, ready := make(chan struct{}), make(chan struct{})
			pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- pf.ForwardPorts() }()
			select {
			case <-ready:
			case err := <-errc:
				t.Fatalf("%s: %v", name, err)
			case <-time.After(20 * time.Second):
				t.Fatalf("%s: not ready", name)
			}
			ports, _ := pf.GetPorts()
			for range 2 { // two connections over one forward
				code, body := get(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
				if code != 200 || body != "hello-pf\n" {
					t.Errorf("%s: %d %q", name, code, body)
				}
			}
			close(stop)
			<-errc
		}
	})

	t.Run("stats summary", func(t *testing.T) {
		code, body := get(t, client, base+"/stats/summary")
		var sum statsv1alpha1.Summary
		if code != 200 || json.Unmarshal([]byte(body), &sum) != nil {
			t.Fatalf("%d %s", code, body)
		}
		n := sum.Node
		if n.NodeName != "node1" || n.CPU == nil || n.CPU.UsageCoreNanoSeconds == nil || n.CPU.UsageNanoCores == nil ||
			n.Memory == nil || *n.Memory.WorkingSetBytes == 0 || n.Fs == nil || n.Runtime == nil || n.Runtime.ImageFs == nil ||
			*n.Runtime.ImageFs.UsedBytes == 0 {
			t.Errorf("node stats: %s", body)
		}
		var ps *statsv1alpha1.PodStats
		for i := range sum.Pods {
			if sum.Pods[i].PodRef.UID == string(pod.UID) {
				ps = &sum.Pods[i]
			}
		}
		if ps == nil {
			t.Fatalf("no stats of the pod: %s", body)
		}
		if ps.CPU == nil || *ps.CPU.UsageCoreNanoSeconds == 0 || *ps.CPU.UsageNanoCores == 0 || ps.Memory == nil || *ps.Memory.WorkingSetBytes == 0 {
			t.Errorf("pod CPU and memory: %+v %+v", ps.CPU, ps.Memory)
		}
		if ps.Network == nil || ps.Network.Name != "eth0" || ps.Network.RxBytes == nil {
			t.Errorf("pod network: %+v", ps.Network)
		}
		if ps.EphemeralStorage == nil || *ps.EphemeralStorage.UsedBytes == 0 {
			t.Errorf("pod ephemeral storage: %+v", ps.EphemeralStorage)
		}
		byName := map[string]statsv1alpha1.ContainerStats{}
		for _, c := range ps.Containers {
			byName[c.Name] = c
		}
		spin, ok := byName["spin"]
		if !ok || spin.CPU == nil || *spin.CPU.UsageNanoCores == 0 || spin.Memory == nil || spin.Rootfs == nil || spin.Logs == nil {
			t.Errorf("the spinning container: %+v", spin)
		} else {
			// At most its limit, 100m, and then some for the sampling.
			t.Logf("spin: %d nano cores", *spin.CPU.UsageNanoCores)
			if *spin.CPU.UsageNanoCores > 2e8 {
				t.Errorf("spin uses %d nano cores, over its limit", *spin.CPU.UsageNanoCores)
			}
		}
		if _, ok := byName["app"]; ok {
			t.Error("stats of an exited container")
		}
		// only_cpu_and_memory leaves out the rest.
		_, body = get(t, client, base+"/stats/summary?only_cpu_and_memory=true")
		sum = statsv1alpha1.Summary{}
		json.Unmarshal([]byte(body), &sum)
		if sum.Node.CPU == nil || sum.Node.Fs != nil || len(sum.Pods) != 1 || sum.Pods[0].Network != nil || sum.Pods[0].Memory == nil {
			t.Errorf("only_cpu_and_memory: %s", body)
		}
	})

	t.Run("pods", func(t *testing.T) {
		_, body := get(t, client, base+"/runningpods/")
		var list corev1.PodList
		json.Unmarshal([]byte(body), &list)
		if len(list.Items) != 1 || list.Items[0].UID != pod.UID || len(list.Items[0].Spec.Containers) != 6 || list.Items[0].Spec.Containers[0].Image != "lktest:1" {
			t.Errorf("running pods: %s", body)
		}
	})
}

// fixedSize is a terminal of one size.
type fixedSize struct {
	size remotecommand.TerminalSize
	sent bool
}

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		select {} // no more: the stream ends without another size
	}
	f.sent = true
	return &f.size
}
