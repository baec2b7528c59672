package kubelet

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cgportforward "k8s.io/client-go/tools/portforward"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// The kubelet's API (server.go): the HTTPS endpoint on port 10250 that
// the API server calls for `kubectl logs`, `exec`, `attach`,
// `port-forward` and that metrics read, with upstream's paths
// (pkg/kubelet/server/server.go in kubernetes/kubernetes):
//
//	GET  /healthz                                     ok (no client certificate needed)
//	GET  /pods                                        the kubelet's pods, a PodList
//	GET  /runningpods/                                the pods the runtime runs
//	GET  /stats/summary                               stats.go's Summary
//	GET  /containerLogs/{namespace}/{pod}/{container} logread.go's reader
//	GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=...&input=1&output=1&error=1&tty=1
//	GET|POST /attach/{namespace}/{pod}[/{uid}]/{container}?input=1&output=1&error=1&tty=1
//	GET|POST /portForward/{namespace}/{pod}[/{uid}]
//
// Exec, attach and port-forward speak SPDY and WebSocket through
// k8s.io/cri-streaming, as containerd's CRI streaming server does, and
// also what upstream's kubelet adds in front of it: remote commands over
// WebSocket v5.channel.k8s.io (what client-go's WebSocket executor and
// kubectl 1.30+ speak) and port-forwarding SPDY tunnelled through a
// WebSocket (SPDY/3.1+portforward.k8s.io).
//
// Clients authenticate with a TLS client certificate of the cluster CA
// (user: its common name, groups: its organizations); the users allowed
// are the API server's (kube-apiserver-kubelet-client) and those of
// system:masters. Errors are plain text, as upstream's kubelet writes
// them: the API server hands them on to kubectl as they are.

// podLookup is what the server needs of the kubelet's pods. The pods
// returned are the caller's to read, not to change.
type podLookup interface {
	// Pod finds a pod the kubelet runs by namespace and name.
	Pod(namespace, name string) (*corev1.Pod, bool)
	// Pods are all of them (for /pods and the stats summary).
	Pods() []*corev1.Pod
	// ContainerRuns lists the IDs of the runs of the pod's container
	// that the runtime has, oldest first: the last one is the current
	// run (exec, attach, logs), the one before it the previous one
	// (logs --previous).
	ContainerRuns(ctx context.Context, uid types.UID, container string) ([]string, error)
}

// serverConfig configures the kubelet's server.
type serverConfig struct {
	// Addr is where it listens (":10250").
	Addr string
	// Cert is its serving certificate (see selfSignedServingCert).
	Cert tls.Certificate
	// ClientCAs is the cluster CA: clients present certificates it signed.
	ClientCAs *x509.CertPool
	Pods      podLookup
	Runtime   *podRuntime
	// NodeName is the node's name, for the stats and authorization.
	NodeName string
	// StreamIdleTimeout ends an exec, attach or port-forward connection
	// idle so long (default 4h, upstream's streamingConnectionIdleTimeout).
	StreamIdleTimeout time.Duration
	// Logger receives the server's messages (default: discarded).
	Logger *slog.Logger
}

// Users the kubelet serves.
const (
	// apiServerKubeletClient is the API server's identity to kubelets.
	apiServerKubeletClient = "kube-apiserver-kubelet-client"
	groupMasters           = "system:masters"
)

// kubeletServer is the kubelet's HTTPS server.
type kubeletServer struct {
	cfg     serverConfig
	tls     *tls.Config
	handler http.Handler
	sampler *cpuSampler

	// inflight counts the requests being served, hijacked ones too.
	inflight sync.WaitGroup
	mu       sync.Mutex
	hijacked map[net.Conn]struct{}
}

