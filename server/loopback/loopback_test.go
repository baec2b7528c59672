package loopback_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"labctl/internal/syncbuf"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"labctl/server/authn"
	"labctl/server/loopback"
	"labctl/server/pki"
)

// serverURL is what requests name; nothing listens there.
const serverURL = "https://127.0.0.1:6443"

// testCerts are a cluster's certificates, made once for the package's
// tests.
var testCerts *pki.PKI

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loopback-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCerts, err = pki.Ensure(pki.Config{Dir: dir, NodeName: "node-a"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// newTransport returns a transport to h as the controller manager, and
// its logs.
func newTransport(t *testing.T, h http.Handler) (*loopback.Transport, *syncbuf.Buffer) {
	t.Helper()
	p := testCerts
	logs := &syncbuf.Buffer{}
	tr, err := loopback.New(loopback.Config{
		Handler:     h,
		Certificate: p.ControllerManager.TLSCertificate(),
		CA:          p.CA.Cert,
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr, logs
}

func newRequest(t *testing.T, ctx context.Context, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, serverURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// waitFor fails the test when ch is not closed within 5 s.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5 s", what)
	}
}

func TestResponse(t *testing.T) {
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Answer", "42")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.WriteHeader(http.StatusCreated)
		w.Header().Set("X-Late", "too late") // after WriteHeader: not sent
		w.WriteHeader(http.StatusTeapot)     // superfluous: ignored
		_, _ = io.WriteString(w, "hello")
	}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Status != "201 Created" || string(body) != "hello" {
		t.Errorf("got %q %q, want 201 Created hello", resp.Status, body)
	}
	if got := resp.Header.Get("X-Answer"); got != "42" {
		t.Errorf("X-Answer = %q, want 42", got)
	}
	for _, name := range []string{"X-Late", "Transfer-Encoding"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("header %s = %q, want none", name, v)
		}
	}
	if resp.ContentLength != -1 || resp.ProtoMajor != 2 || resp.Request == nil {
		t.Errorf("ContentLength %d, ProtoMajor %d, Request %v; want -1, 2, the request", resp.ContentLength, resp.ProtoMajor, resp.Request)
	}
}

func TestResponseSniffsAndDeclaresLength(t *testing.T) {
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "6")
		if _, err := io.WriteString(w, "<html>"); err != nil {
			t.Error(err)
		}
		if _, err := io.WriteString(w, ">"); !errors.Is(err, http.ErrContentLength) {
			t.Errorf("write beyond Content-Length: %v, want ErrContentLength", err)
		}
	}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || resp.ContentLength != 6 || string(body) != "<html>" {
		t.Errorf("Content-Type %q, ContentLength %d, body %q; want text/html, 6, <html>", ct, resp.ContentLength, body)
	}
}

func TestHandlerWritesNothing(t *testing.T) {
	tr, _ := newTransport(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodDelete, "/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != 0 {
		t.Errorf("got %d %q (length %d, err %v), want 200 with an empty body", resp.StatusCode, body, resp.ContentLength, err)
	}
}

func TestServerSideRequest(t *testing.T) {
	type seen struct {
		uri, scheme, urlHost, host, remote, proto, body string
		major, minor                                    int
		length                                          int64
		nilBody                                         bool
	}
	got := make(chan seen, 1)
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{uri: r.RequestURI, scheme: r.URL.Scheme, urlHost: r.URL.Host, host: r.Host, remote: r.RemoteAddr,
			proto: r.Proto, major: r.ProtoMajor, minor: r.ProtoMinor, length: r.ContentLength, nilBody: r.Body == nil}
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			s.body = string(b)
		}
		r.Header.Set("X-Changed", "by the handler")
		got <- s
	}))

	req := newRequest(t, context.Background(), http.MethodPost, "/api/v1/namespaces/a%2Fb/pods?watch=1&x=y", strings.NewReader("{}"))
	req.Header.Set("Accept", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-got
	want := seen{uri: "/api/v1/namespaces/a%2Fb/pods?watch=1&x=y", host: "127.0.0.1:6443", remote: loopback.RemoteAddr,
		proto: "HTTP/2.0", major: 2, length: 2, body: "{}"}
	if s != want {
		t.Errorf("the handler saw\n%+v\nwant\n%+v", s, want)
	}
	if req.Header.Get("X-Changed") != "" {
		t.Error("the handler's change to the request header reached the client's request")
	}

	// No body: http.NoBody, as net/http's server gives.
	resp, err = tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s.nilBody || s.length != 0 || s.body != "" {
		t.Errorf("request without a body: handler saw nil body %v, length %d, body %q", s.nilBody, s.length, s.body)
	}
}

