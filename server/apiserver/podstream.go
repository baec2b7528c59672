package apiserver

// Logs, exec, attach, port-forward and the node proxy: the requests the
// API server answers by calling the kubelet on the pod's node, as
// kube-apiserver does (upstream's pkg/registry/core/pod/rest/log.go and
// subresources.go, pkg/registry/core/node/rest/proxy.go).
//
//	GET      pods/<pod>/log           GET /containerLogs/<ns>/<pod>/<container>?follow=true&...
//	GET|POST pods/<pod>/exec          /exec/<ns>/<pod>/<uid>/<container>?command=...&input=1&...
//	GET|POST pods/<pod>/attach        /attach/<ns>/<pod>/<uid>/<container>?input=1&...
//	GET|POST pods/<pod>/portforward   /portForward/<ns>/<pod>/<uid>?port=...
//	any      nodes/<node>/proxy/<path> /<path>
//
// The kubelet's address is its Node's InternalIP (else its Hostname) and
// status.daemonEndpoints.kubeletEndpoint.port (default 10250). The API
// server talks HTTPS with its own client certificate and does not verify
// the kubelet's self-signed one, as kube-apiserver without
// --kubelet-certificate-authority.
//
// A log is streamed through as the kubelet writes it. Exec, attach and
// port-forward are connection upgrades. SPDY (kubectl up to 1.29, and every
// kubectl's fallback) and WebSocket up to v4.channel.k8s.io are what the
// kubelet speaks too: the API server sends the upgrade on and, once the
// kubelet switched protocols, copies bytes both ways. Two WebSocket forms
// the kubelet does not speak are translated, as upstream translates them:
//
//   - exec and attach over v5.channel.k8s.io (kubectl 1.30+): the API
//     server answers the WebSocket itself and runs the command on the
//     kubelet over SPDY with client-go's executor (upstream's
//     StreamTranslator);
//   - port-forward over SPDY/3.1+portforward.k8s.io (kubectl 1.31+): the
//     WebSocket's messages carry SPDY frames, so once the kubelet accepted
//     a SPDY upgrade the two connections are joined byte for byte
//     (upstream's tunnel).
//
// Both reach the kubelet before they answer the client, so that a kubelet
// that refuses (container not found) refuses the client's upgrade with its
// own words; kubectl then tries SPDY, which passes the same words on
// ("unable to upgrade connection: container not found").

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apihttpstream "k8s.io/apimachinery/pkg/util/httpstream"
	apispdy "k8s.io/apimachinery/pkg/util/httpstream/spdy"
	rcconst "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"labctl/server/authn"
)

// DefaultKubeletPort is where a kubelet listens when its Node does not say.
const DefaultKubeletPort = 10250

const (
	// kubeletDialTimeout bounds connecting to a kubelet.
	kubeletDialTimeout = 10 * time.Second
	// kubeletUpgradeTimeout bounds the kubelet's answer to an upgrade
	// (its stream creation timeout is 30 s).
	kubeletUpgradeTimeout = 30 * time.Second
	// wsIdleTimeout closes a translated WebSocket nobody used for this
	// long, as the kubelet's streaming server does.
	wsIdleTimeout = 4 * time.Hour
	// wsCloseTimeout bounds the wait for the client's answer to the
	// close of a translated WebSocket.
	wsCloseTimeout = 10 * time.Second
	// spdyPingPeriod keeps a translated session's SPDY connection to the
	// kubelet alive.
	spdyPingPeriod = 5 * time.Second
	// maxKubeletErrorBytes bounds the part of a kubelet's error answer
	// passed on.
	maxKubeletErrorBytes = 50000
	// tunnelPrefix marks port-forward's SPDY-over-WebSocket subprotocols.
	tunnelPrefix = "SPDY/3.1+"
)

// Kubelets opens connections to the nodes' kubelets, for logs, exec,
// attach, port-forward and the node proxy. Tests give their own to reach
// fake kubelets.
type Kubelets interface {
	// DialKubelet opens a connection to the kubelet listening at addr
	// (host:port) with TLS negotiated, ready for HTTP/1.1.
	DialKubelet(ctx context.Context, addr string) (net.Conn, error)
}

