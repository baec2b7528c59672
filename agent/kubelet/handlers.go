package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Probe and hook actions (handlers.go): what a probe or a lifecycle hook
// does to a container, as upstream's kubelet does it (pkg/probe and
// pkg/kubelet/lifecycle). An exec action runs a command in the container;
// httpGet, tcpSocket and grpc reach the pod's IP (or httpGet's host) from
// the node; sleep (hooks only) waits. The probes' outcomes and messages
// are upstream's, word for word, because students compare them with
// what a real cluster shows: "HTTP probe failed with statuscode: 500",
// "dial tcp 10.42.0.7:8080: connect: connection refused", an exec
// command's output, `command "cat /tmp/healthy" timed out`.

// kubeMinorVersion is the Kubernetes version in the probes' and hooks'
// User-Agent (kube-probe/1.37, kube-lifecycle/1.37).
const kubeMinorVersion = "1.37"

// maxProbeOutput bounds what is kept of an exec probe's output and read
// of an HTTP response's body (upstream's 10 KiB).
const maxProbeOutput = 10 << 10

// probeStatus is one probe's outcome.
type probeStatus int

const (
	probeUnknown probeStatus = iota // the probe could not run
	probeSuccess
	probeWarning // success, with a warning event (an HTTP redirect not followed)
	probeFailure
)

// String is upstream's word for the outcome (in "resulted in unknown
// state" messages).
func (s probeStatus) String() string {
	switch s {
	case probeSuccess:
		return "success"
	case probeWarning:
		return "warning"
	case probeFailure:
		return "failure"
	}
	return "unknown"
}

// execFunc runs a command in a running container (podRuntime.Exec).
type execFunc func(ctx context.Context, id string, opts execOptions) (int, error)

// eventFunc records an event on a pod.
type eventFunc func(pod *corev1.Pod, eventType, reason, message string)

// actionRunner runs probe and lifecycle-hook actions against containers.
// It is safe for concurrent use.
type actionRunner struct {
	exec  execFunc
	event eventFunc // nil: no events
	log   *slog.Logger
	// probeTransport serves the HTTP probes: no proxy, no keep-alives,
	// no certificate verification, as upstream's.
	probeTransport *http.Transport
	// hookClient serves the HTTP hooks: no certificate verification,
	// redirects followed on the same host only.
	hookClient *http.Client
}

// newActionRunner returns a runner that execs with exec and records
// events (the hooks' LifecycleHTTPFallback) with event, which may be nil.
func newActionRunner(exec execFunc, event eventFunc, log *slog.Logger) *actionRunner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	insecureTLS := &tls.Config{InsecureSkipVerify: true} // upstream's probes and hooks do not verify
	return &actionRunner{
		exec: exec, event: event, log: log,
		probeTransport: &http.Transport{
			TLSClientConfig:     insecureTLS,
			DisableKeepAlives:   true,
			DisableCompression:  true,
			Proxy:               nil,
			DialContext:         probeDialer().DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		hookClient: &http.Client{
			Transport:     &http.Transport{TLSClientConfig: insecureTLS, Proxy: nil},
			CheckRedirect: sameHostRedirects,
		},
	}
}

// probeDialer dials with SO_LINGER 1 s, so that the many short probe
// connections do not pile up in TIME_WAIT (as upstream's ProbeDialer).
func probeDialer() *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 1})
		})
	}}
}

// probe runs p once against container c (its running container id, in
// the pod with podIP). The error says the probe could not run at all
// (a port that does not resolve, an exec that failed to start); its
// status is then probeUnknown.
func (r *actionRunner) probe(ctx context.Context, p *corev1.Probe, c *corev1.Container, id, podIP string) (probeStatus, string, error) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	switch {
	case p.Exec != nil:
		return r.execProbe(ctx, p.Exec, c, id, timeout)
	case p.HTTPGet != nil:
		return r.httpProbe(ctx, p.HTTPGet, c, podIP, timeout)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return probeUnknown, "", err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		return tcpProbe(ctx, host, port, timeout)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return grpcProbe(ctx, podIP, service, int(p.GRPC.Port), timeout)
	}
	return probeUnknown, "", fmt.Errorf("missing probe handler for container %q", c.Name)
}

