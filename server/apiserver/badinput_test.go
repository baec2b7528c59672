package apiserver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestBadInput sends what students get wrong and checks each gets a 4xx
// Status whose message says what is wrong, and the server keeps serving.
func TestBadInput(t *testing.T) {
	cfg := start(t, memStore(t))
	cms := cfg.Host + "/api/v1/namespaces/default/configmaps"
	huge := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"k":"` + strings.Repeat("x", 4<<20) + `"}}`
	tests := []struct {
		name, method, url, ctype, body string
		code                           int
		reason                         metav1.StatusReason
		says                           string
	}{
		{"malformed JSON", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap",`, 400, metav1.StatusReasonBadRequest, "cannot be handled as a ConfigMap"},
		{"malformed YAML", "POST", cms, "application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [name: x\n", 400, metav1.StatusReasonBadRequest, "cannot be handled as a ConfigMap"},
		{"malformed protobuf", "POST", cms, "application/vnd.kubernetes.protobuf", "k8s\x00\x0a\x03bad", 400, metav1.StatusReasonBadRequest, "cannot be handled as a ConfigMap"},
		{"wrong kind", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest, "does not match the expected kind"},
		{"wrong version", "POST", cms, "application/json", `{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest, `no kind "ConfigMap" is registered for version "apps/v1"`},
		{"unknown field, strict", "POST", cms + "?fieldValidation=Strict", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dta":{}}`, 400, metav1.StatusReasonBadRequest, `unknown field "dta"`},
		{"name not DNS-1123", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}`, 422, metav1.StatusReasonInvalid, "metadata.name: Invalid value"},
		{"name too long", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + strings.Repeat("a", 260) + `"}}`, 422, metav1.StatusReasonInvalid, "must be no more than 253 characters"},
		{"no name", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}`, 422, metav1.StatusReasonInvalid, "name or generateName is required"},
		{"huge body", "POST", cms, "application/json", huge, 413, metav1.StatusReasonRequestEntityTooLarge, "over the limit"},
		{"unknown content type", "POST", cms, "text/plain", "hello", 415, metav1.StatusReasonUnsupportedMediaType, "unknown format"},
		{"bad label selector", "GET", cms + "?labelSelector=a%20in%20(", "", "", 400, metav1.StatusReasonBadRequest, "unable to parse requirement"},
		{"unsupported field selector", "GET", cms + "?fieldSelector=spec.foo%3Dx", "", "", 400, metav1.StatusReasonBadRequest, "field label not supported: spec.foo"},
		{"bad continue", "GET", cms + "?limit=1&continue=xyz", "", "", 400, metav1.StatusReasonBadRequest, "continue key is not valid"},
		{"bad patch", "PATCH", cms + "/missing", "application/json-patch+json", `[{"op":"nope"}]`, 404, metav1.StatusReasonNotFound, `configmaps "missing" not found`},
		{"unknown resource", "GET", cfg.Host + "/api/v1/widgets", "", "", 404, metav1.StatusReasonNotFound, "could not find the requested resource"},
		{"missing namespace", "POST", cfg.Host + "/api/v1/namespaces/nope/configmaps", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`, 404, metav1.StatusReasonNotFound, `namespaces "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, bytes.NewBufferString(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			wantStatusAnswer(t, req, tt.code, tt.reason, tt.says)
		})
	}
	resp, err := http.Get(cfg.Host + "/api/v1/namespaces")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the server stopped serving: %v", err)
	}
	resp.Body.Close()
}

// wantStatusAnswer sends req and wants a Status answer with code and reason
// whose message contains says.
func wantStatusAnswer(t *testing.T, req *http.Request, code int, reason metav1.StatusReason, says string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("not a Status (%v): %s", err, body)
	}
	if resp.StatusCode != code || st.Code != int32(code) || st.Reason != reason || !strings.Contains(st.Message, says) {
		t.Fatalf("got %d %s %q, want %d %s containing %q", resp.StatusCode, st.Reason, st.Message, code, reason, says)
	}
}