// tlsKubelets dials kubelets over TLS, presenting the API server's client
// certificate; kubelets serve self-signed certificates, which are not
// verified.
type tlsKubelets struct{ config *tls.Config }

func (k tlsKubelets) DialKubelet(ctx context.Context, addr string) (net.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: kubeletDialTimeout, KeepAlive: 30 * time.Second}, Config: k.config}
	return d.DialContext(ctx, "tcp", addr)
}

// kubeletClient is the API server's side of its conversations with
// kubelets: plain requests (logs, the node proxy) over a pooled transport,
// upgrades over connections of their own.
type kubeletClient struct {
	kubelets  Kubelets
	transport *http.Transport
	client    *http.Client
}

// newKubeletClient reaches kubelets as cfg says; its idle connections
// close when ctx ends.
func newKubeletClient(ctx context.Context, cfg Config) *kubeletClient {
	k := cfg.Kubelets
	if k == nil {
		tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
		if len(cfg.KubeletClientCert.Certificate) > 0 {
			tc.Certificates = []tls.Certificate{cfg.KubeletClientCert}
		}
		k = tlsKubelets{config: tc}
	}
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return k.DialKubelet(ctx, addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	context.AfterFunc(ctx, tr.CloseIdleConnections)
	return &kubeletClient{
		kubelets:  k,
		transport: tr,
		// Kubelets do not redirect; upstream refuses to follow one.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// upgrade sends req, an upgrade request, to the kubelet at req.URL.Host
// over a new connection and reads the answer. Reads from the returned
// connection start after the answer's head. The caller closes it.
func (k *kubeletClient) upgrade(req *http.Request) (net.Conn, *http.Response, error) {
	conn, err := k.kubelets.DialKubelet(req.Context(), req.URL.Host)
	if err != nil {
		return nil, nil, unknownError(fmt.Errorf("error dialing backend: %w", err))
	}
	_ = conn.SetDeadline(time.Now().Add(kubeletUpgradeTimeout))
	br := bufio.NewReader(conn)
	resp, err := func() (*http.Response, error) {
		if err := req.Write(conn); err != nil {
			return nil, err
		}
		return http.ReadResponse(br, req)
	}()
	if err != nil {
		conn.Close()
		return nil, nil, unknownError(fmt.Errorf("error proxying to the kubelet at %s: %w", req.URL.Host, err))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_ = conn.SetDeadline(time.Time{})
	}
	return &bufferedConn{Conn: conn, r: br}, resp, nil
}

// bufferedConn is a connection whose next bytes may be in a buffer
// already: reads go through r.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// kubeletAddress returns where node's kubelet listens: its InternalIP,
// else its Hostname (else an ExternalIP), and its kubelet port.
func kubeletAddress(node *corev1.Node) (string, error) {
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	for _, want := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == want && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(port)), nil
			}
		}
	}
	return "", fmt.Errorf("no preferred addresses found; known addresses: %v", node.Status.Addresses)
}

// kubeletSubresource reports whether sub of res is answered by a kubelet.
func kubeletSubresource(res *Resource, sub string) bool {
	switch {
	case res.GVK.Group != "":
		return false
	case res.Plural == "pods":
		return sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward"
	case res.Plural == "nodes":
		return sub == "proxy"
	}
	return false
}

// serveKubelet answers a subresource for which kubeletSubresource holds.
// Once it has upgraded or streamed, errors are logged, not returned: the
// answer has begun.
func (c *call) serveKubelet() error {
	name := c.nameFromPath()
	switch c.info.Subresource {
	case "log":
		return c.podLog(name)
	case "proxy":
		return c.nodeProxy(name)
	}
	return c.podConnect(name)
}