// execProbe runs the command (its $(VAR)s expanded against the
// container's plain env values, as upstream) with the timeout. Exit 0 is
// success; the combined output, up to 10 KiB, is the message.
func (r *actionRunner) execProbe(ctx context.Context, a *corev1.ExecAction, c *corev1.Container, id string, timeout time.Duration) (probeStatus, string, error) {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	cmd := make([]string, len(a.Command))
	for i, arg := range a.Command {
		cmd[i] = expand(arg, env)
	}
	out := &boundedBuffer{max: maxProbeOutput}
	code, err := r.exec(ctx, id, execOptions{Cmd: cmd, Stdout: out, Stderr: out, Timeout: timeout})
	switch {
	case errors.Is(err, errExecTimeout):
		return probeFailure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
	case err != nil:
		return probeUnknown, "", err
	case code != 0:
		return probeFailure, out.String(), nil
	}
	return probeSuccess, out.String(), nil
}

// httpProbe GETs the action's URL: 2xx and 3xx are success, a redirect
// to another host is not followed and counts as success with a warning.
func (r *actionRunner) httpProbe(ctx context.Context, a *corev1.HTTPGetAction, c *corev1.Container, podIP string, timeout time.Duration) (probeStatus, string, error) {
	req, err := newHTTPGetRequest(ctx, a, c, podIP, "probe")
	if err != nil {
		return probeUnknown, "", err
	}
	client := &http.Client{Timeout: timeout, Transport: r.probeTransport, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		// Timeouts and refused connections are failures.
		return probeFailure, err.Error(), nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxProbeOutput+1))
	if err != nil {
		return probeFailure, "", err
	}
	if len(body) > maxProbeOutput {
		body = body[:maxProbeOutput] // the rest is not read
	}
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			return probeWarning, "Probe terminated redirects, Response body: " + string(body), nil
		}
		return probeSuccess, string(body), nil
	}
	// Upstream keeps the body out of the message (it may hold secrets).
	return probeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// tcpProbe opens a TCP connection and closes it.
func tcpProbe(ctx context.Context, host string, port int, timeout time.Duration) (probeStatus, string, error) {
	d := probeDialer()
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return probeFailure, err.Error(), nil
	}
	conn.Close()
	return probeSuccess, "", nil
}

// grpcProbe asks the gRPC health checking protocol (grpc.health.v1.Health
// Check) whether service is SERVING, in plain text, within the timeout.
// Every problem is a failure with grpc_health_probe's wording.
func grpcProbe(ctx context.Context, host, service string, port int, timeout time.Duration) (probeStatus, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithUserAgent("kube-probe/"+kubeMinorVersion),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return probeDialer().DialContext(ctx, "tcp", a)
		}))
	if err != nil {
		return probeFailure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
	}
	defer conn.Close()
	// Connect before the call, retrying until the timeout, as upstream's
	// blocking dial does.
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			return probeFailure, fmt.Sprintf("timeout: failed to connect service %q within %v: %+v", addr, timeout, ctx.Err()), nil
		}
	}
	resp, err := grpchealth.NewHealthClient(conn).Check(metadata.NewOutgoingContext(ctx, metadata.MD{}),
		&grpchealth.HealthCheckRequest{Service: service})
	if err != nil {
		if st, ok := status.FromError(err); ok {
			switch st.Code() {
			case codes.Unimplemented:
				return probeFailure, "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): " + st.Message(), nil
			case codes.DeadlineExceeded:
				return probeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
			}
		}
		return probeFailure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
	}
	if resp.GetStatus() != grpchealth.HealthCheckResponse_SERVING {
		return probeFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return probeSuccess, "service healthy", nil
}

// newHTTPGetRequest is upstream's NewRequestForHTTPGetAction: the
// action's scheme (http by default), host (the pod's IP by default),
// resolved port and path, its headers, and a User-Agent kube-<purpose>/<version>
// and Accept */* unless the headers set them (an empty Accept removes it).
func newHTTPGetRequest(ctx context.Context, a *corev1.HTTPGetAction, c *corev1.Container, podIP, purpose string) (*http.Request, error) {
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := a.Host
	if host == "" {
		host = podIP
	}
	port, err := resolvePort(a.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		u = &url.URL{Path: a.Path} // too late to reject a bad path: pass it as it is
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	headers := http.Header{}
	for _, h := range a.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", "kube-"+purpose+"/"+kubeMinorVersion)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// sameHostRedirects follows redirects on the same host only, at most 10;
// a redirect elsewhere ends with the redirect response.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// resolvePort is upstream's ResolveContainerPort: a number, or the name
// of one of the container's ports, or a number in a string.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, err
			}
			port = n
		}
	default:
		return -1, fmt.Errorf("intOrString had no kind: %+v", p)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("invalid port number: %v", port)
}