// TestStreaming is a watch: events arrive as the handler flushes them,
// while it still runs.
func TestStreaming(t *testing.T) {
	next, returned := make(chan struct{}), make(chan struct{})
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-next // the client has the header before any event
		_, _ = io.WriteString(w, "one\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		<-next
		_, _ = io.WriteString(w, "two\n")
	}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/watch", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i, want := range []string{"one\n", "two\n"} {
		next <- struct{}{}
		line, err := lines.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
		if i > 0 {
			break
		}
		select {
		case <-returned:
			t.Fatal("the handler returned before the client read the first event")
		default: // it waits for next: the event came before its end
		}
	}
	if _, err := lines.ReadByte(); err != io.EOF {
		t.Errorf("after the handler returned: %v, want EOF", err)
	}
	waitFor(t, returned, "handler return")
}

// streamUntilDone is a handler that sends its header, then waits for its
// request's context to end and reports the cause.
func streamUntilDone(header bool, causes chan<- error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if header {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
		causes <- context.Cause(r.Context())
	})
}

func TestClientCancelEndsHandler(t *testing.T) {
	for _, header := range []bool{true, false} {
		t.Run(fmt.Sprintf("header sent %v", header), func(t *testing.T) {
			causes := make(chan error, 1)
			tr, _ := newTransport(t, streamUntilDone(header, causes))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var resp *http.Response
			var err error
			if header {
				if resp, err = tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "/watch", nil)); err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				cancel()
			} else {
				time.AfterFunc(50*time.Millisecond, cancel)
				if resp, err = tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "/watch", nil)); !errors.Is(err, context.Canceled) {
					t.Fatalf("RoundTrip: %v, %v; want context.Canceled", resp, err)
				}
			}
			select {
			case cause := <-causes:
				if !errors.Is(cause, context.Canceled) {
					t.Errorf("the handler's context ended with %v, want context.Canceled", cause)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's context did not end when the client's did")
			}
		})
	}
}

func TestBodyCloseEndsHandler(t *testing.T) {
	causes, writeErrs := make(chan error, 1), make(chan error, 1)
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "event\n")
		<-r.Context().Done()
		causes <- context.Cause(r.Context())
		_, err := io.WriteString(w, "late event\n")
		writeErrs <- err
	}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/watch", nil))
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "event\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-causes:
		if cause == nil || !strings.Contains(cause.Error(), "closed response body") {
			t.Errorf("the handler's context ended with %v, want the body's closing", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end when the client closed the body")
	}
	if err := <-writeErrs; err == nil {
		t.Error("a write after the client closed the body succeeded")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Error("a read after Close succeeded")
	}
}

func TestHandlerPanic(t *testing.T) {
	t.Run("before the header", func(t *testing.T) {
		tr, logs := newTransport(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/p", nil))
		if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
			t.Fatalf("RoundTrip: %v, %v; want an error about the panic", resp, err)
		}
		if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "stack") {
			t.Errorf("the panic was not logged with its stack:\n%s", logs)
		}
	})
	t.Run("after the header", func(t *testing.T) {
		tr, logs := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		}))
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/p", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if string(body) != "partial" || err != io.ErrUnexpectedEOF {
			t.Errorf("read %q, %v; want partial, io.ErrUnexpectedEOF", body, err)
		}
		if !strings.Contains(logs.String(), "boom") {
			t.Errorf("the panic was not logged:\n%s", logs)
		}
	})
	t.Run("ErrAbortHandler", func(t *testing.T) {
		tr, logs := newTransport(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
		if _, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/p", nil)); err == nil {
			t.Error("RoundTrip succeeded on an aborted handler")
		}
		if logs.String() != "" {
			t.Errorf("http.ErrAbortHandler was logged:\n%s", logs)
		}
	})
}