// pod returns the pod the request names.
func (c *call) pod(name string) (*corev1.Pod, error) {
	obj, err := c.res.store.Get(c.ctx, c.info.Namespace, name, "")
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

// kubeletOf returns the address of the named node's kubelet.
func (c *call) kubeletOf(nodeName string) (string, error) {
	nodes, _ := c.s.reg.get(schema.GroupVersionResource{Version: "v1", Resource: "nodes"})
	obj, err := nodes.store.Get(c.ctx, "", nodeName, "")
	if err != nil {
		return "", err
	}
	addr, err := kubeletAddress(obj.(*corev1.Node))
	if err != nil {
		return "", unknownError(err)
	}
	return addr, nil
}

// podContainer returns the container a log, exec or attach of pod is for:
// the one named, or the pod's only container; refusals as upstream words
// them.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	var all []string
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, ct := range cs {
			all = append(all, ct.Name)
		}
	}
	for _, ec := range pod.Spec.EphemeralContainers {
		all = append(all, ec.Name)
	}
	switch {
	case name != "" && !slices.Contains(all, name):
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	case name != "":
		return name, nil
	case len(pod.Spec.Containers) == 1:
		return pod.Spec.Containers[0].Name, nil
	case len(pod.Spec.Containers) == 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, all))
}

// unknownError is err as upstream answers an error that is no API error:
// a 500 whose message is err's.
func unknownError(err error) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: err.Error()}}
}

// kubeletError turns a kubelet's error answer into the client's, as
// upstream's GenericHttpResponseChecker does.
func kubeletError(resp *http.Response, gr schema.GroupResource, name string) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKubeletErrorBytes))
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	switch msg := string(body); resp.StatusCode {
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(msg))
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	default:
		return apierrors.NewGenericServerResponse(resp.StatusCode, "", gr, name, msg, 0, false)
	}
}

// query reads typed parameters from a URL query as upstream's conversions
// do: a flag is true unless absent, "false" or "0"; numbers are decimal.
// The first malformed value is kept in err.
type query struct {
	v   url.Values
	err error
}

func (q *query) str(name string) string { return q.v.Get(name) }

func (q *query) flag(name string) bool {
	vs := q.v[name]
	return len(vs) > 0 && vs[0] != "0" && !strings.EqualFold(vs[0], "false")
}

func (q *query) int64(name string) *int64 {
	s, ok := q.first(name)
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && q.err == nil {
		q.err = apierrors.NewBadRequest(fmt.Sprintf("%s: %v", name, err))
	}
	return &n
}

func (q *query) time(name string) *metav1.Time {
	s, ok := q.first(name)
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil && q.err == nil {
		q.err = apierrors.NewBadRequest(fmt.Sprintf("%s: %v", name, err))
	}
	return &metav1.Time{Time: t}
}

// ports reads one or more ports, repeated or separated by commas.
func (q *query) ports(name string) []int32 {
	var out []int32
	for _, v := range q.v[name] {
		for _, s := range strings.Split(v, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil && q.err == nil {
				q.err = apierrors.NewBadRequest(fmt.Sprintf("%s: %v", name, err))
			}
			out = append(out, int32(p))
		}
	}
	return out
}

func (q *query) first(name string) (string, bool) {
	vs := q.v[name]
	if len(vs) == 0 || vs[0] == "" {
		return "", false
	}
	return vs[0], true
}

// ---- pods/log

// podLog is GET pods/<name>/log: the kubelet's log of one container,
// passed through as it comes, flushed as it comes when following.
func (c *call) podLog(name string) error {
	if c.r.Method != http.MethodGet {
		return apierrors.NewMethodNotSupported(corev1.Resource("pods/log"), strings.ToLower(c.r.Method))
	}
	opts, err := logOptions(name, c.r.URL.Query())
	if err != nil {
		return err
	}
	pod, err := c.pod(name)
	if err != nil {
		return err
	}
	container, err := podContainer(pod, opts.Container)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		// Nowhere to read a log from yet: upstream answers nothing.
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	addr, err := c.kubeletOf(pod.Spec.NodeName)
	if err != nil {
		return err
	}
	target := url.URL{Scheme: "https", Host: addr, Path: fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, container),
		RawQuery: kubeletLogQuery(opts).Encode()}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	resp, err := c.s.kubelets.client.Do(req)
	if err != nil {
		return unknownError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < http.StatusOK || resp.StatusCode > http.StatusPartialContent {
		return kubeletError(resp, corev1.Resource("pods/log"), name)
	}
	c.w.Header().Set("Content-Type", "text/plain")
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	_ = rc.Flush()
	var out io.Writer = c.w
	if opts.Follow {
		out = flushWriter{w: c.w, rc: rc}
	}
	if _, err := io.Copy(out, resp.Body); err != nil && c.ctx.Err() == nil {
		c.s.cfg.Logger.Debug("pod log cut off", "pod", pod.Namespace+"/"+pod.Name, "container", container, "err", err)
	}
	return nil
}