// newServer checks the configuration and makes the server.
func newServer(cfg serverConfig) (*kubeletServer, error) {
	switch {
	case cfg.Pods == nil:
		return nil, errors.New("kubelet server: no pods to serve")
	case cfg.Runtime == nil:
		return nil, errors.New("kubelet server: no runtime")
	case cfg.ClientCAs == nil:
		return nil, errors.New("kubelet server: no client CA to check clients against")
	case len(cfg.Cert.Certificate) == 0:
		return nil, errors.New("kubelet server: no serving certificate (selfSignedServingCert makes one)")
	}
	if cfg.Addr == "" {
		cfg.Addr = ":10250"
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = 4 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &kubeletServer{cfg: cfg, sampler: newCPUSampler(), hijacked: map[net.Conn]struct{}{}}
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{cfg.Cert},
		ClientCAs:    cfg.ClientCAs,
		// Verified when presented: /healthz needs none.
		ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS12,
	}
	s.handler = http.HandlerFunc(s.serve)
	return s, nil
}

// Handler is the server's handler (for tests: serve it with TLSConfig).
func (s *kubeletServer) Handler() http.Handler { return s.handler }

// TLSConfig is the server's TLS configuration: its certificate, and
// client certificates checked against the cluster CA when presented.
func (s *kubeletServer) TLSConfig() *tls.Config { return s.tls.Clone() }

// Run serves until ctx ends, then shuts down: it stops listening, ends
// the open streams (exec, attach, port-forward, logs -f) and waits for
// their handlers.
func (s *kubeletServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("kubelet server: listen on %s: %w (is another kubelet running?)", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateHijacked {
				s.mu.Lock()
				s.hijacked[c] = struct{}{}
				s.mu.Unlock()
			}
		},
	}
	s.cfg.Logger.Info("kubelet server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("kubelet server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	s.mu.Lock()
	for c := range s.hijacked {
		c.Close()
	}
	s.hijacked = map[net.Conn]struct{}{}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cfg.Logger.Warn("kubelet server: requests still running after shutdown")
	}
	<-errc
	return nil
}

// clientUser is a client, as its certificate names it.
type clientUser struct {
	name   string
	groups []string
}

// authenticate reads the client's verified certificate.
func authenticateClient(r *http.Request) (clientUser, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return clientUser{}, false
	}
	c := r.TLS.VerifiedChains[0][0]
	return clientUser{name: c.Subject.CommonName, groups: c.Subject.Organization}, c.Subject.CommonName != ""
}

// mayUseKubelet tells whether u may use the kubelet's API.
func mayUseKubelet(u clientUser) bool {
	return u.name == apiServerKubeletClient || slices.Contains(u.groups, groupMasters)
}

// requestAttributes are the verb and node subresources upstream's
// kubelet authorizes a request as (its fine-grained attributes).
func requestAttributes(r *http.Request) (verb string, subresources []string) {
	switch r.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodGet:
		verb = "get"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	p := r.URL.Path
	under := func(prefix string) bool {
		prefix = strings.TrimSuffix(prefix, "/")
		return p == prefix || strings.HasPrefix(p, prefix+"/")
	}
	switch {
	case under("/pods"), under("/runningpods"):
		subresources = append(subresources, "pods")
	case under("/healthz"):
		subresources = append(subresources, "healthz")
	case under("/configz"):
		subresources = append(subresources, "configz")
	}
	switch {
	case under("/stats"):
		subresources = append(subresources, "stats")
	case under("/metrics"):
		subresources = append(subresources, "metrics")
	case under("/logs"):
		subresources = append(subresources, "log")
	default:
		subresources = append(subresources, "proxy")
	}
	return verb, subresources
}

// writeText writes a plain-text answer, as upstream's kubelet does.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

// connKey is the request context's key of its connection (Run's).
type connKey struct{}

