package apiserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	apihttpstream "k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	clientexec "k8s.io/client-go/util/exec"
	criportforward "k8s.io/cri-streaming/pkg/streaming/portforward"
	crirc "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/utils/ptr"

	"golang.org/x/sys/unix"
	streamhttp "k8s.io/streaming/pkg/httpstream"
	utilexec "k8s.io/utils/exec"

	"labctl/server/apiserver"
	"labctl/server/authn"
	"labctl/server/pki"
)

// ---- a fake kubelet

// fakeKubelet serves, over TLS that asks for a client certificate from
// the cluster CA, what the API server asks a kubelet for: container logs,
// exec, attach and port-forward through k8s.io/cri-streaming (as labctl's
// kubelet serves them) over an in-memory runtime, and /stats/summary.
type fakeKubelet struct {
	srv  *httptest.Server
	port int

	mu       sync.Mutex
	requests []kubeletRequest
	// release lets the second line of a followed log of container
	// "follow" out.
	release chan struct{}
}

// kubeletRequest is what the fake kubelet saw of one request.
type kubeletRequest struct {
	uri        string // path and query
	clientCN   string
	clientOrgs []string
	authz      string // the Authorization header
}

func newFakeKubelet(t *testing.T, clientCAs *x509.CertPool) *fakeKubelet {
	k := &fakeKubelet{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.logs)
	mux.HandleFunc("/exec/{ns}/{pod}/{uid}/{container}", k.exec)
	mux.HandleFunc("/attach/{ns}/{pod}/{uid}/{container}", k.attach)
	mux.HandleFunc("/portForward/{ns}/{pod}/{uid}", k.portForward)
	mux.HandleFunc("GET /stats/summary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"node":{"nodeName":"node-1"},"query":%q}`, r.URL.RawQuery)
	})
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen := kubeletRequest{uri: r.URL.RequestURI(), authz: r.Header.Get("Authorization")}
		if len(r.TLS.PeerCertificates) > 0 {
			seen.clientCN, seen.clientOrgs = r.TLS.PeerCertificates[0].Subject.CommonName, r.TLS.PeerCertificates[0].Subject.Organization
		}
		k.mu.Lock()
		k.requests = append(k.requests, seen)
		k.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	k.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	k.port = k.srv.Listener.Addr().(*net.TCPAddr).Port
	return k
}

// last returns the last request the kubelet saw.
func (k *fakeKubelet) last(t *testing.T) kubeletRequest {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.requests) == 0 {
		t.Fatal("the kubelet got no request")
	}
	return k.requests[len(k.requests)-1]
}

func (k *fakeKubelet) logs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	switch {
	case container == "waiting":
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, pod), http.StatusBadRequest)
	case container == "follow" && r.URL.Query().Get("follow") == "true":
		fmt.Fprintln(w, "line 1")
		http.NewResponseController(w).Flush()
		select {
		case <-k.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, "line 2")
	default:
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "%s/%s/%s line %d\n", ns, pod, container, i)
		}
	}
}

// notRunning refuses a stream to container "stopped" as upstream's
// kubelet does (streaming.WriteError of "container not found").
func notRunning(w http.ResponseWriter, r *http.Request) bool {
	if c := r.PathValue("container"); c == "stopped" {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "container not found (%q)", c)
		return true
	}
	return false
}

func (k *fakeKubelet) exec(w http.ResponseWriter, r *http.Request) {
	if notRunning(w, r) {
		return
	}
	opts, err := crirc.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	crirc.ServeExec(w, r, fakeRuntime{}, r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container"),
		r.URL.Query()["command"], opts, time.Minute, 10*time.Second, crirc.SupportedStreamingProtocols)
}

func (k *fakeKubelet) attach(w http.ResponseWriter, r *http.Request) {
	if notRunning(w, r) {
		return
	}
	opts, err := crirc.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	crirc.ServeAttach(w, r, fakeRuntime{}, r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container"),
		opts, time.Minute, 10*time.Second, crirc.SupportedStreamingProtocols)
}

func (k *fakeKubelet) portForward(w http.ResponseWriter, r *http.Request) {
	opts, err := criportforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	criportforward.ServePortForward(w, r, fakeRuntime{}, r.PathValue("pod"), r.PathValue("uid"), opts,
		time.Minute, 10*time.Second, criportforward.SupportedProtocols)
}

// fakeRuntime runs "containers" in memory.
//
//	cat          copies stdin to stdout
//	echo ARGS    prints ARGS
//	fail         prints "failing" on stderr and exits 3
//	size         prints the first terminal size it is given
//
// Attaching echoes stdin; port N answers each line L with "port N: L".
type fakeRuntime struct{}