// logOptions reads and validates a log request's query, as upstream's
// ValidatePodLogOptions.
func logOptions(name string, v url.Values) (*corev1.PodLogOptions, error) {
	q := query{v: v}
	opts := &corev1.PodLogOptions{
		Container:                    q.str("container"),
		Follow:                       q.flag("follow"),
		Previous:                     q.flag("previous"),
		Timestamps:                   q.flag("timestamps"),
		InsecureSkipTLSVerifyBackend: q.flag("insecureSkipTLSVerifyBackend"),
		SinceSeconds:                 q.int64("sinceSeconds"),
		SinceTime:                    q.time("sinceTime"),
		TailLines:                    q.int64("tailLines"),
		LimitBytes:                   q.int64("limitBytes"),
	}
	if s := q.str("stream"); s != "" {
		opts.Stream = &s
	}
	if q.err != nil {
		return nil, q.err
	}
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	if opts.Stream != nil {
		streams := []string{corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr}
		if !slices.Contains(streams, *opts.Stream) {
			errs = append(errs, field.NotSupported(field.NewPath("stream"), *opts.Stream, streams))
		}
		if *opts.Stream != corev1.LogStreamAll && opts.TailLines != nil {
			errs = append(errs, field.Forbidden(field.NewPath(""), "`tailLines` and specific `stream` are mutually exclusive for now"))
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, name, errs)
	}
	return opts, nil
}

// kubeletLogQuery is the query of the kubelet's /containerLogs for opts.
func kubeletLogQuery(opts *corev1.PodLogOptions) url.Values {
	v := url.Values{}
	for flag, set := range map[string]bool{"follow": opts.Follow, "previous": opts.Previous, "timestamps": opts.Timestamps} {
		if set {
			v.Set(flag, "true")
		}
	}
	for param, n := range map[string]*int64{"sinceSeconds": opts.SinceSeconds, "tailLines": opts.TailLines, "limitBytes": opts.LimitBytes} {
		if n != nil {
			v.Set(param, strconv.FormatInt(*n, 10))
		}
	}
	if opts.SinceTime != nil {
		v.Set("sinceTime", opts.SinceTime.UTC().Format(time.RFC3339))
	}
	if opts.Stream != nil {
		v.Set("stream", *opts.Stream)
	}
	return v
}

// flushWriter flushes every write to the client.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		_ = f.rc.Flush()
	}
	return n, err
}

// ---- pods/exec, pods/attach, pods/portforward

// streamOptions are what exec and attach asked for.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
}