// serve authenticates, authorizes and routes a request.
func (s *kubeletServer) serve(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		// A connection hijacked for a stream is done with when its
		// handler returns.
		defer func() {
			s.mu.Lock()
			delete(s.hijacked, c)
			s.mu.Unlock()
		}()
	}
	if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/healthz/") {
		s.healthz(w, r)
		return
	}
	u, ok := authenticateClient(r)
	if !ok {
		writeText(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if !mayUseKubelet(u) {
		verb, subs := requestAttributes(r)
		s.cfg.Logger.Debug("forbidden", "user", u.name, "verb", verb, "path", r.URL.Path)
		writeText(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n", u.name, verb, "nodes", subs))
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	get := func() bool {
		if r.Method == http.MethodGet {
			return true
		}
		w.Header().Set("Allow", http.MethodGet)
		writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return false
	}
	getOrPost := func() bool {
		if r.Method == http.MethodGet || r.Method == http.MethodPost {
			return true
		}
		w.Header().Set("Allow", "GET, POST")
		writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return false
	}
	switch {
	case len(parts) == 1 && parts[0] == "pods":
		if get() {
			s.pods(w, s.cfg.Pods.Pods())
		}
	case len(parts) == 1 && parts[0] == "runningpods":
		if get() {
			s.runningPods(w, r)
		}
	case len(parts) == 2 && parts[0] == "stats" && parts[1] == "summary":
		if get() {
			s.statsSummary(w, r)
		}
	case len(parts) == 4 && parts[0] == "containerLogs":
		if get() {
			s.containerLogs(w, r, parts[1], parts[2], parts[3])
		}
	case (len(parts) == 4 || len(parts) == 5) && (parts[0] == "exec" || parts[0] == "attach"):
		if getOrPost() {
			uid := ""
			if len(parts) == 5 {
				uid = parts[3]
			}
			s.remoteCommand(w, r, parts[0], parts[1], parts[2], uid, parts[len(parts)-1])
		}
	case (len(parts) == 3 || len(parts) == 4) && parts[0] == "portForward":
		if getOrPost() {
			uid := ""
			if len(parts) == 4 {
				uid = parts[3]
			}
			s.portForward(w, r, parts[1], parts[2], uid)
		}
	default:
		http.NotFound(w, r)
	}
}

func (s *kubeletServer) healthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// pods answers with a v1 PodList.
func (s *kubeletServer) pods(w http.ResponseWriter, pods []*corev1.Pod) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []corev1.Pod{}}
	for _, p := range pods {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, list)
}

// runningPods answers with the pods the runtime has containers of, as
// upstream's /runningpods/: their names, UIDs and containers.
func (s *kubeletServer) runningPods(w http.ResponseWriter, r *http.Request) {
	rps, err := s.cfg.Runtime.ListPods(r.Context())
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	var pods []*corev1.Pod
	for _, rp := range rps {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: rp.Name, Namespace: rp.Namespace, UID: rp.UID}}
		seen := map[string]bool{}
		for i := len(rp.Containers) - 1; i >= 0; i-- {
			c := rp.Containers[i]
			if seen[c.Name] || c.Init {
				continue
			}
			seen[c.Name] = true
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Labels[labelImage]})
		}
		slices.SortFunc(p.Spec.Containers, func(a, b corev1.Container) int { return strings.Compare(a.Name, b.Name) })
		pods = append(pods, p)
	}
	s.pods(w, pods)
}

// statsSummary answers with the Summary; only_cpu_and_memory=true leaves
// out the rest, as upstream.
func (s *kubeletServer) statsSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.cfg.Runtime.summary(r.Context(), s.cfg.NodeName, s.cfg.Pods.Pods(), s.sampler)
	if err != nil {
		writeText(w, http.StatusInternalServerError, fmt.Sprintf("Internal Error: failed to get summary stats: %v", err))
		return
	}
	if v := r.URL.Query().Get("only_cpu_and_memory"); v != "" && v != "false" && v != "0" {
		sum = onlyCPUAndMemory(sum)
	}
	writeJSON(w, sum)
}