func (fakeRuntime) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan crirc.TerminalSize, _ time.Duration) error {
	if len(cmd) == 0 {
		return errors.New("no command")
	}
	switch cmd[0] {
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(cmd[1:], " "))
		return err
	case "fail":
		fmt.Fprintln(errOut, "failing")
		return utilexec.CodeExitError{Err: errors.New("exit status 3"), Code: 3}
	case "size":
		size := <-resize
		_, err := fmt.Fprintf(out, "%dx%d\n", size.Width, size.Height)
		return err
	}
	return fmt.Errorf("%s: command not found", cmd[0])
}

func (fakeRuntime) AttachContainer(_ context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan crirc.TerminalSize) error {
	_, err := io.Copy(out, in)
	return err
}

func (fakeRuntime) PortForward(_ context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	for sc.Scan() {
		if _, err := fmt.Fprintf(stream, "port %d: %s\n", port, sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ---- the API server with a node and pods

type streamEnv struct {
	url     string
	cfg     *rest.Config
	cs      kubernetes.Interface
	kubelet *fakeKubelet
	certs   *pki.PKI
	webUID  types.UID
	// upgrades are the Upgrade headers of exec, attach and portforward
	// requests as the API server got them, in order.
	mu       sync.Mutex
	upgrades []string
}

// envOptions change what startStreams serves.
type envOptions struct {
	// edit changes the API's configuration.
	edit func(*apiserver.Config)
	// wrap wraps the API's handler.
	wrap func(http.Handler) http.Handler
	// secure serves as labctl server does: HTTPS with HTTP/2, client
	// certificates from the cluster CA, system:masters authorized; the
	// client config is the admin's.
	secure bool
}

// startStreams serves the API with a node, node-1, whose kubelet is a
// fakeKubelet, and pods in namespace default:
//
//	web       container c, on node-1, Running
//	multi     init container setup, containers a, b, stopped, waiting,
//	          follow; on node-1, Running
//	pending   container c, not scheduled
//	lost      container c, on node-lost, which has no address
func startStreams(t *testing.T, o envOptions) *streamEnv {
	t.Helper()
	certs, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e := &streamEnv{certs: certs, kubelet: newFakeKubelet(t, certs.CertPool())}
	ctx, cancel := context.WithCancel(context.Background())
	c := apiserver.Config{Store: memStore(t), ServiceCIDR: netip.MustParsePrefix("10.43.0.0/16"),
		KubeletClientCert: certs.KubeletClient.TLSCertificate()}
	if o.secure {
		c.Authorizer = authn.Masters{}
	}
	if o.edit != nil {
		o.edit(&c)
	}
	api, err := apiserver.New(ctx, c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sub := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]; sub == "exec" || sub == "attach" || sub == "portforward" {
			e.mu.Lock()
			e.upgrades = append(e.upgrades, r.Header.Get("Upgrade"))
			e.mu.Unlock()
		}
		api.ServeHTTP(w, r)
	})
	if o.wrap != nil {
		h = o.wrap(h)
	}
	var srv *httptest.Server
	if o.secure {
		if h, err = authn.NewHandler(authn.Config{Authenticator: authn.X509{}, Authorizer: authn.Masters{}}, h); err != nil {
			t.Fatal(err)
		}
		srv = httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: certs.CertPool()}
		srv.StartTLS()
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		api.Wait()
	})
	e.url = srv.URL
	e.cfg = &rest.Config{Host: srv.URL, QPS: -1}
	if o.secure {
		e.cfg.TLSClientConfig = rest.TLSClientConfig{Insecure: true, CertData: certs.Admin.CertPEM, KeyData: certs.Admin.KeyPEM}
	}
	if e.cs, err = kubernetes.NewForConfig(e.cfg); err != nil {
		t.Fatal(err)
	}

	// What the service account controller would have made.
	if _, err := e.cs.CoreV1().ServiceAccounts("default").Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.addNode(t, "node-1", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "127.0.0.1"})
	e.addNode(t, "node-lost")
	running := func(name, node string, spec corev1.PodSpec) *corev1.Pod {
		spec.NodeName = node
		pod, err := e.cs.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node != "" {
			pod.Status.Phase = corev1.PodRunning
			if pod, err = e.cs.CoreV1().Pods("default").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return pod
	}
	containers := func(names ...string) []corev1.Container {
		var out []corev1.Container
		for _, n := range names {
			out = append(out, corev1.Container{Name: n, Image: "busybox"})
		}
		return out
	}
	e.webUID = running("web", "node-1", corev1.PodSpec{Containers: containers("c")}).UID
	running("multi", "node-1", corev1.PodSpec{InitContainers: containers("setup"), Containers: containers("a", "b", "stopped", "waiting", "follow")})
	running("pending", "", corev1.PodSpec{Containers: containers("c")})
	running("lost", "node-lost", corev1.PodSpec{Containers: containers("c")})
	return e
}

