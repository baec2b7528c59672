// Package loopback lets the API clients that run inside labctl server's
// own process (the controllers and scheduler, the add-ons, the server's
// node agent) reach the API server without a network connection.
//
// Over 127.0.0.1 every request of theirs paid for TLS, HTTP/2 framing and
// socket system calls on both ends, and each of their ~35 watches kept a
// stream with its goroutines and buffers: a noticeable share of labctl's
// CPU when pods start, and of its memory at rest. A Transport is an
// http.RoundTripper that instead serves each request by calling the
// server's top-level http.Handler, the one the HTTPS server serves, so the
// request still goes through authentication, authorization, admission and
// everything else, exactly as it would have over the network.
//
// Authentication sees the client's certificate as the TLS handshake would
// have shown it: New verifies the component's certificate against the
// cluster CA and puts the verified chain in every request's
// http.Request.TLS. That connection state is made up, not negotiated: the
// transport trusts its caller, so only code inside the server process, which
// holds the certificate's private key anyway, constructs a Transport. No
// network client can reach this path.
//
// What cannot be served by a function call (protocol upgrades, for exec,
// attach and port-forward) goes over the network as before, through a
// fallback transport with the same certificate.
package loopback

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// RemoteAddr is the http.Request.RemoteAddr that handlers see for
// in-process requests: a host:port that code splitting it still parses
// (the server only logs it), with port 0, which no real peer has.
const RemoteAddr = "127.0.0.1:0"

// Config sets up New.
type Config struct {
	// Handler is the server's top-level handler, the one its HTTPS server
	// serves; required.
	Handler http.Handler
	// Certificate is the component's client certificate and private key;
	// required. Its Leaf is parsed from Certificate[0] when nil.
	Certificate tls.Certificate
	// CA is the cluster CA, which must have signed Certificate; required.
	CA *x509.Certificate
	// Fallback carries the requests that cannot be served in-process
	// (protocol upgrades) to the server over the network (default: an
	// HTTP/1.1 TLS transport presenting Certificate and trusting only CA).
	Fallback http.RoundTripper
	// Logger receives handler panics (default: discarded).
	Logger *slog.Logger
}

// Transport is an http.RoundTripper that serves requests in-process with
// Config.Handler, as the holder of Config.Certificate. Requests' URLs keep
// the server's address: the fallback needs it, and handlers see its host as
// Host. It is safe for concurrent use.
type Transport struct {
	handler  http.Handler
	conn     tls.ConnectionState // what each request's TLS is a copy of
	fallback http.RoundTripper
	log      *slog.Logger
}

// New returns a Transport for cfg. It fails when Certificate is not one the
// server's TLS handshake would accept from a client: not signed by CA, not
// for client authentication, expired, or without its private key.
func New(cfg Config) (*Transport, error) {
	if cfg.Handler == nil {
		return nil, errors.New("loopback: no handler given")
	}
	if cfg.CA == nil {
		return nil, errors.New("loopback: no CA given")
	}
	if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return nil, errors.New("loopback: no client certificate and key given")
	}
	leaf := cfg.Certificate.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificate.Certificate[0]); err != nil {
			return nil, fmt.Errorf("loopback: parse the client certificate: %w", err)
		}
	}
	// The TLS handshake proves possession of the key; here, at least the
	// key given must be the certificate's.
	if signer, ok := cfg.Certificate.PrivateKey.(crypto.Signer); !ok || !publicKeysEqual(signer.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("loopback: the private key given is not that of the certificate for %q", leaf.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cfg.CA)
	// What crypto/tls checks of a client certificate on the server side
	// (tls.VerifyClientCertIfGiven with ClientCAs), and the chains it
	// records.
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("loopback: the client certificate for %q: %w", leaf.Subject.CommonName, err)
	}
	if cfg.Fallback == nil {
		cfg.Fallback = newFallback(cfg.Certificate, roots)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Transport{
		handler: cfg.Handler,
		conn: tls.ConnectionState{
			Version:            tls.VersionTLS13,
			HandshakeComplete:  true,
			NegotiatedProtocol: "h2",
			PeerCertificates:   []*x509.Certificate{leaf},
			VerifiedChains:     chains,
		},
		fallback: cfg.Fallback,
		log:      cfg.Logger,
	}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// newFallback returns the transport for upgrades: HTTP/1.1 (an
// http.Transport with its own TLSClientConfig does not attempt HTTP/2),
// since upgrades need it, and no proxy: the server is on this machine.
func newFallback(cert tls.Certificate, roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots,
			MinVersion:   tls.VersionTLS12,
		},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
}