func onlyCPUAndMemory(in *statsv1alpha1.Summary) *statsv1alpha1.Summary {
	out := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{
		NodeName: in.Node.NodeName, StartTime: in.Node.StartTime, CPU: in.Node.CPU, Memory: in.Node.Memory,
	}, Pods: []statsv1alpha1.PodStats{}}
	for _, p := range in.Pods {
		op := statsv1alpha1.PodStats{PodRef: p.PodRef, StartTime: p.StartTime, CPU: p.CPU, Memory: p.Memory, Containers: []statsv1alpha1.ContainerStats{}}
		for _, c := range p.Containers {
			op.Containers = append(op.Containers, statsv1alpha1.ContainerStats{Name: c.Name, StartTime: c.StartTime, CPU: c.CPU, Memory: c.Memory})
		}
		out.Pods = append(out.Pods, op)
	}
	return out
}

// podHasContainer tells whether the pod has a container (regular, init
// or ephemeral) of the name.
func podHasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// containerStatusOf is the container's status in the pod's status.
func containerStatusOf(pod *corev1.Pod, name string) (*corev1.ContainerStatus, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], true
			}
		}
	}
	return nil, false
}

// logQuery is a containerLogs query, as PodLogOptions.
type logQuery struct {
	follow, previous, timestamps bool
	tailLines, limitBytes        *int64
	sinceSeconds                 *int64
	sinceTime                    *time.Time
	stream                       string
}

// parseLogQuery decodes the query as upstream's parameter codec does:
// a boolean is true unless it is "0" or "false"; "tail" is the old name
// of tailLines ("all": every line).
func parseLogQuery(q url.Values) (logQuery, error) {
	var lq logQuery
	boolean := func(name string) bool {
		v, ok := q[name]
		if !ok || len(v) == 0 {
			return false
		}
		return v[0] != "0" && !strings.EqualFold(v[0], "false")
	}
	integer := func(name string) (*int64, error) {
		v, ok := q[name]
		if !ok || len(v) == 0 || v[0] == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			return nil, err
		}
		return &n, nil
	}
	if tail := q.Get("tail"); tail != "" {
		q = maps.Clone(q)
		if tail == "all" {
			delete(q, "tailLines")
		} else {
			q["tailLines"] = []string{tail}
		}
	}
	lq.follow, lq.previous, lq.timestamps = boolean("follow"), boolean("previous"), boolean("timestamps")
	var err error
	if lq.tailLines, err = integer("tailLines"); err != nil {
		return lq, err
	}
	if lq.limitBytes, err = integer("limitBytes"); err != nil {
		return lq, err
	}
	if lq.sinceSeconds, err = integer("sinceSeconds"); err != nil {
		return lq, err
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return lq, err
		}
		lq.sinceTime = &t
	}
	lq.stream = q.Get("stream")
	return lq, nil
}

// valid is upstream's ValidatePodLogOptions.
func (lq logQuery) valid() bool {
	switch {
	case lq.tailLines != nil && *lq.tailLines < 0,
		lq.limitBytes != nil && *lq.limitBytes < 1,
		lq.sinceSeconds != nil && lq.sinceTime != nil,
		lq.sinceSeconds != nil && *lq.sinceSeconds < 1:
		return false
	}
	switch lq.stream {
	case "", "All":
	case "Stdout", "Stderr":
		if lq.tailLines != nil {
			return false
		}
	default:
		return false
	}
	return true
}