// addNode registers a node whose kubelet listens on the fake kubelet's
// port at addrs.
func (e *streamEnv) addNode(t *testing.T, name string, addrs ...corev1.NodeAddress) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Addresses:       addrs,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(e.kubelet.port)}},
	}}
	created, err := e.cs.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = node.Status
	if _, err := e.cs.CoreV1().Nodes().UpdateStatus(context.Background(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// podURL is the URL of a pod's subresource with query.
func (e *streamEnv) podURL(pod, sub string, query url.Values) *url.URL {
	u, _ := url.Parse(e.url + "/api/v1/namespaces/default/pods/" + pod + "/" + sub)
	u.RawQuery = query.Encode()
	return u
}

// sawUpgrades returns and forgets the Upgrade headers seen so far.
func (e *streamEnv) sawUpgrades() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.upgrades
	e.upgrades = nil
	return out
}

// wantStatus checks that err is an API error with code and message, also
// when it is the cause of an upgrade failure.
func wantStatus(t *testing.T, err error, code int32, message string) {
	t.Helper()
	var uf *streamhttp.UpgradeFailureError
	if errors.As(err, &uf) {
		err = uf.Cause
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a Status %d %q", err, err, code, message)
	}
	if st := se.Status(); st.Code != code || st.Message != message {
		t.Errorf("Status %d %q, want %d %q", st.Code, st.Message, code, message)
	}
}

// ---- discovery

func TestKubeletSubresourceDiscovery(t *testing.T) {
	e := startStreams(t, envOptions{})
	list, err := e.cs.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind  string
		verbs []string
	}{
		"pods/log":         {"Pod", []string{"get"}},
		"pods/exec":        {"PodExecOptions", []string{"create", "get"}},
		"pods/attach":      {"PodAttachOptions", []string{"create", "get"}},
		"pods/portforward": {"PodPortForwardOptions", []string{"create", "get"}},
		"nodes/proxy":      {"NodeProxyOptions", []string{"create", "delete", "get", "patch", "update"}},
	}
	for _, r := range list.APIResources {
		w, ok := want[r.Name]
		if !ok {
			continue
		}
		delete(want, r.Name)
		if r.Kind != w.kind || !slices.Equal(r.Verbs, w.verbs) {
			t.Errorf("%s: kind %s verbs %v, want %s %v", r.Name, r.Kind, r.Verbs, w.kind, w.verbs)
		}
	}
	for name := range want {
		t.Errorf("discovery does not list %s", name)
	}
}

// ---- pods/log