// podConnect is GET or POST on pods/<name>/exec, attach or portforward: a
// connection upgrade carried to the kubelet (see the top of this file).
func (c *call) podConnect(name string) error {
	sub := c.info.Subresource
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodPost {
		return apierrors.NewMethodNotSupported(corev1.Resource("pods/"+sub), strings.ToLower(c.r.Method))
	}
	if err := c.authorizeCreate(); err != nil {
		return err
	}
	q := query{v: c.r.URL.Query()}
	opts := streamOptions{stdin: q.flag("stdin"), stdout: q.flag("stdout"), stderr: q.flag("stderr"), tty: q.flag("tty")}
	ports := q.ports("ports")
	if q.err != nil {
		return q.err
	}
	pod, err := c.pod(name)
	if err != nil {
		return err
	}
	kq := url.Values{}
	var path string
	if sub == "portforward" {
		path = fmt.Sprintf("/portForward/%s/%s/%s", pod.Namespace, pod.Name, pod.UID)
		if len(ports) > 0 {
			s := make([]string, len(ports))
			for i, p := range ports {
				s[i] = strconv.Itoa(int(p))
			}
			kq.Set("port", strings.Join(s, ","))
		}
	} else {
		container, err := podContainer(pod, q.str("container"))
		if err != nil {
			return err
		}
		path = fmt.Sprintf("/%s/%s/%s/%s/%s", sub, pod.Namespace, pod.Name, pod.UID, container)
		for param, set := range map[string]bool{"input": opts.stdin, "output": opts.stdout, "error": opts.stderr, "tty": opts.tty} {
			if set {
				kq.Set(param, "1")
			}
		}
		if cmd := q.v["command"]; sub == "exec" && len(cmd) > 0 {
			kq["command"] = cmd
		}
	}
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	addr, err := c.kubeletOf(pod.Spec.NodeName)
	if err != nil {
		return err
	}
	target := &url.URL{Scheme: "https", Host: addr, Path: path, RawQuery: kq.Encode()}

	switch {
	case !httpstream.IsUpgradeRequest(c.r):
		return apierrors.NewBadRequest("Upgrade request required")
	case sub != "portforward" && wsstream.IsWebSocketRequestWithStreamCloseProtocol(c.r):
		return c.s.translateRemoteCommand(c.w, c.r, target, opts)
	case sub == "portforward" && wsstream.IsWebSocketRequestWithTunnelingProtocol(c.r):
		return c.s.tunnelPortForward(c.w, c.r, target)
	}
	return c.s.passUpgrade(c.w, c.r, target)
}

// authorizeCreate checks that the user may create the subresource: a
// WebSocket arrives as a GET, authorized as get, and upstream asks for
// create as well, as a SPDY POST has it (kubernetes issue 133515).
func (c *call) authorizeCreate() error {
	az := c.s.cfg.Authorizer
	if az == nil || c.info.Verb == "create" {
		return nil
	}
	u, _ := authn.UserFrom(c.ctx)
	a := authn.AttributesFrom(u, c.info)
	a.Verb = "create"
	d, reason, err := az.Authorize(c.ctx, a)
	if err != nil && d != authn.DecisionAllow {
		return apierrors.NewInternalError(fmt.Errorf("authorize the request: %w", err))
	}
	if d == authn.DecisionAllow {
		return nil
	}
	user := ""
	if u != nil {
		user = u.Name
	}
	msg := fmt.Sprintf("User %q cannot create resource %q in API group %q in the namespace %q", user, a.Resource+"/"+a.Subresource, a.APIGroup, a.Namespace)
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// kubeletRequest is the client's request r as it goes on to target: the
// same method and headers, without the client's credentials, which are
// not the kubelet's business (it knows the API server by its certificate).
func kubeletRequest(r *http.Request, target *url.URL) *http.Request {
	h := r.Header.Clone()
	for k := range h {
		if k == "Authorization" || k == "Cookie" || k == "Proxy-Authorization" || strings.HasPrefix(k, "Impersonate-") {
			delete(h, k)
		}
	}
	out := &http.Request{Method: r.Method, URL: target, Host: target.Host, Header: h}
	return out.WithContext(r.Context())
}

// spdyUpgradeRequest asks the kubelet at target for a SPDY connection
// speaking one of protocols.
func spdyUpgradeRequest(ctx context.Context, target *url.URL, protocols []string) *http.Request {
	h := http.Header{}
	h.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	h.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	for _, p := range protocols {
		h.Add(httpstream.HeaderProtocolVersion, p)
	}
	out := &http.Request{Method: http.MethodPost, URL: target, Host: target.Host, Header: h}
	return out.WithContext(ctx)
}

// passUpgrade sends r's upgrade on to the kubelet at target and, once the
// kubelet switched protocols, copies bytes both ways until either side
// closes. A kubelet that does not switch answers the client itself.
func (s *Server) passUpgrade(w http.ResponseWriter, r *http.Request, target *url.URL) error {
	conn, resp, err := s.kubelets.upgrade(kubeletRequest(r, target))
	if err != nil {
		return err
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		passResponse(w, resp)
		return nil
	}
	client, err := hijack(w)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("take over the connection: %w", err))
	}
	defer client.Close()
	// The kubelet's 101 goes to the client as it came.
	head := fmt.Sprintf("HTTP/1.1 %s\r\n", resp.Status)
	var b strings.Builder
	_ = resp.Header.Write(&b)
	if _, err := io.WriteString(client, head+b.String()+"\r\n"); err != nil {
		return nil
	}
	s.splice(client, conn)
	return nil
}