// containerLogs serves `kubectl logs`.
func (s *kubeletServer) containerLogs(w http.ResponseWriter, r *http.Request, namespace, name, container string) {
	switch {
	case name == "":
		writeText(w, http.StatusBadRequest, `{"message": "Missing podID."}`)
		return
	case container == "":
		writeText(w, http.StatusBadRequest, `{"message": "Missing container name."}`)
		return
	case namespace == "":
		writeText(w, http.StatusBadRequest, `{"message": "Missing podNamespace."}`)
		return
	}
	lq, err := parseLogQuery(r.URL.Query())
	if err != nil {
		writeText(w, http.StatusBadRequest, `{"message": "Unable to decode query."}`)
		return
	}
	if !lq.valid() {
		writeText(w, http.StatusUnprocessableEntity, `{"message": "Invalid request."}`)
		return
	}
	pod, ok := s.cfg.Pods.Pod(namespace, name)
	if !ok {
		writeText(w, http.StatusNotFound, fmt.Sprintf("pod %q does not exist", name))
		return
	}
	if !podHasContainer(pod, container) {
		writeText(w, http.StatusNotFound, fmt.Sprintf("container %q not found in pod %q", container, name))
		return
	}
	id, err := s.logContainerID(r.Context(), pod, container, lq.previous)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	rt := s.cfg.Runtime
	path, err := rt.containerLogFile(r.Context(), pod, container, id)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	opts := logReadOptions{TailLines: -1, Timestamps: lq.timestamps, Follow: lq.follow}
	if lq.tailLines != nil {
		opts.TailLines = *lq.tailLines
	}
	if lq.limitBytes != nil {
		opts.LimitBytes = *lq.limitBytes
	}
	if lq.sinceSeconds != nil {
		opts.Since = time.Now().Add(-time.Duration(*lq.sinceSeconds) * time.Second)
	}
	if lq.sinceTime != nil && lq.sinceTime.After(opts.Since) {
		opts.Since = *lq.sinceTime
	}
	ctx := r.Context()
	if lq.follow {
		opts.Exited = rt.exited(ctx, id)
	}
	// The file is there: from here on the answer is 200, and a failure
	// half-way is written into it, as upstream's.
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := io.Writer(w)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
		out = flushWriter{w: w, f: f}
	}
	var stdout, stderr io.Writer = out, out
	switch lq.stream {
	case "Stdout":
		stderr = nil
	case "Stderr":
		stdout = nil
	}
	if err := readCRILog(ctx, path, opts, stdout, stderr); err != nil && ctx.Err() == nil {
		io.WriteString(out, err.Error())
	}
}

// flushWriter flushes each write to the client (logs -f).
type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}

// logContainerID picks the run whose log `kubectl logs` reads, with
// upstream's errors (validateContainerLogStatus): the current run, the
// last one that ended for previous, none for a container waiting to
// start.
func (s *kubeletServer) logContainerID(ctx context.Context, pod *corev1.Pod, name string, previous bool) (string, error) {
	runs, err := s.cfg.Pods.ContainerRuns(ctx, pod.UID, name)
	if err != nil {
		return "", fmt.Errorf("container %q in pod %q: %w", name, pod.Name, err)
	}
	var cur string
	if len(runs) > 0 {
		cur = runs[len(runs)-1]
	}
	haveCur := cur != ""
	strip := func(id string) string {
		if _, after, ok := strings.Cut(id, "://"); ok {
			return after
		}
		return id
	}
	// lastRun is the run before the current one (or the current one,
	// when it has ended and no other followed yet).
	lastRun := func(currentEnded bool) string {
		switch {
		case currentEnded && len(runs) > 0:
			return runs[len(runs)-1]
		case len(runs) > 1:
			return runs[len(runs)-2]
		}
		return ""
	}
	cs, found := containerStatusOf(pod, name)
	if !found {
		// No status reported yet: go by the runs.
		switch {
		case previous:
			if id := lastRun(false); id != "" {
				return id, nil
			}
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		case haveCur:
			return cur, nil
		}
		return "", fmt.Errorf("container %q in pod %q is not available", name, pod.Name)
	}
	last := cs.LastTerminationState.Terminated
	waiting, running, terminated := cs.State.Waiting, cs.State.Running, cs.State.Terminated
	or := func(ids ...string) string {
		for _, id := range ids {
			if id != "" {
				return strip(id)
			}
		}
		return ""
	}
	var id string
	switch {
	case previous:
		if last == nil {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		}
		id = or(last.ContainerID, lastRun(running == nil && terminated == nil))
		if id == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		}
	case running != nil:
		id = or(cs.ContainerID, cur)
	case terminated != nil:
		id = or(terminated.ContainerID, cs.ContainerID, cur)
		if id == "" && last != nil {
			id = or(last.ContainerID)
		}
		if id == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
		}
	case last != nil:
		id = or(last.ContainerID, lastRun(true))
		if id == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
		}
	case waiting != nil:
		switch waiting.Reason {
		case ReasonErrImagePull:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", name, pod.Name)
		case ReasonImagePullBackOff:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", name, pod.Name)
		}
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %v", name, pod.Name, waiting.Reason)
	default:
		return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
	}
	if id == "" {
		return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
	}
	return id, nil
}