func TestPodLogs(t *testing.T) {
	e := startStreams(t, envOptions{})
	ctx := context.Background()
	pods := e.cs.CoreV1().Pods("default")

	t.Run("one container", func(t *testing.T) {
		got, err := pods.GetLogs("web", &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := "default/web/c line 1\ndefault/web/c line 2\ndefault/web/c line 3\n"; string(got) != want {
			t.Errorf("log %q, want %q", got, want)
		}
		seen := e.kubelet.last(t)
		if seen.uri != "/containerLogs/default/web/c" {
			t.Errorf("kubelet asked for %s", seen.uri)
		}
		// The API server's own certificate, not the client's.
		if seen.clientCN != pki.KubeletClientUser || !slices.Equal(seen.clientOrgs, []string{pki.MastersGroup}) {
			t.Errorf("kubelet client CN %q O %q, want %q %q", seen.clientCN, seen.clientOrgs, pki.KubeletClientUser, pki.MastersGroup)
		}
	})

	t.Run("options reach the kubelet", func(t *testing.T) {
		opts := &corev1.PodLogOptions{Container: "a", TailLines: ptr.To[int64](2), Timestamps: true, LimitBytes: ptr.To[int64](100),
			SinceSeconds: ptr.To[int64](30), Previous: true, InsecureSkipTLSVerifyBackend: true}
		if _, err := pods.GetLogs("multi", opts).DoRaw(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := e.kubelet.last(t).uri, "/containerLogs/default/multi/a?limitBytes=100&previous=true&sinceSeconds=30&tailLines=2&timestamps=true"; got != want {
			t.Errorf("kubelet asked for\n %s\nwant\n %s", got, want)
		}
		since := metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
		if _, err := pods.GetLogs("multi", &corev1.PodLogOptions{Container: "setup", SinceTime: &since}).DoRaw(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := e.kubelet.last(t).uri, "/containerLogs/default/multi/setup?sinceTime=2024-01-02T03%3A04%3A05Z"; got != want {
			t.Errorf("kubelet asked for\n %s\nwant\n %s", got, want)
		}
	})

	t.Run("refused", func(t *testing.T) {
		since := metav1.Now()
		tests := []struct {
			pod     string
			opts    corev1.PodLogOptions
			code    int32
			message string
		}{
			{"multi", corev1.PodLogOptions{}, 400, "a container name must be specified for pod multi, choose one of: [setup a b stopped waiting follow]"},
			{"web", corev1.PodLogOptions{Container: "x"}, 400, "container x is not valid for pod web"},
			{"web", corev1.PodLogOptions{TailLines: ptr.To[int64](-1)}, 422, `PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0`},
			{"web", corev1.PodLogOptions{LimitBytes: ptr.To[int64](0)}, 422, `PodLogOptions "web" is invalid: limitBytes: Invalid value: 0: must be greater than 0`},
			{"web", corev1.PodLogOptions{SinceSeconds: ptr.To[int64](5), SinceTime: &since}, 422, "PodLogOptions \"web\" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
			{"nope", corev1.PodLogOptions{}, 404, `pods "nope" not found`},
			// The kubelet's refusal, passed on.
			{"multi", corev1.PodLogOptions{Container: "waiting"}, 400, `container "waiting" in pod "multi" is waiting to start: ContainerCreating` + "\n"},
			{"lost", corev1.PodLogOptions{}, 500, "no preferred addresses found; known addresses: []"},
		}
		for _, tt := range tests {
			// Stream decodes a Status, as kubectl logs reads it.
			_, err := pods.GetLogs(tt.pod, &tt.opts).Stream(ctx)
			wantStatus(t, err, tt.code, tt.message)
		}
	})

	t.Run("not scheduled", func(t *testing.T) {
		resp, err := http.Get(e.url + "/api/v1/namespaces/default/pods/pending/log")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Errorf("log of an unscheduled pod: %d %q, want 204 and nothing", resp.StatusCode, body)
		}
	})

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		stream, err := pods.GetLogs("multi", &corev1.PodLogOptions{Container: "follow", Follow: true}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		r := bufio.NewReader(stream)
		// The first line arrives while the kubelet holds the second back.
		if line, err := r.ReadString('\n'); err != nil || line != "line 1\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		close(e.kubelet.release)
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "line 2\n" {
			t.Errorf("rest %q, %v; want %q", rest, err, "line 2\n")
		}
		if got := e.kubelet.last(t).uri; got != "/containerLogs/default/multi/follow?follow=true" {
			t.Errorf("kubelet asked for %s", got)
		}
	})

	t.Run("content type", func(t *testing.T) {
		resp, err := http.Get(e.url + "/api/v1/namespaces/default/pods/web/log?tailLines=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/plain" {
			t.Errorf("%d %q, want 200 text/plain", resp.StatusCode, ct)
		}
		resp, err = http.Post(e.url+"/api/v1/namespaces/default/pods/web/log", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST log: %d, want 405", resp.StatusCode)
		}
	})
}

// ---- exec and attach

// executor is one way client-go runs a remote command.
type executor struct {
	name string
	make func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error)
	// closesStdin: the protocol tells the end of stdin (not WebSocket v4).
	closesStdin bool
}

var executors = []executor{
	{"spdy", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewSPDYExecutor(cfg, "POST", u)
	}, true},
	{"websocket v5", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	}, true},
	{"websocket v4", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u.String(), "v4.channel.k8s.io")
	}, false},
}