// TestIdentity: authentication sees the certificate as after a TLS
// handshake.
func TestIdentity(t *testing.T) {
	p := testCerts
	type who struct {
		user     *authn.User
		complete bool
		chain    int
		leaf, ca bool
	}
	got := make(chan who, 1)
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _, err := authn.X509{}.AuthenticateRequest(r)
		if err != nil {
			t.Error(err)
		}
		chain := r.TLS.VerifiedChains[0]
		got <- who{user: u, complete: r.TLS.HandshakeComplete, chain: len(chain),
			leaf: chain[0].Equal(p.ControllerManager.Cert), ca: chain[len(chain)-1].Equal(p.CA.Cert)}
	}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "/api", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	w := <-got
	if w.user == nil || w.user.Name != pki.ControllerManagerUser || !w.complete || w.chain != 2 || !w.leaf || !w.ca {
		t.Errorf("handler saw user %+v, handshake complete %v, chain of %d (leaf %v, CA %v); want %s, a complete handshake, leaf and CA",
			w.user, w.complete, w.chain, w.leaf, w.ca, pki.ControllerManagerUser)
	}
}

func TestNewRefusesCertificates(t *testing.T) {
	p := testCerts
	other, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := http.NotFoundHandler()
	mismatched := p.ControllerManager.TLSCertificate()
	mismatched.PrivateKey = p.Admin.Key
	noKey := p.ControllerManager.TLSCertificate()
	noKey.PrivateKey = nil
	for name, cfg := range map[string]loopback.Config{
		"another CA's":      {Handler: h, Certificate: other.ControllerManager.TLSCertificate(), CA: p.CA.Cert},
		"a serving one":     {Handler: h, Certificate: p.Serving.TLSCertificate(), CA: p.CA.Cert},
		"another key":       {Handler: h, Certificate: mismatched, CA: p.CA.Cert},
		"without a key":     {Handler: h, Certificate: noKey, CA: p.CA.Cert},
		"without a CA":      {Handler: h, Certificate: p.ControllerManager.TLSCertificate()},
		"without a handler": {Certificate: p.ControllerManager.TLSCertificate(), CA: p.CA.Cert},
	} {
		if _, err := loopback.New(cfg); err == nil {
			t.Errorf("New accepted a certificate %s", name)
		}
	}
}

type recordingTransport struct{ reqs chan *http.Request }

func (r recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.reqs <- req
	return &http.Response{StatusCode: http.StatusSwitchingProtocols, Body: http.NoBody, Request: req}, nil
}

func TestUpgradeGoesToFallback(t *testing.T) {
	p := testCerts
	fallback := recordingTransport{reqs: make(chan *http.Request, 1)}
	called := false
	tr, err := loopback.New(loopback.Config{
		Handler:     http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }),
		Certificate: p.ControllerManager.TLSCertificate(), CA: p.CA.Cert, Fallback: fallback,
	})
	if err != nil {
		t.Fatal(err)
	}
	req := newRequest(t, context.Background(), http.MethodPost, "/api/v1/namespaces/a/pods/b/exec", nil)
	req.Header.Set("Connection", "keep-alive, Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case got := <-fallback.reqs:
		if got != req {
			t.Error("the fallback got another request")
		}
	default:
		t.Error("the upgrade did not go to the fallback")
	}
	if called {
		t.Error("the handler served an upgrade")
	}
}

// TestDefaultFallback: upgrades reach the server over TLS with the same
// certificate.
func TestDefaultFallback(t *testing.T) {
	p := testCerts
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _, _ := authn.X509{}.AuthenticateRequest(r)
		if u == nil {
			http.Error(w, "no certificate", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, u.Name+" "+r.Proto)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Serving.TLSCertificate()},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.CertPool()}
	srv.StartTLS()
	defer srv.Close()

	tr, err := loopback.New(loopback.Config{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "in-process") }),
		Certificate: p.ControllerManager.TLSCertificate(), CA: p.CA.Cert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := pki.ControllerManagerUser + " HTTP/1.1"; string(body) != want {
		t.Errorf("the server over TLS answered %d %q, want %q", resp.StatusCode, body, want)
	}
}