// passResponse answers the client with the kubelet's refusal of an
// upgrade, as upstream's proxy passes it on.
func passResponse(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		switch k {
		case "Connection", "Content-Length", "Transfer-Encoding", "Upgrade":
		default:
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxKubeletErrorBytes))
}

// hijack takes the client's connection over; reads start with whatever
// the server had buffered of it.
func hijack(w http.ResponseWriter) (net.Conn, error) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: rw.Reader}, nil
}

// splice copies bytes both ways between a and b until either direction
// ends or the server stops, then closes both.
func (s *Server) splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	copyTo := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go copyTo(a, b)
	go copyTo(b, a)
	ended := 0
	select {
	case <-done:
		ended++
	case <-s.ctx.Done():
	}
	a.Close()
	b.Close()
	for ; ended < 2; ended++ {
		<-done
	}
}

// translateRemoteCommand answers exec or attach over WebSocket
// v5.channel.k8s.io by running it on the kubelet at target over SPDY, as
// upstream's StreamTranslator does: the WebSocket's channels become the
// streams of client-go's SPDY executor.
func (s *Server) translateRemoteCommand(w http.ResponseWriter, r *http.Request, target *url.URL, opts streamOptions) error {
	conn, resp, err := s.kubelets.upgrade(spdyUpgradeRequest(r.Context(), target, rcconst.SupportedStreamingProtocols))
	if err != nil {
		return err
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		passResponse(w, resp)
		return nil
	}
	up := &upgraded{resp: resp, conn: conn}
	executor, err := remotecommand.NewSPDYExecutorForTransports(up, up, http.MethodPost, target)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	upgrader := gwebsocket.Upgrader{
		// Clients authenticate with certificates and tokens, not cookies.
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{rcconst.StreamProtocolV5Name},
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // Upgrade answered the client
	}
	session := newV5Session(ws)
	defer session.close()
	// What the client sends on a channel it did not ask for is dropped.
	if !opts.stdin {
		session.stdin.CloseWithError(io.ErrClosedPipe)
	}
	if !opts.tty {
		session.resize.CloseWithError(io.ErrClosedPipe)
	}
	// An empty message on the first channel the client reads tells it
	// the session has begun.
	first := byte(rcconst.StreamErr)
	if opts.stdout {
		first = rcconst.StreamStdOut
	} else if opts.stderr {
		first = rcconst.StreamStdErr
	}
	if err := session.write(first, nil); err != nil {
		return nil
	}

	// The session ends when the client goes away or the server stops.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	go func() {
		select {
		case <-session.readDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	so := remotecommand.StreamOptions{Tty: opts.tty}
	if opts.stdin {
		so.Stdin = session.stdin
	}
	if opts.stdout {
		so.Stdout = v5Channel{session, rcconst.StreamStdOut}
	}
	if opts.stderr {
		so.Stderr = v5Channel{session, rcconst.StreamStdErr}
	}
	if opts.tty {
		sizes := make(chan remotecommand.TerminalSize)
		go func() {
			dec := json.NewDecoder(session.resize)
			for {
				var size remotecommand.TerminalSize
				if dec.Decode(&size) != nil {
					return
				}
				select {
				case sizes <- size:
				case <-ctx.Done():
					return
				}
			}
		}()
		so.TerminalSizeQueue = sizeQueue{ctx: ctx, sizes: sizes}
	}
	err = executor.StreamWithContext(ctx, so)
	status, _ := json.Marshal(remoteCommandStatus(err))
	session.finish(status)
	return nil
}

// v5Session is the server's end of a WebSocket speaking
// v5.channel.k8s.io: every binary message starts with its channel
// (0 stdin, 1 stdout, 2 stderr, 3 the final status, 4 terminal sizes);
// a message [255, c] closes channel c from the client's side.
type v5Session struct {
	ws *gwebsocket.Conn
	// wmu serializes writes, which gorilla wants one at a time.
	wmu sync.Mutex
	// stdin and resize read what the client sends on channels 0 and 4.
	stdin, resize   *io.PipeReader
	stdinW, resizeW *io.PipeWriter
	readDone        chan struct{}
}

func newV5Session(ws *gwebsocket.Conn) *v5Session {
	s := &v5Session{ws: ws, readDone: make(chan struct{})}
	s.stdin, s.stdinW = io.Pipe()
	s.resize, s.resizeW = io.Pipe()
	go s.read()
	return s
}

// read delivers the client's messages until it closes the connection,
// then ends stdin and resize.
func (s *v5Session) read() {
	defer close(s.readDone)
	defer s.stdinW.Close()
	defer s.resizeW.Close()
	for {
		_ = s.ws.SetReadDeadline(time.Now().Add(wsIdleTimeout))
		_, msg, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		switch {
		case len(msg) == 0:
		case msg[0] == rcconst.StreamStdIn:
			_, _ = s.stdinW.Write(msg[1:])
		case msg[0] == rcconst.StreamResize:
			_, _ = s.resizeW.Write(msg[1:])
		case msg[0] == rcconst.StreamClose && len(msg) == 2 && msg[1] == rcconst.StreamStdIn:
			s.stdinW.Close()
		}
	}
}

// write sends p on channel ch.
func (s *v5Session) write(ch byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(wsIdleTimeout))
	return s.ws.WriteMessage(gwebsocket.BinaryMessage, append([]byte{ch}, p...))
}