// run runs a remote command on pod through x and returns its output.
func (e *streamEnv) run(t *testing.T, x executor, pod, sub string, q url.Values, opts remotecommand.StreamOptions) (stdout, stderr string, err error) {
	t.Helper()
	ex, err := x.make(e.cfg, e.podURL(pod, sub, q))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if q.Get("stdout") == "true" {
		opts.Stdout = &out
	}
	if q.Get("stderr") == "true" {
		opts.Stderr = &errOut
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = ex.StreamWithContext(ctx, opts)
	return out.String(), errOut.String(), err
}

func execQuery(container string, stdin, tty bool, command ...string) url.Values {
	q := url.Values{"command": command, "stdout": {"true"}}
	if !tty {
		q.Set("stderr", "true")
	}
	if container != "" {
		q.Set("container", container)
	}
	if stdin {
		q.Set("stdin", "true")
	}
	if tty {
		q.Set("tty", "true")
	}
	return q
}

// fixedSizes gives one terminal size, then none.
type fixedSizes struct {
	sizes chan remotecommand.TerminalSize
}

func (f fixedSizes) Next() *remotecommand.TerminalSize {
	s, ok := <-f.sizes
	if !ok {
		return nil
	}
	return &s
}

func TestExecAndAttach(t *testing.T) {
	e := startStreams(t, envOptions{})
	for _, x := range executors {
		t.Run(x.name, func(t *testing.T) {
			out, _, err := e.run(t, x, "web", "exec", execQuery("", false, false, "echo", "hello", "world"), remotecommand.StreamOptions{})
			if err != nil || out != "hello world\n" {
				t.Errorf("echo: %q, %v", out, err)
			}
			if got, want := e.kubelet.last(t).uri, "/exec/default/web/"+string(e.webUID)+"/c?command=echo&command=hello&command=world&error=1&output=1"; got != want {
				t.Errorf("kubelet got\n %s\nwant\n %s", got, want)
			}
			if seen := e.kubelet.last(t); seen.clientCN != pki.KubeletClientUser {
				t.Errorf("kubelet client %q", seen.clientCN)
			}

			out, errOut, err := e.run(t, x, "multi", "exec", execQuery("a", false, false, "fail"), remotecommand.StreamOptions{})
			var exit clientexec.CodeExitError
			if !errors.As(err, &exit) || exit.Code != 3 || errOut != "failing\n" || out != "" {
				t.Errorf("fail: stdout %q stderr %q err %v, want exit code 3 and %q on stderr", out, errOut, err, "failing\n")
			}
			if got := e.kubelet.last(t).uri; !strings.HasPrefix(got, "/exec/default/multi/") || !strings.Contains(got, "/a?command=fail") {
				t.Errorf("kubelet got %s", got)
			}
			if !x.closesStdin {
				return
			}

			in := "hello\nfrom stdin\n"
			out, _, err = e.run(t, x, "web", "exec", execQuery("", true, false, "cat"), remotecommand.StreamOptions{Stdin: strings.NewReader(in)})
			if err != nil || out != in {
				t.Errorf("cat: %q, %v; want %q", out, err, in)
			}

			sizes := fixedSizes{make(chan remotecommand.TerminalSize, 1)}
			sizes.sizes <- remotecommand.TerminalSize{Width: 100, Height: 40}
			close(sizes.sizes)
			out, _, err = e.run(t, x, "web", "exec", execQuery("", true, true, "size"),
				remotecommand.StreamOptions{Stdin: strings.NewReader(""), Tty: true, TerminalSizeQueue: sizes})
			if err != nil || out != "100x40\n" {
				t.Errorf("size: %q, %v; want %q", out, err, "100x40\n")
			}
			if got := e.kubelet.last(t).uri; !strings.HasSuffix(got, "/c?command=size&input=1&output=1&tty=1") {
				t.Errorf("kubelet got %s", got)
			}

			q := execQuery("", true, false)
			delete(q, "command")
			out, _, err = e.run(t, x, "web", "attach", q, remotecommand.StreamOptions{Stdin: strings.NewReader("attached\n")})
			if err != nil || out != "attached\n" {
				t.Errorf("attach: %q, %v", out, err)
			}
			if got, want := e.kubelet.last(t).uri, "/attach/default/web/"+string(e.webUID)+"/c?error=1&input=1&output=1"; got != want {
				t.Errorf("kubelet got\n %s\nwant\n %s", got, want)
			}
		})
	}
	// Each executor used its own protocol end to end: no fallback here.
	for i, u := range e.sawUpgrades() {
		if u != "SPDY/3.1" && u != "websocket" {
			t.Errorf("request %d upgraded to %q", i, u)
		}
	}
}

func TestExecRefused(t *testing.T) {
	e := startStreams(t, envOptions{})
	for _, x := range executors[:2] {
		t.Run(x.name, func(t *testing.T) {
			// The kubelet's refusal, in its words, for SPDY and for the
			// WebSocket (an upgrade failure, so that kubectl falls back).
			_, _, err := e.run(t, x, "multi", "exec", execQuery("stopped", false, false, "cat"), remotecommand.StreamOptions{})
			if err == nil || !strings.Contains(err.Error(), `container not found ("stopped")`) {
				t.Errorf("exec in a stopped container: %v", err)
			}
			if x.name == "spdy" && (err == nil || !strings.Contains(err.Error(), `unable to upgrade connection: container not found ("stopped")`)) {
				t.Errorf("SPDY error %v, want upstream's words", err)
			}
			if x.name != "spdy" && !streamhttp.IsUpgradeFailure(err) {
				t.Errorf("WebSocket error %v is no upgrade failure: kubectl would not fall back", err)
			}

			for _, tt := range []struct {
				pod, container, want string
			}{
				{"pending", "", "pod pending does not have a host assigned"},
				{"web", "x", "container x is not valid for pod web"},
				{"multi", "", "a container name must be specified for pod multi, choose one of: [setup a b stopped waiting follow]"},
				{"nope", "", `pods "nope" not found`},
			} {
				_, _, err := e.run(t, x, tt.pod, "exec", execQuery(tt.container, false, false, "cat"), remotecommand.StreamOptions{})
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("exec %s -c %q: %v, want %q", tt.pod, tt.container, err, tt.want)
				}
			}
		})
	}

	t.Run("statuses", func(t *testing.T) {
		for _, tt := range []struct {
			method, pod, query string
			upgrade            bool
			code               int
			message            string
		}{
			{"POST", "pending", "command=cat&stdout=1", true, 400, "pod pending does not have a host assigned"},
			{"POST", "web", "command=cat&stdout=1", false, 400, "Upgrade request required"},
			{"PUT", "web", "command=cat&stdout=1", true, 405, `put is not supported on resources of kind "pods/exec"`},
		} {
			req, _ := http.NewRequest(tt.method, e.url+"/api/v1/namespaces/default/pods/"+tt.pod+"/exec?"+tt.query, nil)
			if tt.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "SPDY/3.1")
				req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !bytes.Contains(body, []byte(strconv.Quote(tt.message))) {
				t.Errorf("%s %s: %d %s, want %d %q", tt.method, req.URL, resp.StatusCode, body, tt.code, tt.message)
			}
		}
	})
}