// CloseIdleConnections closes the fallback's idle connections, if it has
// any; client-go calls it when a client is dropped.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper. It returns as soon as the handler
// has written the response's header (WriteHeader, its first Write, or
// Flush) or has returned; the body then streams what the handler writes.
// The handler's request context ends when req's context ends, when the
// response body is closed, or when the handler returns.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if isUpgrade(req) {
		// The handler would hijack a connection that does not exist.
		return t.fallback.RoundTrip(req)
	}
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("loopback: request without a URL")
	}
	if err := req.Context().Err(); err != nil {
		closeBody(req)
		return nil, context.Cause(req.Context())
	}

	// Not derived from req's context: the handler should see none of the
	// client's context values, only its cancellation. Nor from the
	// server's: labctl server stops its in-process clients before itself,
	// and their last requests (the Lease's release, the node's last
	// status) should be served; over the network, with the server's
	// context already ended, they could fail with "context canceled".
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := context.AfterFunc(req.Context(), func() { cancel(context.Cause(req.Context())) })
	pr, pw := io.Pipe()
	w := &responseWriter{
		req:    req,
		header: make(http.Header),
		pw:     pw,
		body:   &body{pr: pr, cancel: cancel},
		head:   req.Method == http.MethodHead,
		ready:  make(chan struct{}),
	}
	go t.serve(w, t.serverRequest(ctx, req), cancel, stop)

	select {
	case <-w.ready:
		if w.err != nil {
			return nil, w.err
		}
		return w.resp, nil
	case <-req.Context().Done():
		// The handler's context ends too (AfterFunc); its writes fail.
		err := context.Cause(req.Context())
		pr.CloseWithError(err)
		return nil, err
	}
}

// serverRequest is req as the handler sees it, as net/http's server would
// have parsed it off an HTTP/2 connection from a verified client.
func (t *Transport) serverRequest(ctx context.Context, req *http.Request) *http.Request {
	r := req.Clone(ctx) // a deep copy of the header: handlers may change it
	r.RequestURI = req.URL.RequestURI()
	// A server-side URL has only the path and query.
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		r.URL = u
	} else {
		r.URL.Scheme, r.URL.Host, r.URL.User = "", "", nil
	}
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	r.RemoteAddr = RemoteAddr
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Close = false
	conn := t.conn
	r.TLS = &conn
	r.GetBody, r.Response = nil, nil
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		r.Body, r.ContentLength = http.NoBody, 0
	case r.ContentLength == 0:
		r.ContentLength = -1 // a body of unknown length
	}
	return r
}

// errHandlerDone ends a request's context once its handler has returned,
// as net/http's server does.
var errHandlerDone = errors.New("loopback: the handler returned")

// serve runs the handler for w and r, then ends the response, the request's
// context and its body (which RoundTrip must close).
func (t *Transport) serve(w *responseWriter, r *http.Request, cancel context.CancelCauseFunc, stop func() bool) {
	defer func() {
		stop()
		cancel(errHandlerDone)
		_ = r.Body.Close()
	}()
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		// A panic must not take the whole server down: as net/http does,
		// log it and cut the response off. ErrAbortHandler is a handler's
		// way of doing just that, silently.
		if v != http.ErrAbortHandler {
			t.log.Error("panic serving an in-process request", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
		}
		w.abort(fmt.Errorf("loopback: %s %s: the handler panicked: %v", r.Method, r.URL.Path, v))
	}()
	t.handler.ServeHTTP(w, r)
	w.finish()
}

