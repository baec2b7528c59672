package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/munnerz/goautoneg"
)

// Content types of the documents.
const (
	mimeJSON = "application/json"
	// v2 protobuf: the first is what clients send (client-go asks for
	// it), the second is the name the response carries, as upstream.
	mimeV2ProtoAt  = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mimeV2Proto    = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mimeV3ProtoAt  = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
	mimeV3Proto    = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	v3PathPrefix   = "/openapi/v3/"
	v2Path         = "/openapi/v2"
	v3Path         = "/openapi/v3"
	immutableCache = "public, immutable"
)

// blob is an encoded document kept gzip-compressed: the documents are
// megabytes of repetitive JSON and compress about tenfold, and clients
// (client-go, kubectl, helm) accept gzip, so they are sent as they are
// stored.
type blob struct {
	gz       []byte
	size     int    // uncompressed length
	hash     string // hex SHA-512 of the uncompressed bytes
	modified time.Time
}

func newBlob(raw []byte) (*blob, error) {
	var buf bytes.Buffer
	buf.Grow(len(raw) / 6)
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha512.Sum512(raw)
	gz := make([]byte, buf.Len()) // exact size: the buffer over-allocates
	copy(gz, buf.Bytes())
	return &blob{gz: gz, size: len(raw), hash: strings.ToUpper(hex.EncodeToString(sum[:])), modified: time.Now().UTC()}, nil
}

// raw returns the uncompressed bytes.
func (b *blob) raw() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b.gz))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, b.size)
	buf := bytes.NewBuffer(out)
	if _, err := io.Copy(buf, zr); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (b *blob) etag() string { return `"` + b.hash + `"` }

// serve writes b with contentType, answering If-None-Match with 304 and
// sending gzip to clients that accept it.
func (b *blob) serve(w http.ResponseWriter, r *http.Request, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Etag", b.etag())
	h.Set("Last-Modified", b.modified.Format(http.TimeFormat))
	h.Add("Vary", "Accept-Encoding")
	if etagMatch(r.Header.Get("If-None-Match"), b.hash) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(b.gz)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(b.gz)
		}
		return
	}
	h.Set("Content-Length", strconv.Itoa(b.size))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(b.gz))
	if err != nil {
		return
	}
	_, _ = io.Copy(w, zr)
}

// etagMatch reports whether an If-None-Match header matches hash (weak
// comparison, as for GET).
func etagMatch(header, hash string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		if strings.Trim(t, `"`) == hash {
			return true
		}
	}
	return false
}

func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		coding := strings.ToLower(strings.TrimSpace(fields[0]))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(strings.TrimSpace(f), "q="); ok {
				if p, err := strconv.ParseFloat(v, 64); err == nil {
					q = p
				}
			}
		}
		return q > 0
	}
	return false
}

// negotiate returns the first of offers ({media type, response type}) the
// Accept header allows; "" when none.
func negotiate(accept string, offers [][2]string) (string, bool) {
	if accept == "" {
		accept = "*/*"
	}
	for _, c := range goautoneg.ParseAccept(accept) {
		if c.Q <= 0 {
			continue
		}
		for _, o := range offers {
			typ, sub, _ := strings.Cut(o[0], "/")
			if (c.Type == typ || c.Type == "*") && (c.SubType == sub || c.SubType == "*") {
				return o[1], true
			}
		}
	}
	return "", false
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// Register serves /openapi/v2, /openapi/v3 and /openapi/v3/ on mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.Handle(v2Path, s.V2Handler())
	mux.Handle(v3Path, s.V3Handler())
	mux.Handle(v3PathPrefix, s.V3Handler())
}

// V2Handler serves /openapi/v2 as JSON or protobuf, by the Accept header.
func (s *Service) V2Handler() http.Handler {
	offers := [][2]string{
		{mimeJSON, mimeJSON},
		{mimeV2ProtoAt, mimeV2Proto},
		{mimeV2Proto, mimeV2Proto},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowGet(w, r) {
			return
		}
		w.Header().Add("Vary", "Accept")
		ct, ok := negotiate(r.Header.Get("Accept"), offers)
		if !ok {
			http.Error(w, "406: Not Acceptable: use application/json or "+mimeV2ProtoAt, http.StatusNotAcceptable)
			return
		}
		d, err := s.v2Doc()
		if err != nil {
			s.cfg.Logger.Error("Building the OpenAPI v2 document", "err", err)
			http.Error(w, "OpenAPI v2 document unavailable", http.StatusServiceUnavailable)
			return
		}
		if ct == mimeJSON {
			d.json.serve(w, r, ct)
		} else {
			d.proto.serve(w, r, ct)
		}
	})
}

// V3Handler serves the /openapi/v3 index and the group-version documents
// below /openapi/v3/ ("/openapi/v3/apis/apps/v1", "/openapi/v3/api/v1").
func (s *Service) V3Handler() http.Handler {
	offers := [][2]string{
		{mimeJSON, mimeJSON},
		{mimeV3Proto, mimeV3Proto},
		{mimeV3ProtoAt, mimeV3Proto},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowGet(w, r) {
			return
		}
		path := strings.Trim(strings.TrimPrefix(r.URL.Path, v3Path), "/")
		if path == "" {
			idx, err := s.v3Index()
			if err != nil {
				s.cfg.Logger.Error("Building the OpenAPI v3 documents", "err", err)
				http.Error(w, "OpenAPI v3 index unavailable", http.StatusServiceUnavailable)
				return
			}
			idx.serve(w, r, mimeJSON)
			return
		}
		w.Header().Add("Vary", "Accept")
		ct, ok := negotiate(r.Header.Get("Accept"), offers)
		if !ok {
			http.Error(w, "406: Not Acceptable: use application/json or "+mimeV3ProtoAt, http.StatusNotAcceptable)
			return
		}
		d, err := s.v3GroupDoc(path)
		if err != nil {
			s.cfg.Logger.Error("Building an OpenAPI v3 document", "path", path, "err", err)
			http.Error(w, "OpenAPI v3 document unavailable", http.StatusServiceUnavailable)
			return
		}
		if d == nil {
			http.NotFound(w, r)
			return
		}
		// The index links documents with ?hash=<hash of the JSON>: such a
		// URL names one content forever, so it may be cached for good; an
		// outdated hash is redirected to the current one.
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != d.json.hash {
				http.Redirect(w, r, serverRelativeURL(path, d.json.hash), http.StatusMovedPermanently)
				return
			}
			w.Header().Set("Cache-Control", immutableCache)
			w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		}
		if ct == mimeJSON {
			d.json.serve(w, r, ct)
			return
		}
		pb, err := d.protobuf()
		if err != nil {
			s.cfg.Logger.Error("Encoding an OpenAPI v3 document", "path", path, "err", err)
			http.Error(w, "OpenAPI v3 document unavailable", http.StatusServiceUnavailable)
			return
		}
		pb.serve(w, r, ct)
	})
}