// ---- pods/portforward

func TestPortForward(t *testing.T) {
	e := startStreams(t, envOptions{})
	dialers := map[string]func(u *url.URL) (apihttpstream.Dialer, error){
		"spdy": func(u *url.URL) (apihttpstream.Dialer, error) {
			transport, upgrader, err := spdy.RoundTripperFor(e.cfg)
			if err != nil {
				return nil, err
			}
			return spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u), nil
		},
		"tunnel": func(u *url.URL) (apihttpstream.Dialer, error) {
			return portforward.NewSPDYOverWebsocketDialer(u, e.cfg)
		},
	}
	for name, dial := range dialers {
		t.Run(name, func(t *testing.T) {
			dialer, err := dial(e.podURL("web", "portforward", nil))
			if err != nil {
				t.Fatal(err)
			}
			stop, ready := make(chan struct{}), make(chan struct{})
			pf, err := portforward.New(dialer, []string{":80", ":8080"}, stop, ready, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- pf.ForwardPorts() }()
			defer func() {
				close(stop)
				if err := <-done; err != nil {
					t.Errorf("ForwardPorts: %v", err)
				}
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("ForwardPorts: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("port forwarding not ready after 30 s")
			}
			ports, err := pf.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			// Two connections to each port, over the one upgraded connection.
			for _, p := range ports {
				for i := range 2 {
					checkForwarded(t, int(p.Local), int(p.Remote), fmt.Sprintf("ping %d", i))
				}
			}
			if got, want := e.kubelet.last(t).uri, "/portForward/default/web/"+string(e.webUID); got != want {
				t.Errorf("kubelet got %s, want %s", got, want)
			}
		})
	}
	if got := e.sawUpgrades(); len(got) != 2 {
		t.Errorf("upgrades %q, want one per dialer", got)
	}
}

// checkForwarded sends msg to a forwarded local port and checks the fake
// runtime's answer from remote.
func checkForwarded(t *testing.T, local, remote int, msg string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintln(conn, msg); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if want := fmt.Sprintf("port %d: %s\n", remote, msg); err != nil || line != want {
		t.Errorf("local port %d answered %q, %v; want %q", local, line, err, want)
	}
}

// ---- nodes/proxy