// boundedBuffer keeps the first max bytes written to it, from any
// number of goroutines (an exec's stdout and stderr copiers).
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lifecycle hooks.

// maxHookOutput bounds what is kept of an exec hook's output.
const maxHookOutput = 16 << 10

// PostStart runs the container's postStart hook, if it has one, right
// after the container started. On failure it returns upstream's message
// (`Exec lifecycle hook ([...]) for Container "c" in Pod "p_ns(uid)"
// failed - error: ..., message: "..."`); the kubelet then records
// FailedPostStartHook and kills the container.
func (r *actionRunner) PostStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string) (string, error) {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return "", nil
	}
	return r.runHook(ctx, c.Lifecycle.PostStart, pod, c, id, podIP)
}

// PreStop runs the container's preStop hook, if it has one, for at most
// grace: when grace runs out first the hook is cancelled and PreStop
// returns no error (upstream's kubelet then goes on stopping the
// container without an event). On failure it returns upstream's message,
// for a FailedPreStopHook event.
func (r *actionRunner) PreStop(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, grace time.Duration) (string, error) {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return "", nil
	}
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	msg, err := r.runHook(hctx, c.Lifecycle.PreStop, pod, c, id, podIP)
	if err != nil && ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
		r.log.Info("PreStop hook not completed in grace period", "pod", podDesc(pod), "container", c.Name, "grace", grace)
		return "", nil
	}
	return msg, err
}

// runHook runs a lifecycle handler; the message says what failed, in
// upstream's words.
func (r *actionRunner) runHook(ctx context.Context, h *corev1.LifecycleHandler, pod *corev1.Pod, c *corev1.Container, id, podIP string) (string, error) {
	switch {
	case h.Exec != nil:
		// The hook's own command, not expanded (as upstream).
		stdout := &boundedBuffer{max: maxHookOutput}
		stderr := &boundedBuffer{max: maxHookOutput}
		code, err := r.exec(ctx, id, execOptions{Cmd: h.Exec.Command, Stdout: stdout, Stderr: stderr})
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, stderr.String())
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, podDesc(pod), err, stdout.String()+stderr.String()), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if err := r.httpHook(ctx, h.HTTPGet, pod, c, podIP); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v",
				h.HTTPGet.Path, c.Name, podDesc(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v",
				h.Sleep.Seconds, c.Name, podDesc(pod), err), err
		}
	}
	// tcpSocket is accepted by the API for compatibility but never run.
	err := fmt.Errorf("invalid handler: %v", h)
	return fmt.Sprintf("Cannot run handler: %v", err), err
}

// httpHook GETs the hook's URL. As upstream, only reaching the server
// counts: the status code is not looked at. An HTTPS hook answered in
// plain HTTP is retried in HTTP, with a LifecycleHTTPFallback event.
func (r *actionRunner) httpHook(ctx context.Context, a *corev1.HTTPGetAction, pod *corev1.Pod, c *corev1.Container, podIP string) error {
	if a.Host == "" && podIP == "" {
		return errors.New("failed to find networking container: the pod has no IP")
	}
	req, err := newHTTPGetRequest(ctx, a, c, podIP, "lifecycle")
	if err != nil {
		return err
	}
	resp, err := r.hookClient.Do(req)
	discardBody(resp)
	var uerr *url.Error
	if err != nil && errors.As(err, &uerr) && strings.Contains(uerr.Err.Error(), "server gave HTTP response to HTTPS client") {
		req := req.Clone(ctx)
		req.URL.Scheme = "http"
		req.Header.Del("Authorization")
		resp, herr := r.hookClient.Do(req)
		discardBody(resp)
		if herr == nil {
			if r.event != nil {
				r.event(pod, corev1.EventTypeWarning, "LifecycleHTTPFallback",
					fmt.Sprintf("request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", req.URL.Host))
			}
			err = nil
		}
	}
	return err
}

func discardBody(resp *http.Response) {
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	if resp.ContentLength <= maxProbeOutput {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeOutput))
	}
}

// podDesc is how upstream's kubelet names a pod in messages.
func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