// TestClientGo: client-go takes the transport as rest.Config.Transport,
// keeps its own wrappers (user agent, WrapTransport), and runs a watch
// over it that Stop ends on the server side.
func TestClientGo(t *testing.T) {
	type seen struct{ agent, wrapped string }
	requests := make(chan seen, 10)
	watchEnded := make(chan struct{})
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- seen{r.UserAgent(), r.Header.Get("X-Wrapped")}
		if r.URL.Query().Get("watch") != "true" {
			http.NotFound(w, r)
			return
		}
		defer close(watchEnded)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"n","resourceVersion":"7"}}}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	cfg := &rest.Config{
		Host: serverURL, Transport: tr, UserAgent: "loopback-test", QPS: 100, Burst: 100,
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				req = req.Clone(req.Context())
				req.Header.Set("X-Wrapped", "yes")
				return rt.RoundTrip(req)
			})
		},
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods("n").Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if m, err := metav1Object(ev.Object); err != nil || m != "n/a" {
			t.Errorf("watch event %v for %q (%v), want pod n/a", ev.Type, m, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}
	w.Stop()
	waitFor(t, watchEnded, "the watch handler's end after Stop")
	if s := <-requests; s.agent != "loopback-test" || s.wrapped != "yes" {
		t.Errorf("the handler saw user agent %q and wrapped header %q, want loopback-test and yes", s.agent, s.wrapped)
	}

	// Why the server's rest.Configs carry no TLS options beside the
	// transport.
	cfg.TLSClientConfig.CAData = testCerts.CA.CertPEM
	if _, err := rest.TransportFor(cfg); err == nil {
		t.Error("client-go accepted a custom transport with TLS options; the server could keep them")
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func metav1Object(obj any) (string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return "", fmt.Errorf("%T has no object metadata", obj)
	}
	return m.GetNamespace() + "/" + m.GetName(), nil
}

// TestNoGoroutineLeak: whichever way a request ends, its goroutine ends
// with it.
func TestNoGoroutineLeak(t *testing.T) {
	tr, _ := newTransport(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plain":
			_, _ = io.WriteString(w, "ok")
		case "/stream":
			for r.Context().Err() == nil {
				if _, err := io.WriteString(w, "event\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		case "/block":
			<-r.Context().Done()
		case "/panic":
			panic("boom")
		}
	}))
	// The first requests start what stays (the log handler, timers).
	before := runtime.NumGoroutine()
	for range 20 {
		for _, path := range []string{"/plain", "/stream", "/block", "/panic"} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, path, nil))
			if err == nil {
				switch path {
				case "/plain":
					_, _ = io.ReadAll(resp.Body)
				case "/stream":
					_, _ = bufio.NewReader(resp.Body).ReadString('\n')
				}
				resp.Body.Close()
			}
			cancel()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkRoundTrip compares a small GET in-process with the same over
// TLS and HTTP/2 on loopback, as the in-process clients made it before.
func BenchmarkRoundTrip(b *testing.B) {
	p := testCerts
	payload := bytes.Repeat([]byte("x"), 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, _, _ := (authn.X509{}).AuthenticateRequest(r); u == nil {
			http.Error(w, "no certificate", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	})
	run := func(b *testing.B, rt http.RoundTripper, url string) {
		client := &http.Client{Transport: rt}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			resp, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n != int64(len(payload)) {
				b.Fatalf("got %d with %d bytes", resp.StatusCode, n)
			}
		}
	}
	b.Run("loopback", func(b *testing.B) {
		tr, err := loopback.New(loopback.Config{Handler: h, Certificate: p.ControllerManager.TLSCertificate(), CA: p.CA.Cert})
		if err != nil {
			b.Fatal(err)
		}
		run(b, tr, serverURL+"/api")
	})
	b.Run("tls-h2", func(b *testing.B) {
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Serving.TLSCertificate()},
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: p.CertPool()}
		srv.StartTLS()
		defer srv.Close()
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{p.ControllerManager.TLSCertificate()}, RootCAs: p.CertPool()}}
		defer tr.CloseIdleConnections()
		run(b, tr, srv.URL+"/api")
	})
}