// containerLogFile is the log file of the pod's container's run id: as
// its labels say, or found among the container's logs by the run's ID
// (the container itself may be gone).
func (r *podRuntime) containerLogFile(ctx context.Context, pod *corev1.Pod, container, id string) (string, error) {
	if c, err := r.client.LoadContainer(ctx, id); err == nil {
		if l, err := c.Labels(ctx); err == nil && l[labelLogPath] != "" {
			if _, err := os.Stat(l[labelLogPath]); err == nil {
				return l[labelLogPath], nil
			}
		}
	}
	dir := filepath.Dir(containerLogPath(r.cfg.LogDir, pod.Namespace, pod.Name, pod.UID, container, 0))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log"))
		if err != nil || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		if containerID(pod.UID, container, int32(n)) == id {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("failed to find the log file of container %q in pod %q (container ID %s) under %s", container, pod.Name, id, dir)
}

// exited is closed when the container with id is not running (any more),
// or ctx ends.
func (r *podRuntime) exited(ctx context.Context, id string) <-chan struct{} {
	r.mu.Lock()
	rc := r.running[id]
	r.mu.Unlock()
	if rc != nil {
		return rc.done
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			st, err := r.ContainerState(ctx, id)
			if err != nil || st.Running == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return ch
}

// streamFunc runs an exec or attach on the client's streams (nil ones
// are not wanted).
type streamFunc func(ctx context.Context, in io.Reader, out, errw io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error

// streamAdapter makes a streamFunc an Executor and an Attacher.
type streamAdapter struct {
	opts *remotecommand.Options
	run  streamFunc
}

func (a streamAdapter) ExecInContainer(ctx context.Context, _, _, _ string, _ []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return a.call(ctx, in, out, errw, tty, resize)
}

func (a streamAdapter) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return a.call(ctx, in, out, errw, tty, resize)
}

func (a streamAdapter) call(ctx context.Context, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	var i io.Reader
	var o, e io.Writer
	if a.opts.Stdin && in != nil {
		i = in
	}
	if a.opts.Stdout && out != nil {
		o = out
	}
	if a.opts.Stderr && errw != nil {
		e = errw
	}
	return a.run(ctx, i, o, e, tty, resize)
}

// findPod finds the pod a streaming request names (and, when given, its
// UID), or answers 404 as upstream's kubelet does.
func (s *kubeletServer) findPod(w http.ResponseWriter, namespace, name, uid string) (*corev1.Pod, bool) {
	pod, ok := s.cfg.Pods.Pod(namespace, name)
	if !ok {
		writeText(w, http.StatusNotFound, "pod does not exist")
		return nil, false
	}
	if uid != "" && types.UID(uid) != pod.UID {
		writeText(w, http.StatusNotFound, "pod not found")
		return nil, false
	}
	return pod, true
}

// remoteCommand serves exec and attach.
func (s *kubeletServer) remoteCommand(w http.ResponseWriter, r *http.Request, kind, namespace, name, uid, container string) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	pod, ok := s.findPod(w, namespace, name, uid)
	if !ok {
		return
	}
	runs, err := s.cfg.Pods.ContainerRuns(r.Context(), pod.UID, container)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(runs) == 0 || !podHasContainer(pod, container) {
		writeText(w, http.StatusNotFound, fmt.Sprintf("container not found (%q)", container))
		return
	}
	id := runs[len(runs)-1]
	rt := s.cfg.Runtime
	var run streamFunc
	if kind == "exec" {
		cmd := r.URL.Query()["command"]
		run = func(ctx context.Context, in io.Reader, out, errw io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error {
			eo := execOptions{Cmd: cmd, Stdin: in, Stdout: out, Stderr: errw, TTY: tty, Resize: terminalSizes(resize)}
			code, err := rt.Exec(ctx, id, eo)
			if err != nil {
				return err
			}
			if code != 0 {
				return &utilexec.CodeExitError{Err: fmt.Errorf("error executing command %v, exit code %d", cmd, code), Code: code}
			}
			return nil
		}
	} else {
		run = func(ctx context.Context, in io.Reader, out, errw io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error {
			return rt.Attach(ctx, id, attachOptions{Stdin: in, Stdout: out, Stderr: errw, TTY: tty, Resize: terminalSizes(resize)})
		}
	}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		s.serveWebSocketV5(w, r, opts, run)
		return
	}
	a := streamAdapter{opts: opts, run: run}
	if kind == "exec" {
		remotecommand.ServeExec(w, r, a, name, string(pod.UID), container, r.URL.Query()["command"], opts,
			s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	} else {
		remotecommand.ServeAttach(w, r, a, name, string(pod.UID), container, opts,
			s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}
}

// terminalSizes turns the streaming server's resizes into the runtime's.
func terminalSizes(in <-chan remotecommand.TerminalSize) <-chan terminalSize {
	if in == nil {
		return nil
	}
	out := make(chan terminalSize)
	go func() {
		defer close(out)
		for s := range in {
			out <- terminalSize{Width: s.Width, Height: s.Height}
		}
	}()
	return out
}

// WebSocket channels of the remote command protocols.
const (
	wsStdin = iota
	wsStdout
	wsStderr
	wsError
	wsResize
)

// serveWebSocketV5 serves an exec or attach over WebSocket with the
// v5.channel.k8s.io protocol: channels 0-4 (stdin, stdout, stderr, the
// status, terminal sizes), 255 closing a channel (stdin's end), and the
// v4 status (a metav1.Status) on the error channel at the end.
func (s *kubeletServer) serveWebSocketV5(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options, run streamFunc) {
	channel := func(want bool, t wsstream.ChannelType) wsstream.ChannelType {
		if want {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		wsStdin:  channel(opts.Stdin, wsstream.ReadChannel),
		wsStdout: channel(opts.Stdout, wsstream.WriteChannel),
		wsStderr: channel(opts.Stderr, wsstream.WriteChannel),
		wsError:  wsstream.WriteChannel,
		wsResize: wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(s.cfg.StreamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		s.cfg.Logger.Debug("websocket upgrade failed", "path", r.URL.Path, "err", err)
		return
	}
	defer conn.Close()
	// An empty message on the first channel written to tells the client
	// the streams are ready.
	switch {
	case opts.Stdout:
		streams[wsStdout].Write(nil)
	case opts.Stderr:
		streams[wsStderr].Write(nil)
	default:
		streams[wsError].Write(nil)
	}
	var in io.Reader
	var out, errw io.Writer
	if opts.Stdin {
		in = streams[wsStdin]
	}
	if opts.Stdout {
		out = streams[wsStdout]
	}
	if opts.Stderr && !opts.TTY {
		errw = streams[wsStderr]
	}
	var resize chan remotecommand.TerminalSize
	if opts.TTY {
		resize = make(chan remotecommand.TerminalSize)
		go func() {
			defer close(resize)
			dec := json.NewDecoder(streams[wsResize])
			for {
				var size remotecommand.TerminalSize
				if dec.Decode(&size) != nil {
					return
				}
				select {
				case resize <- size:
				case <-r.Context().Done():
					return
				}
			}
		}()
	}
	err = run(r.Context(), in, out, errw, opts.TTY, resize)
	status := metav1.Status{Status: metav1.StatusSuccess}
	var exitErr utilexec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		status = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(exitErr.ExitStatus()),
			}}},
		}
	default:
		status = apierrors.NewInternalError(err).ErrStatus
	}
	data, _ := json.Marshal(status)
	streams[wsError].Write(data)
}

// portForward serves `kubectl port-forward`: SPDY, WebSocket
// (portforward.k8s.io channels) or SPDY tunnelled through a WebSocket.
func (s *kubeletServer) portForward(w http.ResponseWriter, r *http.Request, namespace, name, uid string) {
	tunnel := wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	opts := &portforward.V4Options{}
	if !tunnel {
		var err error
		if opts, err = portforward.NewV4Options(r); err != nil {
			writeText(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	pod, ok := s.findPod(w, namespace, name, uid)
	if !ok {
		return
	}
	fwd := portForwarder{r: s.cfg.Runtime, uid: pod.UID}
	if tunnel {
		s.serveTunnel(w, r, fwd, pod)
		return
	}
	portforward.ServePortForward(w, r, fwd, name, string(pod.UID), opts,
		s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// portForwarder forwards to ports of one pod.
type portForwarder struct {
	r   *podRuntime
	uid types.UID
}

func (f portForwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	return f.r.PortForward(ctx, f.uid, port, stream)
}

// serveTunnel serves port-forwarding SPDY carried in WebSocket binary
// messages (subprotocol SPDY/3.1+portforward.k8s.io, client-go's
// NewSPDYOverWebsocketDialer): the WebSocket is upgraded here, and the
// SPDY server runs on it as on a hijacked connection.
func (s *kubeletServer) serveTunnel(w http.ResponseWriter, r *http.Request, fwd portForwarder, pod *corev1.Pod) {
	up := gwebsocket.Upgrader{
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{portforward.WebsocketsSPDYTunnelingPortForwardV1},
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	if ws.Subprotocol() != portforward.WebsocketsSPDYTunnelingPortForwardV1 {
		ws.Close()
		return
	}
	conn := cgportforward.NewTunnelingConnection("server", ws)
	req := r.Clone(r.Context())
	for _, h := range []string{"Sec-Websocket-Protocol", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"} {
		req.Header.Del(h)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", portforward.ProtocolV1Name)
	tw := &tunnelWriter{conn: conn, header: http.Header{}}
	portforward.ServePortForward(tw, req, fwd, pod.Name, string(pod.UID), &portforward.V4Options{},
		s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
	conn.Close()
}

// tunnelWriter is the ResponseWriter of a tunnelled SPDY upgrade: the
// upgrade's answer goes nowhere (the WebSocket handshake was it), and
// the hijacked connection is the tunnel.
type tunnelWriter struct {
	conn   net.Conn
	header http.Header
}

func (t *tunnelWriter) Header() http.Header         { return t.header }
func (t *tunnelWriter) Write(p []byte) (int, error) { return len(p), nil }
func (t *tunnelWriter) WriteHeader(int)             {}
func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}

// selfSignedServingCert loads the kubelet's serving certificate from
// dir/kubelet.crt and dir/kubelet.key, or makes them, as upstream's
// kubelet does without a certificate of its own: a CA of its own
// ("<node>-ca@<time>") and a certificate it signs for the node's name
// and addresses, valid a year. An expired one, or one not for the
// node's name, is made again.
func selfSignedServingCert(dir, nodeName string, ips []net.IP) (tls.Certificate, error) {
	crtPath, keyPath := filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key")
	if c, err := tls.LoadX509KeyPair(crtPath, keyPath); err == nil && c.Leaf != nil &&
		time.Now().Add(time.Hour).Before(c.Leaf.NotAfter) && c.Leaf.VerifyHostname(nodeName) == nil {
		return c, nil
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s-ca@%d", nodeName, now.Unix())},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano() + 1),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", nodeName, now.Unix())},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
	}
	if ip := net.ParseIP(nodeName); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else {
		tmpl.DNSNames = []string{nodeName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	crtPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileReplace(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write the kubelet's key: %w", err)
	}
	if err := writeFileReplace(crtPath, crtPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write the kubelet's certificate: %w", err)
	}
	return tls.X509KeyPair(crtPEM, keyPEM)
}