// finish sends the session's status and closes the WebSocket cleanly:
// the close frame follows the output, and the connection is closed once
// the client answered it, so that nothing in flight is cut off.
func (s *v5Session) finish(status []byte) {
	// What the client still sends has nowhere to go.
	s.stdin.CloseWithError(io.ErrClosedPipe)
	s.resize.CloseWithError(io.ErrClosedPipe)
	if err := s.write(rcconst.StreamErr, status); err != nil {
		return
	}
	s.wmu.Lock()
	err := s.ws.WriteControl(gwebsocket.CloseMessage, gwebsocket.FormatCloseMessage(gwebsocket.CloseNormalClosure, ""), time.Now().Add(wsCloseTimeout))
	s.wmu.Unlock()
	if err != nil {
		return
	}
	select {
	case <-s.readDone:
	case <-time.After(wsCloseTimeout):
	}
}

func (s *v5Session) close() {
	s.ws.Close()
	<-s.readDone
}

// v5Channel writes to one channel of a session.
type v5Channel struct {
	s  *v5Session
	ch byte
}

func (c v5Channel) Write(p []byte) (int, error) {
	if err := c.s.write(c.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// remoteCommandStatus is how a translated session ended, for the client's
// error channel: success, the command's exit code, or the error.
func remoteCommandStatus(err error) metav1.Status {
	var exit utilexec.CodeExitError
	var se *apierrors.StatusError
	switch {
	case err == nil:
		return metav1.Status{Status: metav1.StatusSuccess}
	case errors.As(err, &exit) && exit.Exited():
		return metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  rcconst.NonZeroExitCodeReason,
			Message: exit.Error(),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: rcconst.ExitCodeCauseType, Message: strconv.Itoa(exit.ExitStatus())}}},
		}
	case errors.As(err, &se):
		return se.ErrStatus
	}
	// The kubelet's own failure (already "Internal error occurred: ...")
	// reaches the client as the kubelet worded it, not wrapped twice.
	if msg := strings.TrimPrefix(err.Error(), "error executing remote command: "); strings.HasPrefix(msg, "Internal error occurred: ") {
		return metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Reason: metav1.StatusReasonInternalError, Message: msg}
	}
	return apierrors.NewInternalError(err).ErrStatus
}