func TestNodeProxy(t *testing.T) {
	e := startStreams(t, envOptions{})
	ctx := context.Background()
	rc := e.cs.CoreV1().RESTClient()
	got, err := rc.Get().AbsPath("/api/v1/nodes/node-1/proxy/stats/summary").Param("only_cpu_and_memory", "true").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"node":{"nodeName":"node-1"},"query":"only_cpu_and_memory=true"}`; string(got) != want {
		t.Errorf("summary %s, want %s", got, want)
	}
	if seen := e.kubelet.last(t); seen.uri != "/stats/summary?only_cpu_and_memory=true" || seen.clientCN != pki.KubeletClientUser {
		t.Errorf("kubelet saw %+v", seen)
	}
	for _, tt := range []struct {
		path    string
		code    int32
		message string
	}{
		{"/api/v1/nodes/node-9/proxy/stats/summary", 404, `nodes "node-9" not found`},
		{"/api/v1/nodes/node-lost/proxy/stats/summary", 500, "no preferred addresses found; known addresses: []"},
		{"/api/v1/nodes/node-1:1/proxy/stats/summary", 400, fmt.Sprintf("node node-1: only the kubelet's port %d can be reached through the proxy, not 1", e.kubelet.port)},
	} {
		code, message := getStatus(t, e.url+tt.path)
		if code != tt.code || message != tt.message {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, code, message, tt.code, tt.message)
		}
	}
	// A kubelet path that does not exist: the kubelet's 404, as it came.
	resp, err := http.Get(e.url + "/api/v1/nodes/node-1/proxy/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET proxy/nothing: %d, want the kubelet's 404", resp.StatusCode)
	}
}

// getStatus GETs url and returns the code and message of the Status that
// comes back.
func getStatus(t *testing.T, url string) (int32, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET %s: %d, no Status: %v", url, resp.StatusCode, err)
	}
	if int(st.Code) != resp.StatusCode {
		t.Errorf("GET %s: code %d, Status says %d", url, resp.StatusCode, st.Code)
	}
	return st.Code, st.Message
}

// ---- who may exec

func TestExecNeedsCreate(t *testing.T) {
	// Bearer tokens name the users; viewer may only get, admin anything.
	users := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			next.ServeHTTP(w, r.WithContext(authn.WithUser(r.Context(), &authn.User{Name: name})))
		})
	}
	az := authn.AuthorizerFunc(func(_ context.Context, a authn.Attributes) (authn.Decision, string, error) {
		if a.User != nil && (a.User.Name == "admin" || a.User.Name == "viewer" && a.Verb == "get") {
			return authn.DecisionAllow, "", nil
		}
		return authn.DecisionNoOpinion, "", nil
	})
	e := startStreams(t, envOptions{edit: func(c *apiserver.Config) { c.Authorizer = az }, wrap: users})
	as := func(user string) *rest.Config {
		cfg := rest.CopyConfig(e.cfg)
		cfg.BearerToken = user
		return cfg
	}
	ws := executors[1]
	u := e.podURL("web", "exec", execQuery("", false, false, "echo", "hi"))

	ex, _ := ws.make(as("viewer"), u)
	err := ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: io.Discard, Stderr: io.Discard})
	wantStatus(t, err, 403, `pods "web" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "default"`)

	var out bytes.Buffer
	ex, _ = ws.make(as("admin"), u)
	if err := ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &out, Stderr: io.Discard}); err != nil || out.String() != "hi\n" {
		t.Errorf("admin: %q, %v", out.String(), err)
	}
	// The user's credentials stay with the API server.
	if seen := e.kubelet.last(t); seen.authz != "" || seen.clientCN != pki.KubeletClientUser {
		t.Errorf("kubelet saw Authorization %q from %q", seen.authz, seen.clientCN)
	}
}

// ---- Config.Kubelets

// hostKubelets dials the fake kubelet for one host name.
type hostKubelets struct {
	host, target string
	cert         tls.Certificate
	dialed       chan string
}

func (h hostKubelets) DialKubelet(ctx context.Context, addr string) (net.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	if host != h.host {
		return nil, fmt.Errorf("no such kubelet %s", addr)
	}
	h.dialed <- addr
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{h.cert}}}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(h.target, port))
}

func TestKubeletsByHostname(t *testing.T) {
	dialed := make(chan string, 10)
	e := startStreams(t, envOptions{edit: func(c *apiserver.Config) {
		c.Kubelets = hostKubelets{host: "kubelet.test", target: "127.0.0.1", cert: c.KubeletClientCert, dialed: dialed}
	}})
	e.addNode(t, "node-h", corev1.NodeAddress{Type: corev1.NodeHostName, Address: "kubelet.test"})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "h"}, Spec: corev1.PodSpec{NodeName: "node-h", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := e.cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := e.cs.CoreV1().Pods("default").GetLogs("h", &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil || !strings.HasPrefix(string(got), "default/h/c line 1\n") {
		t.Fatalf("log %q, %v", got, err)
	}
	if addr := <-dialed; addr != net.JoinHostPort("kubelet.test", strconv.Itoa(e.kubelet.port)) {
		t.Errorf("dialed %s", addr)
	}
}

// ---- stock kubectl

// kubectlBinary returns kubectl.<version> next to the kubectl on PATH,
// skipping t without it.
func kubectlBinary(t *testing.T, version string) string {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH")
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	bin := filepath.Join(filepath.Dir(path), "kubectl."+version)
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("kubectl %s is not installed: %s is missing", version, bin)
	}
	return bin
}

func TestKubectlStreams(t *testing.T) {
	for _, version := range []string{"1.27", "1.33"} {
		t.Run(version, func(t *testing.T) {
			bin := kubectlBinary(t, version)
			// As labctl server serves: HTTPS, HTTP/2, the admin's
			// certificate.
			e := startStreams(t, envOptions{secure: true})
			dir := t.TempDir()
			kubeconfig := filepath.Join(dir, "kubeconfig")
			if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {client-certificate-data: %s, client-key-data: %s}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]
current-context: c
`, e.url, base64.StdEncoding.EncodeToString(e.certs.Admin.CertPEM), base64.StdEncoding.EncodeToString(e.certs.Admin.KeyPEM))), 0o600); err != nil {
				t.Fatal(err)
			}
			kubectl := func(stdin string, args ...string) (string, string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(dir, "cache")}, args...)...)
				cmd.Stdin = strings.NewReader(stdin)
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				return out.String(), errOut.String(), err
			}
			// Through the protocol this kubectl starts with: WebSocket
			// from 1.30 on, SPDY before; no fallback.
			wantUpgrade := "SPDY/3.1"
			if version >= "1.30" {
				wantUpgrade = "websocket"
			}
			checkUpgrades := func(what string) {
				t.Helper()
				if got := e.sawUpgrades(); len(got) != 1 || got[0] != wantUpgrade {
					t.Errorf("%s: upgrades %q, want [%s]", what, got, wantUpgrade)
				}
			}

			out, errOut, err := kubectl("", "logs", "web")
			if err != nil || out != "default/web/c line 1\ndefault/web/c line 2\ndefault/web/c line 3\n" {
				t.Errorf("logs: %q %q %v", out, errOut, err)
			}
			out, errOut, err = kubectl("", "logs", "-f", "--tail=2", "--timestamps", "multi", "-c", "b")
			if err != nil || !strings.HasPrefix(out, "default/multi/b line 1\n") {
				t.Errorf("logs -f: %q %q %v", out, errOut, err)
			}
			if got := e.kubelet.last(t).uri; got != "/containerLogs/default/multi/b?follow=true&tailLines=2&timestamps=true" {
				t.Errorf("logs -f: kubelet asked for %s", got)
			}

			in := "hello from kubectl\nsecond line\n"
			out, errOut, err = kubectl(in, "exec", "-i", "web", "--", "cat")
			if err != nil || out != in {
				t.Errorf("exec -i cat: %q %q %v", out, errOut, err)
			}
			checkUpgrades("exec -i")
			_, errOut, err = kubectl("", "exec", "multi", "-c", "a", "--", "fail")
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 || !strings.Contains(errOut, "failing") {
				t.Errorf("exec fail: %v, stderr %q; want exit code 3", err, errOut)
			}
			checkUpgrades("exec fail")
			_, errOut, err = kubectl("", "exec", "multi", "-c", "stopped", "--", "cat")
			if err == nil || !strings.Contains(errOut, `unable to upgrade connection: container not found ("stopped")`) {
				t.Errorf("exec in a stopped container: %v, stderr %q", err, errOut)
			}
			e.sawUpgrades()

			out, err = kubectlTTY(t, bin, kubeconfig, filepath.Join(dir, "cache"), "exec", "-it", "web", "--", "size")
			if err != nil || !strings.Contains(out, "100x40") {
				t.Errorf("exec -it: %q %v; want the terminal's size 100x40", out, err)
			}
			checkUpgrades("exec -it")
			if got := e.kubelet.last(t).uri; !strings.HasSuffix(got, "/c?command=size&input=1&output=1&tty=1") {
				t.Errorf("exec -it: kubelet got %s", got)
			}

			out, errOut, err = kubectl("attached\n", "attach", "-i", "web")
			if err != nil || !strings.Contains(out, "attached\n") {
				t.Errorf("attach -i: %q %q %v", out, errOut, err)
			}
			checkUpgrades("attach -i")

			out, errOut, err = kubectl("", "get", "--raw", "/api/v1/nodes/node-1/proxy/stats/summary")
			if err != nil || !strings.Contains(out, `"nodeName":"node-1"`) {
				t.Errorf("get --raw nodes/proxy: %q %q %v", out, errOut, err)
			}

			kubectlPortForward(t, bin, kubeconfig, filepath.Join(dir, "cache"))
			checkUpgrades("port-forward")
		})
	}
}

// kubectlTTY runs kubectl with a terminal of 100 columns and 40 rows as
// stdin, stdout and stderr, and returns what it wrote there.
func kubectlTTY(t *testing.T, bin, kubeconfig, cacheDir string, args ...string) (string, error) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// Once no one holds the terminal, reads give what is left in it,
		// then fail.
		_, _ = io.Copy(&out, ptmx)
	}()
	err = cmd.Run()
	tty.Close()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		ptmx.Close()
		<-copied
	}
	return out.String(), err
}

// kubectlPortForward runs kubectl port-forward to web's port 80 and talks
// through it.
func kubectlPortForward(t *testing.T, bin, kubeconfig, cacheDir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", kubeconfig, "--cache-dir", cacheDir, "port-forward", "pod/web", ":80")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 80`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
			local, _ := strconv.Atoi(m[1])
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			checkForwarded(t, local, 80, "through kubectl")
			checkForwarded(t, local, 80, "once more")
			return
		}
	}
	t.Fatalf("kubectl port-forward did not start forwarding: %v\n%s", sc.Err(), errOut.String())
}