// isUpgrade reports whether req asks to switch protocols (Connection:
// Upgrade), as SPDY and WebSocket streams do.
func isUpgrade(req *http.Request) bool {
	for _, v := range req.Header.Values("Connection") {
		for _, token := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "upgrade") {
				return true
			}
		}
	}
	return false
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// body is a response body: what the handler writes, through a pipe, as it
// writes it. Closing it ends the handler's request context, which is how a
// client stops a watch.
type body struct {
	pr     *io.PipeReader
	cancel context.CancelCauseFunc
}

// errBodyClosed says the client closed the body; the text is net/http's.
var errBodyClosed = errors.New("http: read on closed response body")

func (b *body) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *body) Close() error {
	b.cancel(errBodyClosed)
	b.pr.CloseWithError(errBodyClosed) // the handler's writes fail from now on
	return nil
}

// errFinished refuses writes after the handler returned.
var errFinished = errors.New("loopback: write after the handler returned")

// responseWriter is the handler's http.ResponseWriter. Like net/http's, it
// is for the handler's goroutine only; RoundTrip reads resp and err after
// ready is closed.
type responseWriter struct {
	req    *http.Request // the client's, for Response.Request
	header http.Header
	pw     *io.PipeWriter
	body   *body
	head   bool // a HEAD request: writes are dropped

	ready chan struct{} // closed once resp or err is set
	resp  *http.Response
	err   error

	bodyAllowed bool
	declared    int64 // the Content-Length the handler set, or -1
	written     int64
	finished    bool
}

var _ http.Flusher = (*responseWriter)(nil)

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) committed() bool { return w.resp != nil || w.err != nil }

// WriteHeader sends the response to RoundTrip's caller. Like net/http, it
// panics on a code outside 100-999 and ignores calls after the first;
// informational (1xx) codes are dropped, as a client never sees them.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.committed() || w.finished || code < 200 {
		return
	}
	w.commit(code)
}

// commit snapshots the header, as net/http does at WriteHeader time, and
// hands the response to RoundTrip.
func (w *responseWriter) commit(code int) {
	h := w.header.Clone()
	// Hop-by-hop fields: the pipe is the framing here, and HTTP/2 drops
	// them too (rest.go's watch sets Transfer-Encoding: chunked).
	h.Del("Transfer-Encoding")
	h.Del("Connection")
	w.declared = -1
	if v := h.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	w.bodyAllowed = code != http.StatusNoContent && code != http.StatusNotModified
	w.resp = &http.Response{
		Status:     strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode: code,
		Proto:      "HTTP/2.0", ProtoMajor: 2,
		Header:        h,
		Body:          w.body,
		ContentLength: w.declared,
		Request:       w.req,
	}
	close(w.ready)
}

// Write sends p to the client, committing the header first (status 200,
// and a sniffed Content-Type when the handler set none, as net/http does).
// It blocks until the client has read p, returns an error once the client
// has gone, and refuses bytes beyond the Content-Length set.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.finished {
		return 0, errFinished
	}
	if !w.committed() {
		if _, ok := w.header["Content-Type"]; !ok && w.header.Get("Content-Encoding") == "" && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.commit(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.bodyAllowed {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if w.head {
		w.written += int64(len(p))
		return len(p), nil
	}
	n, err := w.pw.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush commits the header; what was written has reached the client
// already (the pipe has no buffer).
func (w *responseWriter) Flush() {
	if !w.committed() && !w.finished {
		w.commit(http.StatusOK)
	}
}

// finish ends the response after the handler returned: one that wrote
// nothing is a 200 with an empty body, as with net/http.
func (w *responseWriter) finish() {
	if !w.committed() {
		if w.header.Get("Content-Length") == "" {
			w.header.Set("Content-Length", "0")
		}
		w.commit(http.StatusOK)
	}
	w.finished = true
	_ = w.pw.Close()
}

// abort ends the response after a panic, as net/http drops the stream: an
// error from RoundTrip when the header was not out yet, otherwise a body
// cut off with io.ErrUnexpectedEOF (which client-go takes for a broken
// connection: a watch ends and is started again).
func (w *responseWriter) abort(err error) {
	w.finished = true
	if !w.committed() {
		w.err = err
		close(w.ready)
	}
	w.pw.CloseWithError(io.ErrUnexpectedEOF)
}