// sizeQueue hands the client's terminal sizes to the executor.
type sizeQueue struct {
	ctx   context.Context
	sizes <-chan remotecommand.TerminalSize
}

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case size := <-q.sizes:
		return &size
	case <-q.ctx.Done():
		return nil
	}
}

// upgraded is a kubelet connection upgraded already, handed to client-go's
// SPDY executor as the round trip and the upgrade it would make itself.
type upgraded struct {
	resp *http.Response
	conn net.Conn
}

func (u *upgraded) RoundTrip(*http.Request) (*http.Response, error) { return u.resp, nil }

func (u *upgraded) NewConnection(*http.Response) (apihttpstream.Connection, error) {
	return apispdy.NewClientConnectionWithPings(u.conn, spdyPingPeriod)
}

// tunnelPortForward answers port-forward's SPDY-over-WebSocket tunnel:
// the kubelet at target gets a SPDY upgrade, the client a WebSocket whose
// binary messages carry the same SPDY bytes.
func (s *Server) tunnelPortForward(w http.ResponseWriter, r *http.Request, target *url.URL) error {
	var protocols []string
	for _, p := range gwebsocket.Subprotocols(r) {
		if rest, ok := strings.CutPrefix(p, tunnelPrefix); ok && strings.HasSuffix(rest, ".k8s.io") {
			protocols = append(protocols, rest)
		}
	}
	if len(protocols) == 0 {
		return apierrors.NewBadRequest("unable to upgrade: no tunneling spdy protocols provided")
	}
	conn, resp, err := s.kubelets.upgrade(spdyUpgradeRequest(r.Context(), target, protocols))
	if err != nil {
		return err
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		passResponse(w, resp)
		return nil
	}
	chosen := resp.Header.Get(httpstream.HeaderProtocolVersion)
	if chosen == "" {
		chosen = protocols[0]
	}
	upgrader := gwebsocket.Upgrader{
		// Clients authenticate with certificates and tokens, not cookies.
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{tunnelPrefix + chosen},
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // Upgrade answered the client
	}
	s.splice(portforward.NewTunnelingConnection("portforward", ws), conn)
	return nil
}

// ---- nodes/proxy

// nodeProxy is nodes/<name>/proxy/<path>: the request goes on to the
// node's kubelet at /<path>, with its method, query and body. The name
// may say the port, as <name>:<port> or https:<name>:<port>: the
// kubelet's is the only one served.
func (c *call) nodeProxy(id string) error {
	name, port := id, ""
	switch parts := strings.Split(id, ":"); len(parts) {
	case 2:
		name, port = parts[0], parts[1]
	case 3:
		if parts[0] != "https" && parts[0] != "" {
			return apierrors.NewBadRequest(fmt.Sprintf("node %s: kubelets are reached over https, not %s", parts[1], parts[0]))
		}
		name, port = parts[1], parts[2]
	}
	addr, err := c.kubeletOf(name)
	if err != nil {
		return err
	}
	if _, kubeletPort, _ := net.SplitHostPort(addr); port != "" && port != kubeletPort {
		return apierrors.NewBadRequest(fmt.Sprintf("node %s: only the kubelet's port %s can be reached through the proxy, not %s", name, kubeletPort, port))
	}
	path := "/"
	if _, rest, ok := strings.Cut(c.r.URL.Path, "/nodes/"+id+"/proxy"); ok && rest != "" {
		path = rest
	}
	target := url.URL{Scheme: "https", Host: addr, Path: path, RawQuery: c.r.URL.RawQuery}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := target
			out := kubeletRequest(pr.Out, &u)
			pr.Out.URL, pr.Out.Host, pr.Out.Header = out.URL, "", out.Header
		},
		Transport:     c.s.kubelets.transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c.s.writeError(w, r, unknownError(fmt.Errorf("error trying to reach service: %w", err)))
		},
		ErrorLog: slog.NewLogLogger(c.s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	proxy.ServeHTTP(c.w, c.r)
	return nil
}
